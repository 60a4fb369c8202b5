"""Storing blueprint events together with their projection rows.

As for composes (records.py): ``record`` applies the event to the aggregate,
appends it to the blueprint's stream at the version it was loaded at, and
``project`` writes ``backend_blueprints`` and ``backend_blueprint_versions``
from the aggregate's new state, all in one unit of work. ``project`` needs
only the aggregate after the event, so a replay can call it too.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.blueprints import (
    Blueprint,
    BlueprintCreated,
    BlueprintEvent,
    BlueprintVersionAdded,
)
from domain.events import event_from
from events.envelope import Actor, NewEvent, Stream
from events.store import UnitOfWork
from services.backend.tables import blueprint_versions, blueprints


class BlueprintNotFound(LookupError):
    def __init__(self, blueprint_id: str, version: int | None = None) -> None:
        which = f"blueprint {blueprint_id}" + ("" if version is None else f" version {version}")
        super().__init__(f"{which} not found")
        self.blueprint_id = blueprint_id
        self.version = version


class BlueprintNameTaken(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"this org already has a blueprint named {name!r}")
        self.name = name


def blueprint_stream(blueprint_id: str) -> Stream:
    return Stream("blueprint", blueprint_id)


async def load_blueprint(uow: UnitOfWork, blueprint_id: str, org_id: str) -> Blueprint:
    """The org's live blueprint, its row locked for this unit of work; anything else is not found."""
    query = (
        sa.select(blueprints.c.org_id, blueprints.c.deleted)
        .where(blueprints.c.blueprint_id == blueprint_id)
        .with_for_update()
    )
    row = (await uow.connection.execute(query)).first()
    if row is None or row.org_id != org_id or row.deleted:
        raise BlueprintNotFound(blueprint_id)
    history = await uow.read_stream(blueprint_stream(blueprint_id))
    return Blueprint.replay(event_from(e.event_type, e.payload, BlueprintEvent) for e in history)


async def check_name_free(connection: AsyncConnection, org_id: str, name: str, blueprint_id: str | None = None) -> None:
    """Raises BlueprintNameTaken if another live blueprint of the org has ``name``.

    The unique index settles a race between two checks; this gives the usual
    case its clear answer.
    """
    query = sa.select(blueprints.c.blueprint_id).where(
        blueprints.c.org_id == org_id, blueprints.c.name == name, blueprints.c.deleted.is_(False)
    )
    if blueprint_id is not None:
        query = query.where(blueprints.c.blueprint_id != blueprint_id)
    if await connection.scalar(query.limit(1)) is not None:
        raise BlueprintNameTaken(name)


async def record(uow: UnitOfWork, blueprint: Blueprint, event: BlueprintEvent, actor: Actor, now: datetime | None = None) -> None:
    version = blueprint.version
    blueprint.apply(event)
    moment = now or datetime.now(UTC)
    await uow.append(
        blueprint_stream(blueprint.blueprint_id),
        version,
        [
            NewEvent(
                event_type=event.event_type, payload=event.payload(), actor=actor, occurred_at=moment,
                correlation_id=blueprint.blueprint_id,
            )
        ],
    )  # fmt: skip
    await project(uow.connection, blueprint, event, moment)


async def project(connection: AsyncConnection, blueprint: Blueprint, event: BlueprintEvent, moment: datetime) -> None:
    """Bring the blueprint's rows up to ``blueprint``, which has just applied ``event`` (at ``moment``)."""
    latest = blueprint.body()
    state = {
        "name": latest["name"],
        "description": latest.get("description", ""),
        "latest_version": blueprint.latest_version,
        "deleted": blueprint.deleted,
        "version": blueprint.version,
        "updated_at": moment,
    }
    if isinstance(event, BlueprintCreated):
        await connection.execute(
            blueprints.insert().values(
                blueprint_id=blueprint.blueprint_id, org_id=blueprint.org_id, created_at=moment, **state
            )
        )
    else:
        update = blueprints.update().where(blueprints.c.blueprint_id == blueprint.blueprint_id)
        await connection.execute(update.values(**state))
    if isinstance(event, BlueprintCreated | BlueprintVersionAdded):
        await connection.execute(
            blueprint_versions.insert().values(
                blueprint_id=blueprint.blueprint_id, version=blueprint.latest_version,
                # Canonical, as the event holds it, so a replay writes the same bytes.
                body=msgspec.json.encode(latest, order="sorted").decode(), created_at=moment,
            )
        )  # fmt: skip
