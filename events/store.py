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
from events.migrations.messaging_0002 import OUTBOX_CHANNEL
from events.notifier import CommitNotifier
from events.rows import envelope_from_row
from events.schema import events, streams
from events.sequencer import sequence_pending
from events.statements import bare_connection, transaction
from events.upcasting import UpcasterRegistry
from events.verify import ChainReport, verify_chain
from events.writing import Batch, write_events, write_events_postgres


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
        # Relays in other processes LISTEN for new outbox rows (events/notifier.py).
        self._outbox_notifier = (
            CommitNotifier(engine, OUTBOX_CHANNEL) if outbox_topic is not None and is_postgres(engine) else None
        )
        if self._outbox_notifier is not None:
            self._commit_listeners.append(self._outbox_notifier.nudge)

    async def close(self) -> None:
        """Finish telling other processes of this one's commits; call before disposing of the engine."""
        if self._outbox_notifier is not None:
            await self._outbox_notifier.close()

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit in this process that appended events.

        In-process only: other processes learn of commits through the outbox
        channel's NOTIFY, which the store sends after such commits on
        PostgreSQL, or by polling.
        """
        self._commit_listeners.append(listener)

    def notify_commit(self) -> None:
        """Tell the commit listeners of a commit that appended events. The store
        calls it after its own; others after theirs (a consumer's transaction:
        its inbox rows and the events its handler appended)."""
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

    def _committed(self, uow: UnitOfWork) -> None:
        if uow.appended:
            self.notify_commit()

    async def append(self, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]) -> list[EventEnvelope]:
        """Append events to a stream that is at ``expected_version`` (0: a new stream).

        Appending events whose ids are already stored in this stream (a retry
        after a lost reply) returns the stored events and stores nothing.
        """
        try:
            if is_postgres(self.engine):
                return await self._append_alone(stream, expected_version, new_events)
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

    async def _append_alone(
        self, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]
    ) -> list[EventEnvelope]:
        """On PostgreSQL an append is one atomic statement: no BEGIN/COMMIT, no SQLAlchemy connection."""
        batch = _batch(self, stream, expected_version, new_events)
        if batch is None:
            return []
        async with bare_connection(self.engine) as driver:
            written = await write_events_postgres(driver, batch, self.outbox_topic)
        if not written:
            async with reading(self.engine) as conn:
                return await _refused(conn, self, batch, new_events)
        self.notify_commit()
        return _returned(self, batch)

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
        batch = _batch(self.store, stream, expected_version, new_events)
        if batch is None:
            return []
        if not await write_events(self.connection, batch, self.store.outbox_topic, driver=self.driver):
            return await _refused(self.connection, self.store, batch, new_events)
        self.appended = True
        return _returned(self.store, batch)

    async def read_stream(self, stream: Stream, from_version: int = 1) -> list[EventEnvelope]:
        """The stream as this transaction sees it (including its own appends)."""
        return await _read_stream(self.connection, self.store.upcasters, stream, from_version)



def _batch(store: EventStore, stream: Stream, expected_version: int, new_events: Sequence[NewEvent]) -> Batch | None:
    """The events as they will be stored after ``expected_version``; None if there are none."""
    if expected_version < 0:
        raise ValueError(f"expected_version must be >= 0, not {expected_version}")
    if not new_events:
        return None
    _refuse_repeated_ids(new_events)
    envelopes = [
        EventEnvelope(
            event_id=event.event_id,
            stream_type=stream.type,
            stream_id=stream.id,
            stream_version=expected_version + i,
            position=None,
            event_type=event.event_type,
            schema_version=event.schema_version or store.upcasters.current_version(event.event_type),
            occurred_at=event.occurred_at,
            actor=event.actor,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            payload=event.payload,
        )
        for i, event in enumerate(new_events, start=1)
    ]
    return Batch(stream, expected_version, envelopes, [encode_payload(event.payload) for event in new_events])


def _returned(store: EventStore, batch: Batch) -> list[EventEnvelope]:
    """The appended events as a reader gets them: upcast to their current schema."""
    returned = []
    for envelope in batch.envelopes:
        version, payload = store.upcasters.upcast(envelope.event_type, envelope.schema_version, envelope.payload)
        if version != envelope.schema_version:
            envelope = msgspec.structs.replace(envelope, schema_version=version, payload=payload)
        returned.append(envelope)
    return returned


async def _refused(
    conn: AsyncConnection, store: EventStore, batch: Batch, new_events: Sequence[NewEvent]
) -> list[EventEnvelope]:
    """The stream had moved on: the stored events if this was a retry, else a ConcurrencyError."""
    stored = await _stored_retry(conn, store, batch.stream, new_events)
    if stored is not None:
        return stored
    stream = batch.stream
    raise ConcurrencyError(stream.type, stream.id, batch.expected, await _current_version(conn, stream))


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
