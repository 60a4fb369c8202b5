"""The event store: append with optimistic concurrency, read a stream, read all.

Appends, their outbox rows and any projection updates made through the same
``UnitOfWork`` commit in one database transaction. Global positions are given
after commit by the sequencer (events/sequencer.py); ``read_all`` only returns
sequenced events, so a follower never sees an order that could still change.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.engine import is_postgres, reading
from events.envelope import EventEnvelope, NewEvent, Stream, encode_payload
from events.errors import ConcurrencyError, DuplicateEventError
from events.filters import EventFilter
from events.rows import envelope_from_row
from events.schema import events, streams
from events.sequencer import sequence_pending
from events.statements import transaction
from events.upcasting import UpcasterRegistry
from events.verify import ChainReport, verify_chain
from events.writing import Batch, write_events


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
        self._commit_listeners: list[Callable[[], None]] = []

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit in this process that appended events.

        In-process only: other processes learn of commits through the outbox
        notification (PostgreSQL) or by polling.
        """
        self._commit_listeners.append(listener)

    def notify_commit(self) -> None:
        """Tell the commit listeners of a commit made outside ``unit_of_work`` (a
        consumer's transaction: its inbox rows and the events its handler appended)."""
        for listener in self._commit_listeners:
            listener()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction for appends and the projection updates that go with them.

        On PostgreSQL the transaction is asyncpg's (events/statements.py):
        ``uow.connection`` and ``uow.driver`` both work inside it.
        """
        async with transaction(self.engine) as tx:
            uow = UnitOfWork(self, tx.connection, driver=tx.driver)
            yield uow
        self._committed(uow)
        for callback in uow.commit_callbacks:
            callback()

    @asynccontextmanager
    async def _lone_append(self) -> AsyncIterator[UnitOfWork]:
        """Where an append is a single atomic statement (PostgreSQL), skip BEGIN/COMMIT."""
        if not is_postgres(self.engine):
            async with self.unit_of_work() as uow:
                yield uow
            return
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            uow = UnitOfWork(self, conn, driver=(await conn.get_raw_connection()).driver_connection)
            yield uow
        self._committed(uow)

    def _committed(self, uow: UnitOfWork) -> None:
        if uow.appended:
            for listener in self._commit_listeners:
                listener()

    async def append(self, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]) -> list[EventEnvelope]:
        """Append events to a stream that is at ``expected_version`` (0: a new stream).

        Appending events whose ids are already stored in this stream (a retry
        after a lost reply) returns the stored events and stores nothing.
        """
        try:
            async with self._lone_append() as uow:
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
        async with reading(self.engine) as conn:
            return await _read_stream(conn, self.upcasters, stream, from_version)

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
    with the events they are derived from; on PostgreSQL ``driver`` is the
    asyncpg connection under it, for statements run without SQLAlchemy.
    """

    def __init__(
        self, store: EventStore, connection: AsyncConnection, *, driver: asyncpg.Connection | None = None
    ) -> None:
        self.store = store
        self.connection = connection
        self.driver = driver
        self.appended = False
        self.commit_callbacks: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this unit of work has committed (not if it rolls back)."""
        if callback not in self.commit_callbacks:
            self.commit_callbacks.append(callback)

    async def append(self, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]) -> list[EventEnvelope]:
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, not {expected_version}")
        if not new_events:
            return []
        _refuse_repeated_ids(new_events)
        conn = self.connection
        envelopes = [self._envelope(stream, expected_version + i + 1, event) for i, event in enumerate(new_events)]
        batch = Batch(stream, expected_version, envelopes, [encode_payload(event.payload) for event in new_events])
        if not await write_events(conn, batch, self.store.outbox_topic, driver=self.driver):
            stored = await _stored_retry(conn, self.store, stream, new_events)
            if stored is not None:
                return stored
            raise ConcurrencyError(stream.type, stream.id, expected_version, await _current_version(conn, stream))
        self.appended = True
        return [self._upcast(envelope) for envelope in envelopes]

    async def read_stream(self, stream: Stream, from_version: int = 1) -> list[EventEnvelope]:
        """The stream as this transaction sees it (including its own appends)."""
        return await _read_stream(self.connection, self.store.upcasters, stream, from_version)

    def _envelope(self, stream: Stream, version: int, event: NewEvent) -> EventEnvelope:
        return EventEnvelope(
            event_id=event.event_id,
            stream_type=stream.type,
            stream_id=stream.id,
            stream_version=version,
            position=None,
            event_type=event.event_type,
            schema_version=event.schema_version or self.store.upcasters.current_version(event.event_type),
            occurred_at=event.occurred_at,
            actor=event.actor,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            payload=event.payload,
        )

    def _upcast(self, envelope: EventEnvelope) -> EventEnvelope:
        version, payload = self.store.upcasters.upcast(envelope.event_type, envelope.schema_version, envelope.payload)
        if version == envelope.schema_version:
            return envelope
        return msgspec.structs.replace(envelope, schema_version=version, payload=payload)


async def _read_stream(
    conn: AsyncConnection, upcasters: UpcasterRegistry, stream: Stream, from_version: int
) -> list[EventEnvelope]:
    query = (
        sa.select(events)
        .where(
            events.c.stream_type == stream.type,
            events.c.stream_id == stream.id,
            events.c.stream_version >= from_version,
        )
        .order_by(events.c.stream_version)
    )
    rows = (await conn.execute(query)).mappings().all()
    return [envelope_from_row(row, upcasters) for row in rows]


def _refuse_repeated_ids(new_events: Sequence[NewEvent]) -> None:
    seen: set[uuid.UUID] = set()
    for event in new_events:
        if event.event_id in seen:
            raise DuplicateEventError(event.event_id, "it appears twice in one append")
        seen.add(event.event_id)


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
