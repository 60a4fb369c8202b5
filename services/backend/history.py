"""Read side of the build history: one org's composes, newest first, a page at a time.

Pages are cut by keyset, not offset: the cursor is the (created_at,
compose_id) of the last entry shown, and the next page starts strictly below
it on the ``(org_id, created_at, compose_id)`` index. Page 500 therefore costs
what page 1 costs; filters are checked on the rows the index walk passes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.compose_history import Compose, HistoryEvent, Submission, UploadReport
from domain.composes import ComposeStatus, UploadStatus
from domain.events import event_from
from domain.jobs import JobError
from events.engine import reading
from events.envelope import EventEnvelope, as_utc
from events.store import EventStore
from services.backend.records import ComposeNotFound, compose_stream
from services.backend.tables import compose_images, composes

# A filtered page is planned for its own org and values, in this transaction only.
# After five runs of a prepared statement PostgreSQL may switch to a generic plan,
# costed for an average org: for `status = $2` it expects a few hundred rows and
# sorts them all (a bitmap scan) instead of walking the status index newest first
# and stopping at the page's end, which in an org of 100,000 composes read 8,000
# rows for a page of 100 (26 ms instead of under one; bench/history.py).
CUSTOM_PLAN = sa.text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")


class BadCursor(ValueError):
    """A cursor this service did not hand out."""


class HistoryFilter(msgspec.Struct, frozen=True, kw_only=True):
    status: ComposeStatus | None = None
    distribution: str | None = None
    image_type: str | None = None
    # A case-insensitive substring of the image name.
    image_name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    blueprint_id: str | None = None
    blueprint_version: int | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    compose_id: str
    org_id: str
    image_name: str | None
    distribution: str
    request: dict[str, Any]
    submission: Submission
    composer_id: str | None
    status: ComposeStatus
    upload_status: UploadStatus
    error: JobError | None
    created_at: datetime
    updated_at: datetime
    blueprint_id: str | None = None
    blueprint_version: int | None = None


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[HistoryEntry]
    # None on the last page.
    next_cursor: str | None


class HistoryViews:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.engine: AsyncEngine = store.engine

    async def page(self, org_id: str, where: HistoryFilter, limit: int, cursor: str | None = None) -> HistoryPage:
        c = composes.c
        query = sa.select(composes).where(c.org_id == org_id, c.deleted.is_(False))
        if cursor is not None:
            created_at, compose_id = decode_cursor(cursor)
            last = sa.tuple_(sa.literal(created_at, sa.DateTime(timezone=True)), sa.literal(compose_id))
            query = query.where(sa.tuple_(c.created_at, c.compose_id) < last)
        conditions = _conditions(where)
        query = query.where(*conditions)
        # One more than asked: whether a next page exists, without counting.
        query = query.order_by(c.created_at.desc(), c.compose_id.desc()).limit(limit + 1)
        async with reading(self.engine) as conn:
            if conditions and conn.dialect.name == "postgresql":
                await conn.execute(CUSTOM_PLAN)
            rows = (await conn.execute(query)).all()
        entries = [_entry(row) for row in rows[:limit]]
        more = len(rows) > limit
        return HistoryPage(entries=entries, next_cursor=encode_cursor(entries[-1]) if more else None)

    async def compose(self, org_id: str, compose_id: str) -> HistoryEntry:
        query = sa.select(composes).where(
            composes.c.compose_id == compose_id, composes.c.org_id == org_id, composes.c.deleted.is_(False)
        )
        async with reading(self.engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise ComposeNotFound(compose_id)
        return _entry(row)

    async def detail(self, org_id: str, compose_id: str) -> tuple[HistoryEntry, dict[tuple[int, int], UploadReport]]:
        """The compose's history entry, and each upload target's latest report keyed
        (image index, target index).

        The reports are read from the compose's own stream (a handful of events)
        rather than from a column of the history row, so they need no schema change.
        """
        entry = await self.compose(org_id, compose_id)
        history = await self.store.read_stream(compose_stream(compose_id))
        return entry, Compose.replay(event_from(e.event_type, e.payload, HistoryEvent) for e in history).uploads

    async def timeline(self, org_id: str, compose_id: str) -> list[EventEnvelope]:
        """The compose's own events, oldest first."""
        await self.compose(org_id, compose_id)
        return await self.store.read_stream(compose_stream(compose_id))

    async def probe(self) -> None:
        """Fails unless the history can be read (readiness)."""
        async with reading(self.engine) as conn:
            await conn.execute(sa.select(composes.c.compose_id).limit(1))


def _conditions(where: HistoryFilter) -> list[sa.ColumnElement[bool]]:
    c = composes.c
    found: list[sa.ColumnElement[bool]] = []
    if where.status is not None:
        found.append(c.status == where.status.value)
    if where.distribution is not None:
        found.append(c.distribution == where.distribution)
    if where.image_type is not None:
        found.append(
            sa.exists().where(compose_images.c.compose_id == c.compose_id, compose_images.c.image_type == where.image_type)
        )
    if where.image_name:
        found.append(sa.func.lower(c.image_name).like(f"%{escape_like(where.image_name.lower())}%", escape="\\"))
    if where.created_after is not None:
        found.append(c.created_at >= as_utc(where.created_after))
    if where.created_before is not None:
        found.append(c.created_at < as_utc(where.created_before))
    if where.blueprint_id is not None:
        found.append(c.blueprint_id == where.blueprint_id)
    if where.blueprint_version is not None:
        found.append(c.blueprint_version == where.blueprint_version)
    return found


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(entry: HistoryEntry) -> str:
    raw = msgspec.json.encode([entry.created_at.isoformat(), entry.compose_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, compose_id = msgspec.json.decode(raw, type=tuple[datetime, str])
    except (binascii.Error, ValueError, msgspec.DecodeError) as error:
        raise BadCursor(f"not a cursor of this history: {cursor[:80]!r}") from error
    return as_utc(created_at), compose_id


def _entry(row: sa.Row) -> HistoryEntry:
    return HistoryEntry(
        compose_id=row.compose_id, org_id=row.org_id, image_name=row.image_name, distribution=row.distribution,
        request=msgspec.json.decode(row.request), submission=Submission(row.submission), composer_id=row.composer_id,
        status=ComposeStatus(row.status), upload_status=UploadStatus(row.upload_status),
        error=None if row.error is None else msgspec.json.decode(row.error, type=JobError),
        created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
        blueprint_id=row.blueprint_id, blueprint_version=row.blueprint_version,
    )  # fmt: skip
