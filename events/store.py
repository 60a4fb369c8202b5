"""The event store: append with optimistic concurrency, read a stream, read all.

Appends, their outbox rows and any projection updates made through the same
``UnitOfWork`` commit in one database transaction. Global positions are given
after commit by the sequencer (events/sequencer.py); ``read_all`` only returns
sequenced events, so a follower never sees an order that could still change.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.engine import reading
from events.envelope import EventEnvelope, NewEvent, Stream, encode_payload
from events.errors import ConcurrencyError, DuplicateEventError
from events.filters import EventFilter
from events.rows import envelope_from_row
from events.schema import events, outbox, streams
from events.sequencer import sequence_pending
from events.upcasting import UpcasterRegistry
from events.verify import ChainReport, verify_chain


class EventStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        outbox_topic: str | None = None,
        upcasters: UpcasterRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.outbox_topic = outbox_topic
        self.upcasters = upcasters or UpcasterRegistry()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction for appends and the projection updates that go with them."""
        async with self.engine.begin() as conn:
            yield UnitOfWork(self, conn)

    async def append(self, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]) -> list[EventEnvelope]:
        """Append events to a stream that is at ``expected_version`` (0: a new stream).

        Appending events whose ids are already stored in this stream (a retry
        after a lost reply) returns the stored events and stores nothing.
        """
        try:
            async with self.unit_of_work() as uow:
                return await uow.append(stream, expected_version, new_events)
        except IntegrityError:
            # A concurrent append of the same ids can win between our checks and
            # our insert; decide afresh what the stored state means.
            async with reading(self.engine) as conn:
                stored = await _stored_retry(conn, self, stream, new_events)
                if stored is None:
                    raise
                return stored

    async def read_stream(self, stream: Stream, from_version: int = 1) -> list[EventEnvelope]:
        query = (
            sa.select(events)
            .where(
                events.c.stream_type == stream.type,
                events.c.stream_id == stream.id,
                events.c.stream_version >= from_version,
            )
            .order_by(events.c.stream_version)
        )
        async with reading(self.engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [envelope_from_row(row, self.upcasters) for row in rows]

    async def stream_version(self, stream: Stream) -> int:
        async with reading(self.engine) as conn:
            return await _current_version(conn, stream)

    async def read_all(
        self, after_position: int = 0, limit: int = 1000, where: EventFilter | None = None
    ) -> list[EventEnvelope]:
        """Sequenced events after ``after_position`` in global order, at most ``limit``."""
        await self.sequence()
        query = sa.select(events).where(events.c.position > after_position)
        if where is not None:
            query = query.where(*where.conditions())
        query = query.order_by(events.c.position).limit(limit)
        async with reading(self.engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [envelope_from_row(row, self.upcasters) for row in rows]

    async def sequence(self) -> int:
        """Place committed events in the global order now; returns how many."""
        return await sequence_pending(self.engine)

    async def verify(self) -> ChainReport:
        return await verify_chain(self.engine)


class UnitOfWork:
    """An open transaction on an event store.

    ``connection`` is there for projection updates that must commit together
    with the events they are derived from.
    """

    def __init__(self, store: EventStore, connection: AsyncConnection) -> None:
        self.store = store
        self.connection = connection

    async def append(self, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]) -> list[EventEnvelope]:
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, not {expected_version}")
        if not new_events:
            return []
        _refuse_repeated_ids(new_events)
        conn = self.connection
        if not await _claim_versions(conn, stream, expected_version, len(new_events)):
            stored = await _stored_retry(conn, self.store, stream, new_events)
            if stored is not None:
                return stored
            raise ConcurrencyError(stream.type, stream.id, expected_version, await _current_version(conn, stream))
        rows = [self._row(stream, expected_version + i + 1, event) for i, event in enumerate(new_events)]
        await conn.execute(events.insert(), rows)
        if self.store.outbox_topic is not None:
            now = datetime.now(UTC)
            await conn.execute(
                outbox.insert(),
                [{"event_id": row["event_id"], "topic": self.store.outbox_topic, "created_at": now} for row in rows],
            )
        return [envelope_from_row(row, self.store.upcasters) for row in rows]

    def _row(self, stream: Stream, version: int, event: NewEvent) -> dict[str, Any]:
        schema_version = event.schema_version or self.store.upcasters.current_version(event.event_type)
        return {
            "event_id": event.event_id,
            "stream_type": stream.type,
            "stream_id": stream.id,
            "stream_version": version,
            "event_type": event.event_type,
            "schema_version": schema_version,
            "occurred_at": event.occurred_at,
            "actor_subject": event.actor.subject,
            "actor_org_id": event.actor.org_id,
            "actor_client": event.actor.client,
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "payload": encode_payload(event.payload),
            "position": None,
            "hash": None,
        }


def _refuse_repeated_ids(new_events: Sequence[NewEvent]) -> None:
    seen: set[uuid.UUID] = set()
    for event in new_events:
        if event.event_id in seen:
            raise DuplicateEventError(event.event_id, "it appears twice in one append")
        seen.add(event.event_id)


async def _claim_versions(conn: AsyncConnection, stream: Stream, expected: int, count: int) -> bool:
    """Move the stream from ``expected`` to ``expected + count``; False if it is elsewhere.

    The row lock taken here makes concurrent appends to one stream wait for
    each other and then fail cleanly, instead of racing on the events table.
    """
    if expected == 0:
        insert = _dialect_insert(conn)(streams).values(stream_type=stream.type, stream_id=stream.id, version=count)
        result = await conn.execute(insert.on_conflict_do_nothing())
    else:
        result = await conn.execute(
            streams.update()
            .where(streams.c.stream_type == stream.type, streams.c.stream_id == stream.id, streams.c.version == expected)
            .values(version=expected + count)
        )
    return result.rowcount == 1


def _dialect_insert(conn: AsyncConnection):  # noqa: ANN202
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


async def _current_version(conn: AsyncConnection, stream: Stream) -> int:
    version = await conn.scalar(
        sa.select(streams.c.version).where(streams.c.stream_type == stream.type, streams.c.stream_id == stream.id)
    )
    return version or 0


async def _stored_retry(
    conn: AsyncConnection, store: EventStore, stream: Stream, new_events: Sequence[NewEvent]
) -> list[EventEnvelope] | None:
    """The stored events if ``new_events`` were all appended to ``stream`` before.

    None when none of the ids is stored; an error when only some are, or when
    they were stored elsewhere, since then this is not a retry of one append.
    """
    ids = [event.event_id for event in new_events]
    rows = (await conn.execute(sa.select(events).where(events.c.event_id.in_(ids)))).mappings().all()
    if not rows:
        return None
    by_id = {row["event_id"]: row for row in rows}
    for event in new_events:
        row = by_id.get(event.event_id)
        if row is None:
            raise DuplicateEventError(rows[0]["event_id"], "it was stored by an append with other events")
        if (row["stream_type"], row["stream_id"]) != (stream.type, stream.id):
            raise DuplicateEventError(event.event_id, f"it belongs to stream {row['stream_type']}/{row['stream_id']}")
        if row["event_type"] != event.event_type:
            raise DuplicateEventError(event.event_id, f"it was stored as a {row['event_type']}")
    return [envelope_from_row(by_id[event_id], store.upcasters) for event_id in ids]
