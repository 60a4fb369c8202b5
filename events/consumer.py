"""The consumer runner: applies each event of a topic exactly once in effect.

A handler's database writes and the inbox row saying "this consumer applied
this event id" commit in one transaction; only then is the broker offset
committed. A crash anywhere redelivers from the last committed offset, and the
inbox turns every redelivered event into a no-op, so replaying a topic from
the beginning changes nothing that was applied.

A handler that keeps failing on one message (a poison message) does not block
the partition forever: after ``max_attempts`` the message goes to the
dead-letter topic ``<topic>.dlq`` with the error and its original headers, is
logged and counted, and the consumer moves on. If even the dead-letter publish
fails, the runner stops without committing, so nothing is ever dropped.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from events.codec import decode_envelope
from events.envelope import EventEnvelope
from events.inbox import record_new, record_once
from events.statements import Transaction, transaction
from events.transport import Delivery, Message, Publisher, Subscriber
from events.upcasting import UpcasterRegistry

log = logging.getLogger(__name__)

# Called inside the transaction that records the event in the inbox; its
# writes go through ``tx.connection`` (SQLAlchemy) or ``tx.driver`` (asyncpg,
# on PostgreSQL; see events/statements.py).
Handler = Callable[[EventEnvelope, Transaction], Awaitable[None]]

DEAD_LETTER_SUFFIX = ".dlq"

# Failures of the broker or the database, not of a message: retried, never dead-lettered.
INFRASTRUCTURE_ERRORS = (ConnectionError, OSError, TimeoutError, OperationalError, InterfaceError)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.applied = Counter("consumer_events_applied", "Events applied by the handler", registry=self.registry)
        self.duplicates = Counter(
            "consumer_duplicates_skipped", "Redelivered events already applied", registry=self.registry
        )
        self.dead_lettered = Counter(
            "consumer_dead_lettered", "Messages sent to the dead-letter topic", registry=self.registry
        )
        self.lag = Gauge(
            "consumer_lag_messages", "Messages not yet fetched", ["topic", "partition"], registry=self.registry
        )


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        subscriber: Subscriber,
        engine: AsyncEngine,
        handler: Handler,
        dead_letters: Publisher,
        max_attempts: int = 3,
        retry_delay: float = 0.2,
        fetch_timeout: float = 1.0,
        batch_size: int = 500,
        upcasters: UpcasterRegistry | None = None,
        metrics: ConsumerMetrics | None = None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_commit`` is called after each transaction that applied events, e.g. to
        wake what follows the store the handler writes to (``EventStore.notify_commit``)."""
        self.name = name
        self.subscriber = subscriber
        self.engine = engine
        self.handler = handler
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.fetch_timeout = fetch_timeout
        self.batch_size = batch_size
        self.upcasters = upcasters or UpcasterRegistry()
        self.metrics = metrics or ConsumerMetrics()
        self.on_commit = on_commit
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self.subscriber.start()
        await self.dead_letters.start()
        backoff = 0.5
        try:
            while not self._stop.is_set():
                try:
                    await self.process_batch()
                    backoff = 0.5
                except INFRASTRUCTURE_ERRORS as error:
                    # Broker or database gone, or partitions moved while committing:
                    # what was not committed is delivered again, and the inbox absorbs it.
                    log.warning("%s: broker or database trouble, retrying in %.1fs: %s", self.name, backoff, error)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            await self.subscriber.stop()
            await self.dead_letters.stop()

    async def process_batch(self) -> int:
        """Fetch, apply and commit one batch; returns how many deliveries it handled."""
        deliveries = await self.subscriber.fetch(self.fetch_timeout, self.batch_size)
        if deliveries:
            try:
                await self._apply_together(deliveries)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception:  # noqa: BLE001 - find the culprit one message at a time
                for delivery in deliveries:
                    await self._handle(delivery)
            await self.subscriber.commit(deliveries)
        await self._record_lag()
        return len(deliveries)

    async def _apply_together(self, deliveries: list[Delivery]) -> None:
        """The whole batch in one transaction: one commit, and one inbox statement, for all."""
        envelopes = [self._decode(delivery.message) for delivery in deliveries]
        applied = 0
        async with transaction(self.engine) as tx:
            fresh = await record_new(tx, self.name, [e.event_id for e in envelopes], datetime.now(UTC))
            for envelope in envelopes:
                if envelope.event_id in fresh:
                    fresh.discard(envelope.event_id)  # a second copy in this batch is a duplicate
                    await self.handler(envelope, tx)
                    applied += 1
        if applied:
            self.on_commit()
        self.metrics.applied.inc(applied)
        self.metrics.duplicates.inc(len(envelopes) - applied)

    async def _handle(self, delivery: Delivery) -> None:
        error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply(delivery)
                return
            except INFRASTRUCTURE_ERRORS:
                raise  # not the message's fault: it must not end in the dead-letter topic
            except Exception as failure:  # noqa: BLE001 - any handler failure counts as an attempt
                error = failure
                log.warning(
                    "%s: attempt %d/%d at %s[%d]@%d failed: %r",
                    self.name, attempt, self.max_attempts, delivery.message.topic,
                    delivery.partition, delivery.offset, failure,
                )  # fmt: skip
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.retry_delay * attempt)
        assert error is not None
        await self._dead_letter(delivery, error)

    async def _apply(self, delivery: Delivery) -> None:
        envelope = self._decode(delivery.message)
        async with transaction(self.engine) as tx:
            fresh = await self._apply_in(tx, envelope)
        if fresh:
            self.on_commit()
        (self.metrics.applied if fresh else self.metrics.duplicates).inc()

    async def _apply_in(self, tx: Transaction, envelope: EventEnvelope) -> bool:
        if not await record_once(tx.connection, self.name, envelope.event_id, datetime.now(UTC)):
            return False
        await self.handler(envelope, tx)
        return True

    def _decode(self, message: Message) -> EventEnvelope:
        envelope = decode_envelope(message)
        version, payload = self.upcasters.upcast(envelope.event_type, envelope.schema_version, envelope.payload)
        if version == envelope.schema_version:
            return envelope
        return msgspec.structs.replace(envelope, schema_version=version, payload=payload)

    async def _dead_letter(self, delivery: Delivery, error: BaseException) -> None:
        original = delivery.message
        headers = (
            *original.headers,
            ("dlq_error", "".join(traceback.format_exception_only(error)).strip().encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_source", f"{original.topic}[{delivery.partition}]@{delivery.offset}".encode()),
        )
        await self.dead_letters.publish(
            [Message(topic=original.topic + DEAD_LETTER_SUFFIX, key=original.key, value=original.value, headers=headers)]
        )
        self.metrics.dead_lettered.inc()
        log.error(
            "%s: gave up on %s[%d]@%d after %d attempts, sent to %s: %r",
            self.name, original.topic, delivery.partition, delivery.offset,
            self.max_attempts, original.topic + DEAD_LETTER_SUFFIX, error,
        )  # fmt: skip

    async def _record_lag(self) -> None:
        for (topic, partition), lag in (await self.subscriber.lag()).items():
            self.metrics.lag.labels(topic=topic, partition=str(partition)).set(lag)
