"""The outbox relay: publishes stored events to the broker, at least once.

It reads outbox rows of sequenced events in global-position order, so each
stream's events go out in order, keyed by stream id. A row is marked published
only after the broker acknowledged it; a crash in between publishes it again
and consumers absorb the duplicate (events/consumer.py).

Several replicas may run: one leads (a PostgreSQL session advisory lock) and
the others wait to take over. The leader wakes on the outbox trigger's
NOTIFY, on commits in its own process, and at the latest every
``poll_interval`` seconds, since a notification is only a hint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge

from events.codec import envelope_message
from events.engine import is_postgres, reading
from events.envelope import EventEnvelope
from events.migrations.messaging_0002 import OUTBOX_CHANNEL
from events.postgres import AdvisoryLeadership, Listener, SoleLeadership
from events.rows import envelope_from_row
from events.schema import events, outbox
from events.statements import Statement, transaction
from events.store import EventStore
from events.transport import PublishError, Publisher
from events.wakeup import Wakeup

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = 0x1B5E0002
MAX_BACKOFF = 10.0
# The pending-rows gauges cost a query; once a second is plenty for a scrape.
GAUGE_INTERVAL = 1.0


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.pending = Gauge("outbox_pending_rows", "Outbox rows not yet published", registry=self.registry)
        self.oldest_pending_age = Gauge(
            "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row", registry=self.registry
        )
        self.published = Counter("outbox_published", "Events published and acknowledged", registry=self.registry)
        self.errors = Counter("outbox_publish_errors", "Failed publish attempts", registry=self.registry)
        self.leader = Gauge("outbox_relay_leader", "1 while this relay is the one publishing", registry=self.registry)


class OutboxRelay:
    def __init__(
        self,
        store: EventStore,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        poll_interval: float = 2.0,
        retention: timedelta = timedelta(hours=24),
        cleanup_interval: float = 60.0,
        cleanup_batch: int = 1000,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.cleanup_interval = cleanup_interval
        self.cleanup_batch = cleanup_batch
        self.metrics = metrics or RelayMetrics()
        self.wakeup = Wakeup()
        self._stop = asyncio.Event()
        # Every event with an outbox row at or below this position is published
        # (None: not known yet; found again whenever this relay starts to lead).
        self._published_through: int | None = None
        postgres = is_postgres(store.engine)
        self.leadership = AdvisoryLeadership(store.engine, RELAY_LOCK_KEY) if postgres else SoleLeadership()
        self._listener = Listener(store.engine, OUTBOX_CHANNEL, self.wakeup.nudge) if postgres else None
        store.on_commit(self.wakeup.nudge)

    def request_stop(self) -> None:
        self._stop.set()
        self.wakeup.nudge()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Publish until ``request_stop``; waits its turn while another replica leads."""
        try:
            while await self.leadership.acquire(self._stop):
                self.metrics.leader.set(1)
                try:
                    await self._lead()
                finally:
                    self.metrics.leader.set(0)
                    await self.leadership.release()
        finally:
            await self._stop_listening()
            await self.publisher.stop()

    async def _lead(self) -> None:
        self._published_through = None  # another leader may have published meanwhile
        if not await self._start_publisher():
            return
        backoff = 0.5
        next_cleanup = next_gauges = time.monotonic()
        while not self._stop.is_set() and await self.leadership.still_leader():
            await self._keep_listening()
            try:
                await self.publish_pending()
                backoff = 0.5
            except PublishError as error:
                self.metrics.errors.inc()
                log.warning("publishing the outbox failed, retrying in %.1fs: %s", backoff, error)
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if time.monotonic() >= next_cleanup:
                await self.clean_up()
                next_cleanup = time.monotonic() + self.cleanup_interval
            if time.monotonic() >= next_gauges:
                await self.refresh_gauges()
                next_gauges = time.monotonic() + GAUGE_INTERVAL
            await self._pause(self.poll_interval)

    async def publish_pending(self) -> int:
        """Publish every sequenced, unpublished event; returns how many went out."""
        total = 0
        while True:
            await self.store.sequence()
            if self._published_through is None:
                self._published_through = await self._first_unpublished_position() - 1
            batch = await self._unpublished(after=self._published_through)
            if batch:
                await self.publisher.publish([envelope_message(topic, envelope) for topic, envelope in batch])
                await self._mark_published([envelope.event_id for _, envelope in batch])
                self.metrics.published.inc(len(batch))
                total += len(batch)
                # Batches go out in position order, so what is published is a prefix.
                self._published_through = batch[-1][1].position
            # A short batch was everything there was; what commits meanwhile wakes us again.
            if len(batch) < self.batch_size:
                return total

    async def republish_retained(self) -> int:
        """Publish again every published row the outbox still keeps (within the retention), in order.

        For a broker that forgets on restart (the embedded mode's in-process
        one): an event published just before the process stopped may not have
        reached its consumers; sent again, their inboxes drop what they had.
        """
        total = 0
        after: int | None = None
        while True:
            query = (
                sa.select(outbox.c.topic, events)
                .join_from(outbox, events, outbox.c.event_id == events.c.event_id)
                .where(outbox.c.published_at.is_not(None))
                .order_by(events.c.position)
                .limit(self.batch_size)
            )
            if after is not None:
                query = query.where(events.c.position > after)
            async with reading(self.store.engine) as conn:
                rows = (await conn.execute(query)).mappings().all()
            if rows:
                await self.publisher.publish(
                    [envelope_message(row["topic"], envelope_from_row(row, self.store.upcasters)) for row in rows]
                )
                total += len(rows)
                after = rows[-1]["position"]
            if len(rows) < self.batch_size:
                return total

    async def clean_up(self) -> int:
        """Delete rows published longer ago than the retention, in bounded batches."""
        cutoff = datetime.now(UTC) - self.retention
        deleted = 0
        while True:
            doomed = (
                sa.select(outbox.c.event_id)
                .where(outbox.c.published_at < cutoff)
                .limit(self.cleanup_batch)
                .scalar_subquery()
            )
            async with self.store.engine.begin() as conn:
                result = await conn.execute(outbox.delete().where(outbox.c.event_id.in_(doomed)))
            deleted += result.rowcount
            if result.rowcount < self.cleanup_batch:
                return deleted

    async def refresh_gauges(self) -> None:
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
        async with reading(self.store.engine) as conn:
            count, oldest = (await conn.execute(query)).one()
        self.metrics.pending.set(count)
        age = 0.0 if oldest is None else (datetime.now(UTC) - _aware(oldest)).total_seconds()
        self.metrics.oldest_pending_age.set(max(age, 0.0))

    async def _first_unpublished_position(self) -> int:
        """The lowest position with an unpublished outbox row, or one past the last event.

        Once, when this relay starts to lead: with stale statistics PostgreSQL
        may walk every event to answer it.
        """
        unpublished = (
            sa.select(sa.func.min(events.c.position))
            .join_from(outbox, events, outbox.c.event_id == events.c.event_id)
            .where(outbox.c.published_at.is_(None), events.c.position.is_not(None))
        )
        async with reading(self.store.engine) as conn:
            first = await conn.scalar(unpublished)
            if first is not None:
                return first
            return (await conn.scalar(sa.select(sa.func.max(events.c.position))) or 0) + 1

    async def _unpublished(self, after: int) -> list[tuple[str, EventEnvelope]]:
        # From a known position rather than "every unpublished row": outbox rows
        # are inserted unpublished and updated moments later, so its statistics
        # are often stale, and then PostgreSQL chose to walk all events in
        # position order looking for unpublished ones (35 ms per batch at
        # 20,000 events, and growing; bench/pipeline fell 12 s behind).
        query = (
            sa.select(outbox.c.topic, events)
            .join_from(events, outbox, outbox.c.event_id == events.c.event_id)
            .where(events.c.position > after, outbox.c.published_at.is_(None))
            .order_by(events.c.position)
            .limit(self.batch_size)
        )
        async with reading(self.store.engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [(row["topic"], envelope_from_row(row, self.store.upcasters)) for row in rows]

    async def _mark_published(self, event_ids: Sequence) -> None:
        async with transaction(self.store.engine) as tx:
            if tx.driver is not None:
                await _MARK_PUBLISHED_POSTGRES.execute(tx, ids=list(event_ids), at=datetime.now(UTC))
            else:
                await tx.connection.execute(
                    outbox.update().where(outbox.c.event_id.in_(event_ids)).values(published_at=datetime.now(UTC))
                )

    async def _start_publisher(self) -> bool:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                await self.publisher.start()
                return True
            except Exception as error:  # noqa: BLE001 - any failure to connect is retried
                self.metrics.errors.inc()
                log.warning("cannot reach the broker, retrying in %.1fs: %s", backoff, error)
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        return False

    async def _keep_listening(self) -> None:
        if self._listener is None or self._listener.alive:
            return
        try:
            await self._listener.start()
        except OSError as error:
            log.warning("cannot LISTEN for outbox notifications, polling instead: %s", error)

    async def _stop_listening(self) -> None:
        if self._listener is not None:
            await self._listener.stop()

    async def _pause(self, seconds: float) -> None:
        if not self._stop.is_set():
            await self.wakeup.wait(seconds)


# One array parameter: an IN list would be a new statement for every batch size.
_MARK_PUBLISHED_POSTGRES = Statement(
    sa.text("UPDATE outbox SET published_at = :at WHERE event_id = ANY(CAST(:ids AS uuid[]))")
)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
