"""Read side of blueprints: an org's list, newest first, and any version's body.

An org holds few blueprints next to its composes, so the list pages by
limit and offset and counts its matches (``meta.count``), as upstream's does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.engine import reading
from events.envelope import as_utc
from services.backend.blueprint_records import BlueprintNotFound
from services.backend.history import escape_like
from services.backend.tables import blueprint_versions, blueprints


class BlueprintSummary(msgspec.Struct, frozen=True, kw_only=True):
    blueprint_id: str
    name: str
    description: str
    latest_version: int
    created_at: datetime
    updated_at: datetime


class BlueprintList(msgspec.Struct, frozen=True, kw_only=True):
    # All that match, not just this page.
    count: int
    items: list[BlueprintSummary]


class BlueprintVersion(msgspec.Struct, frozen=True, kw_only=True):
    blueprint_id: str
    version: int
    latest_version: int
    # When the blueprint was created, and when this version was stored.
    created_at: datetime
    version_created_at: datetime
    body: dict[str, Any]


class BlueprintViews:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list(self, org_id: str, name: str | None, limit: int, offset: int) -> BlueprintList:
        """The org's blueprints whose name holds ``name`` (any case), newest first."""
        b = blueprints.c
        where = [b.org_id == org_id, b.deleted.is_(False)]
        if name:
            where.append(sa.func.lower(b.name).like(f"%{escape_like(name.lower())}%", escape="\\"))
        page = (
            sa.select(blueprints).where(*where)
            .order_by(b.created_at.desc(), b.blueprint_id.desc()).limit(limit).offset(offset)
        )  # fmt: skip
        async with reading(self.engine) as conn:
            count = await conn.scalar(sa.select(sa.func.count()).select_from(blueprints).where(*where))
            rows = (await conn.execute(page)).all()
        return BlueprintList(count=count or 0, items=[_summary(row) for row in rows])

    async def version(self, org_id: str, blueprint_id: str, version: int | None = None) -> BlueprintVersion:
        """The body of ``version`` (the latest when None) of the org's live blueprint."""
        b, v = blueprints.c, blueprint_versions.c
        query = (
            sa.select(b.latest_version, b.created_at, v.version, v.body, v.created_at.label("version_created_at"))
            .join(blueprint_versions, v.blueprint_id == b.blueprint_id)
            .where(b.blueprint_id == blueprint_id, b.org_id == org_id, b.deleted.is_(False))
            .where(v.version == (b.latest_version if version is None else version))
        )
        async with reading(self.engine) as conn:
            row = (await conn.execute(query)).first()
            if row is None and version is not None and await self._exists(conn, org_id, blueprint_id):
                raise BlueprintNotFound(blueprint_id, version)
        if row is None:
            raise BlueprintNotFound(blueprint_id)
        return BlueprintVersion(
            blueprint_id=blueprint_id, version=row.version, latest_version=row.latest_version,
            created_at=as_utc(row.created_at), version_created_at=as_utc(row.version_created_at),
            body=msgspec.json.decode(row.body),
        )  # fmt: skip

    async def require(self, org_id: str, blueprint_id: str) -> None:
        """Raises BlueprintNotFound unless the org has this live blueprint."""
        async with reading(self.engine) as conn:
            if not await self._exists(conn, org_id, blueprint_id):
                raise BlueprintNotFound(blueprint_id)

    @staticmethod
    async def _exists(conn: AsyncConnection, org_id: str, blueprint_id: str) -> bool:
        query = sa.select(blueprints.c.blueprint_id).where(
            blueprints.c.blueprint_id == blueprint_id, blueprints.c.org_id == org_id, blueprints.c.deleted.is_(False)
        )
        return await conn.scalar(query) is not None


def _summary(row: sa.Row) -> BlueprintSummary:
    return BlueprintSummary(
        blueprint_id=row.blueprint_id, name=row.name, description=row.description, latest_version=row.latest_version,
        created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
    )  # fmt: skip
