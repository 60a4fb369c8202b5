"""Rebuilding the backend's projections from its own event store.

``image-builder replay --service backend`` runs it. The projections are the
build history (``backend_composes``, ``backend_compose_images``) and the
blueprints (``backend_blueprints``, ``backend_blueprint_versions``); the
quota count reads the history rows, so it is rebuilt with them.

Everything they show is in image-builder-db's events: the user's requests,
blueprints and deletions, and each composer report the consumer applied,
which it recorded in the compose's own stream (ComposeSubmitted,
ComposeStatusRecorded, ComposeUploadRecorded; ComposeRefused comes from the
submitter). So the backend's store alone suffices: ``composer.events.v1``
need not be consumed again, and the consumer's inbox stays as it is (a
redelivery still changes nothing).

Rows are written by the functions the live path uses: a compose's row from
its aggregate replayed (``created_at`` is its ComposeRequested's time,
``updated_at`` its last event's), a blueprint's rows event by event
(services/backend/blueprint_records.py ``project``). So the rebuilt
projections answer exactly as before.

It runs as one transaction: readers see the old rows until it commits. On
PostgreSQL the projection tables are locked EXCLUSIVE first, so the replay
waits for writers in flight and new writers wait for it (reads go on);
SQLite's single write lock does the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.blueprints import Blueprint, BlueprintEvent
from domain.compose_history import Compose, HistoryEvent
from domain.events import event_from
from events.engine import is_postgres
from events.envelope import EventEnvelope
from events.rows import envelope_from_row
from events.schema import events
from events.store import EventStore
from services.backend.blueprint_records import project
from services.backend.records import history_row, image_rows
from services.backend.tables import blueprint_versions, blueprints, compose_images, composes

BATCH = 1000
# Children first, so deleting never trips a reference.
PROJECTION_TABLES = (compose_images, composes, blueprint_versions, blueprints)


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    composes: int
    blueprints: int
    events: int


async def rebuild_projections(store: EventStore, batch_size: int = BATCH) -> ReplayReport:
    """Throw the projections away and rebuild them from the compose and blueprint streams."""
    async with store.unit_of_work() as uow:
        conn = uow.connection
        if is_postgres(store.engine):
            names = ", ".join(table.name for table in PROJECTION_TABLES)
            await conn.execute(sa.text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
        for table in PROJECTION_TABLES:
            await conn.execute(table.delete())
        history = _HistoryWriter(conn, batch_size)
        async for stream in _streams(conn, store, "compose", batch_size):
            await history.add(stream)
        await history.flush()
        found, blueprint_events = await _rebuild_blueprints(conn, store, batch_size)
    return ReplayReport(composes=history.composes, blueprints=found, events=history.events + blueprint_events)


async def _rebuild_blueprints(conn: AsyncConnection, store: EventStore, batch_size: int) -> tuple[int, int]:
    """Blueprint rows event by event, in the order the events committed.

    Not stream by stream: a name is unique among live blueprints, so a
    blueprint deleted before another took its name must be deleted first here too.
    """
    found: dict[str, Blueprint] = {}
    seen = 0
    # Sequenced events by position, then those committed since the last sequencing pass in
    # insert order; one statement, so one snapshot.
    query = (
        sa.select(events)
        .where(events.c.stream_type == "blueprint")
        .order_by(events.c.position.asc().nulls_last(), events.c.seq)
        .execution_options(yield_per=batch_size)
    )
    async for row in (await conn.stream(query)).mappings():
        envelope = envelope_from_row(row, store.upcasters)
        blueprint = found.setdefault(envelope.stream_id, Blueprint())
        event = cast(BlueprintEvent, event_from(envelope.event_type, envelope.payload, BlueprintEvent))
        blueprint.apply(event)
        await project(conn, blueprint, event, envelope.occurred_at)
        seen += 1
    return len(found), seen


class _HistoryWriter:
    """Inserts history rows in batches."""

    def __init__(self, conn: AsyncConnection, batch_size: int) -> None:
        self.conn = conn
        self.batch_size = batch_size
        self.rows: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []
        self.composes = 0
        self.events = 0

    async def add(self, stream: Sequence[EventEnvelope]) -> None:
        compose = Compose.replay(event_from(e.event_type, e.payload, HistoryEvent) for e in stream)
        self.rows.append(history_row(compose, created_at=stream[0].occurred_at, updated_at=stream[-1].occurred_at))
        self.images += image_rows(compose)
        self.events += len(stream)
        if len(self.rows) >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        if self.rows:
            await self.conn.execute(composes.insert(), self.rows)
            await self.conn.execute(compose_images.insert(), self.images)
            self.composes += len(self.rows)
            self.rows, self.images = [], []


async def _streams(
    conn: AsyncConnection, store: EventStore, stream_type: str, batch_size: int
) -> AsyncIterator[list[EventEnvelope]]:
    """Each stream of ``stream_type`` with its events in version order (one statement, read a batch at a time)."""
    query = (
        sa.select(events)
        .where(events.c.stream_type == stream_type)
        .order_by(events.c.stream_id, events.c.stream_version)
        .execution_options(yield_per=batch_size)
    )
    stream: list[EventEnvelope] = []
    async for row in (await conn.stream(query)).mappings():
        envelope = envelope_from_row(row, store.upcasters)
        if stream and envelope.stream_id != stream[0].stream_id:
            yield stream
            stream = []
        stream.append(envelope)
    if stream:
        yield stream
