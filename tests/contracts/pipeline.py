"""Outbox relay and consumer runner: every event arrives, in order, applied once.

Not collected by itself; each backend pair (SQLite + in-process broker,
PostgreSQL + Kafka) subclasses ``PipelineContract`` and provides
``producer_url``, ``consumer_url`` and ``transport``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from events.codec import HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION, decode_envelope
from events.consumer import ConsumerRunner
from events.engine import create_engine, reading
from events.envelope import EventEnvelope, Stream
from events.migrations import upgrade_async
from events.relay import OutboxRelay
from events.schema import consumer_inbox, outbox
from events.statements import Transaction
from events.store import EventStore
from events.transport import Delivery, Message, PublishError, Publisher, Transport
from tests.contracts.transport import fetch_until
from tests.random_refs import new_event, random_stream, random_suffix

# What the test consumer does with each event: one row per application, so a
# double effect shows up as a second row.
applied = sa.Table(
    "test_applied_events",
    sa.MetaData(),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("stream_id", sa.String(200), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
)


async def record_application(envelope: EventEnvelope, tx: Transaction) -> None:
    await tx.connection.execute(
        applied.insert().values(
            event_id=envelope.event_id, stream_id=envelope.stream_id, stream_version=envelope.stream_version
        )
    )


async def eventually(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


class FailingPublisher:
    """A broker that never acknowledges: nothing may be marked published."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, messages: list[Message]) -> None:
        raise PublishError("broker unavailable (test)")


class CrashAfterPublish(Exception):
    """Stands for the relay process dying between the broker's ack and the mark."""


class RelayDyingBeforeMark(OutboxRelay):
    async def _mark_published(self, event_ids) -> None:  # noqa: ANN001
        raise CrashAfterPublish


class PipelineContract:
    @pytest.fixture
    def topic(self) -> str:
        return f"composer.events.test-{random_suffix()}"

    @pytest.fixture
    async def store(self, producer_url: str, topic: str) -> AsyncIterator[EventStore]:
        await upgrade_async(producer_url, "composer")
        engine = create_engine(producer_url)
        store = EventStore(engine, outbox_topic=topic)
        yield store
        await store.close()
        await engine.dispose()

    @pytest.fixture
    async def consumer_engine(self, consumer_url: str) -> AsyncIterator[AsyncEngine]:
        await upgrade_async(consumer_url, "backend")
        engine = create_engine(consumer_url)
        async with engine.begin() as conn:
            await conn.run_sync(applied.metadata.create_all)
        yield engine
        await engine.dispose()

    def after_restart(self, transport: Transport) -> Transport:
        """The broker as a restarted system finds it: Kafka keeps its log (an in-process broker does not)."""
        return transport

    def relay(self, store: EventStore, publisher: Publisher, **options: object) -> OutboxRelay:
        return OutboxRelay(store, publisher, **options)

    def consumer(
        self, transport: Transport, engine: AsyncEngine, topic: str, group: str | None = None, **options: object
    ) -> ConsumerRunner:
        return ConsumerRunner(
            name="history",
            subscriber=transport.subscriber([topic], group or f"history-{random_suffix()}"),
            engine=engine,
            handler=options.pop("handler", record_application),
            dead_letters=transport.publisher(),
            retry_delay=0.01,
            fetch_timeout=0.5,
            **options,
        )

    async def consume_until(self, runner: ConsumerRunner, condition: Callable[[], Awaitable[bool]], what: str) -> None:
        await runner.subscriber.start()
        await runner.dead_letters.start()
        try:
            deadline = time.monotonic() + 60
            while not await condition():
                if time.monotonic() > deadline:
                    pytest.fail(f"consumer did not get there within 60s: {what}")
                await runner.process_batch()
        finally:
            await runner.subscriber.stop()
            await runner.dead_letters.stop()

    async def publish_all(self, store: EventStore, transport: Transport) -> int:
        publisher = transport.publisher()
        await publisher.start()
        try:
            return await self.relay(store, publisher).publish_pending()
        finally:
            await publisher.stop()

    @staticmethod
    async def applications(engine: AsyncEngine) -> list[sa.Row]:
        async with reading(engine) as conn:
            return list(await conn.execute(sa.select(applied).order_by(applied.c.n)))

    @staticmethod
    async def unpublished(store: EventStore) -> int:
        async with reading(store.engine) as conn:
            return await conn.scalar(sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))

    async def append_interleaved(self, store: EventStore, streams: int, per_stream: int) -> list[Stream]:
        chosen = [random_stream() for _ in range(streams)]
        for version in range(per_stream):
            for stream in chosen:
                await store.append(stream, version, [new_event("Step", step=version)])
        return chosen

    async def test_every_event_reaches_the_topic_keyed_by_stream_in_stream_order(
        self, store: EventStore, transport: Transport, topic: str
    ) -> None:
        streams = await self.append_interleaved(store, streams=4, per_stream=5)

        assert await self.publish_all(store, transport) == 20

        subscriber = transport.subscriber([topic], f"reader-{random_suffix()}")
        await subscriber.start()
        try:
            deliveries: list[Delivery] = await fetch_until(subscriber, 20)
        finally:
            await subscriber.stop()
        versions: dict[str, list[int]] = defaultdict(list)
        for delivery in sorted(deliveries, key=lambda d: (d.partition, d.offset)):
            message = delivery.message
            body = decode_envelope(message)
            assert message.key == body.stream_id
            assert message.header(HEADER_EVENT_ID) == str(body.event_id).encode()
            assert message.header(HEADER_EVENT_TYPE) == b"Step"
            assert message.header(HEADER_SCHEMA_VERSION) == b"1"
            versions[body.stream_id].append(body.stream_version)
        assert dict(versions) == {stream.id: [1, 2, 3, 4, 5] for stream in streams}
        assert await self.unpublished(store) == 0

    async def test_a_relay_that_starts_later_publishes_what_is_left_and_what_comes_after(
        self, store: EventStore, transport: Transport, topic: str
    ) -> None:
        early = await self.append_interleaved(store, streams=2, per_stream=2)
        assert await self.publish_all(store, transport) == 4
        late = await self.append_interleaved(store, streams=2, per_stream=1)
        publisher = transport.publisher()
        await publisher.start()
        relay = self.relay(store, publisher)
        try:
            # It finds where the earlier relay stopped, then follows on from its own batches.
            assert await relay.publish_pending() == 2
            latest = await self.append_interleaved(store, streams=1, per_stream=1)
            assert await relay.publish_pending() == 1
            assert await relay.publish_pending() == 0
            # One that starts with nothing left to publish begins after the last event.
            fresh = self.relay(store, publisher)
            assert await fresh.publish_pending() == 0
            latest += await self.append_interleaved(store, streams=1, per_stream=1)
            assert await fresh.publish_pending() == 1
        finally:
            await publisher.stop()

        subscriber = transport.subscriber([topic], f"reader-{random_suffix()}")
        await subscriber.start()
        try:
            deliveries: list[Delivery] = await fetch_until(subscriber, 8)
        finally:
            await subscriber.stop()
        published = sorted(decode_envelope(d.message).stream_id for d in deliveries)
        assert published == sorted(s.id for s in early * 2 + late + latest)
        assert await self.unpublished(store) == 0

    async def test_rows_stay_unpublished_until_the_broker_acknowledges_them(self, store: EventStore) -> None:
        await self.append_interleaved(store, streams=2, per_stream=2)
        relay = self.relay(store, FailingPublisher())

        with pytest.raises(PublishError):
            await relay.publish_pending()

        assert await self.unpublished(store) == 4

    async def test_a_consumer_applies_each_event_once_and_a_replay_changes_nothing(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        await self.append_interleaved(store, streams=3, per_stream=4)
        await self.publish_all(store, transport)
        first = self.consumer(transport, consumer_engine, topic)

        async def all_applied() -> bool:
            return len(await self.applications(consumer_engine)) >= 12

        await self.consume_until(first, all_applied, "12 events applied")
        before = await self.applications(consumer_engine)
        replay = self.consumer(transport, consumer_engine, topic, group=f"replay-{random_suffix()}")

        async def all_seen_again() -> bool:
            return replay.metrics.duplicates._value.get() >= 12

        await self.consume_until(replay, all_seen_again, "replay of 12 events")

        assert await self.applications(consumer_engine) == before
        assert len({row.event_id for row in before}) == 12

    async def test_a_consumer_applies_each_stream_in_version_order(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        streams = await self.append_interleaved(store, streams=5, per_stream=6)
        await self.publish_all(store, transport)
        runner = self.consumer(transport, consumer_engine, topic)

        async def done() -> bool:
            return len(await self.applications(consumer_engine)) >= 30

        await self.consume_until(runner, done, "30 events applied")

        order: dict[str, list[int]] = defaultdict(list)
        for row in await self.applications(consumer_engine):
            order[row.stream_id].append(row.stream_version)
        assert dict(order) == {stream.id: [1, 2, 3, 4, 5, 6] for stream in streams}

    async def test_a_poison_message_is_dead_lettered_with_its_error_and_the_consumer_moves_on(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        poison = random_stream()
        await store.append(poison, 0, [new_event("Poison")])
        await self.append_interleaved(store, streams=2, per_stream=2)
        await self.publish_all(store, transport)

        async def handler(envelope: EventEnvelope, tx: Transaction) -> None:
            if envelope.event_type == "Poison":
                raise ValueError("cannot apply this one")
            await record_application(envelope, tx)

        runner = self.consumer(transport, consumer_engine, topic, handler=handler, max_attempts=3)

        async def done() -> bool:
            return len(await self.applications(consumer_engine)) >= 4 and runner.metrics.dead_lettered._value.get() >= 1

        await self.consume_until(runner, done, "4 applied and 1 dead-lettered")

        assert runner.metrics.dead_lettered._value.get() == 1
        letters = transport.subscriber([topic + ".dlq"], f"dlq-{random_suffix()}")
        await letters.start()
        try:
            (letter,) = await fetch_until(letters, 1)
        finally:
            await letters.stop()
        assert letter.message.key == poison.id
        assert b"ValueError: cannot apply this one" in letter.message.header("dlq_error")
        assert letter.message.header(HEADER_EVENT_TYPE) == b"Poison"
        assert letter.message.header("dlq_consumer") == b"history"
        async with consumer_engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(consumer_inbox)) == 4

    async def test_a_database_failure_is_retried_later_and_never_dead_lettered(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        await store.append(random_stream(), 0, [new_event("Step")])
        await self.publish_all(store, transport)
        group = f"history-{random_suffix()}"

        async def database_gone(envelope: EventEnvelope, tx: Transaction) -> None:
            raise OperationalError("INSERT", {}, ConnectionResetError("connection lost"))

        broken = self.consumer(transport, consumer_engine, topic, group=group, handler=database_gone)
        await broken.subscriber.start()
        await broken.dead_letters.start()
        try:
            with pytest.raises(OperationalError):
                for _ in range(40):
                    await broken.process_batch()
        finally:
            await broken.subscriber.stop()
            await broken.dead_letters.stop()
        assert broken.metrics.dead_lettered._value.get() == 0
        healthy = self.consumer(transport, consumer_engine, topic, group=group)

        async def applied() -> bool:
            return len(await self.applications(consumer_engine)) >= 1

        await self.consume_until(healthy, applied, "the event applied once the database is back")

    async def test_lag_is_reported_per_partition(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        await self.append_interleaved(store, streams=2, per_stream=3)
        await self.publish_all(store, transport)
        runner = self.consumer(transport, consumer_engine, topic)

        async def done() -> bool:
            return len(await self.applications(consumer_engine)) >= 6

        await self.consume_until(runner, done, "6 applied")

        samples = [s for s in runner.metrics.registry.collect() if s.name == "consumer_lag_messages"][0].samples
        assert samples and all(sample.labels["topic"] == topic for sample in samples)
        assert sum(sample.value for sample in samples) == 0

    async def test_published_rows_are_cleaned_up_after_retention_in_bounded_batches(
        self, store: EventStore, transport: Transport
    ) -> None:
        await self.append_interleaved(store, streams=10, per_stream=1)
        await self.publish_all(store, transport)
        await store.append(random_stream(), 0, [new_event("NotYetPublished")])
        relay = self.relay(store, transport.publisher(), retention=timedelta(0), cleanup_batch=3)

        assert await relay.clean_up() == 10

        async with store.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(outbox)) == 1
        assert await self.unpublished(store) == 1

    async def test_metrics_show_pending_rows_their_age_and_published_total(
        self, store: EventStore, transport: Transport
    ) -> None:
        await self.append_interleaved(store, streams=3, per_stream=1)
        publisher = transport.publisher()
        relay = self.relay(store, publisher)
        await relay.refresh_gauges()
        assert relay.metrics.pending._value.get() == 3
        assert relay.metrics.oldest_pending_age._value.get() > 0

        await publisher.start()
        try:
            await relay.publish_pending()
        finally:
            await publisher.stop()
        await relay.refresh_gauges()

        assert relay.metrics.pending._value.get() == 0
        assert relay.metrics.oldest_pending_age._value.get() == 0
        assert relay.metrics.published._value.get() == 3

    async def test_duplicates_from_a_relay_that_died_before_marking_are_absorbed(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        await self.append_interleaved(store, streams=4, per_stream=2)
        dying_publisher = transport.publisher()
        await dying_publisher.start()
        with pytest.raises(CrashAfterPublish):
            await RelayDyingBeforeMark(store, dying_publisher).publish_pending()
        await dying_publisher.stop()
        assert await self.unpublished(store) == 8

        assert await self.publish_all(store, transport) == 8
        runner = self.consumer(transport, consumer_engine, topic)

        async def all_delivered_twice() -> bool:
            metrics = runner.metrics
            return metrics.applied._value.get() + metrics.duplicates._value.get() >= 16

        await self.consume_until(runner, all_delivered_twice, "16 deliveries")

        rows = await self.applications(consumer_engine)
        assert len(rows) == 8 and len({row.event_id for row in rows}) == 8
        assert runner.metrics.duplicates._value.get() == 8

    async def test_a_broker_that_forgot_gets_the_retained_rows_again_and_consumers_apply_only_the_missed(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        await self.append_interleaved(store, streams=2, per_stream=3)
        await self.publish_all(store, transport)
        group = f"history-{random_suffix()}"
        first = self.consumer(transport, consumer_engine, topic, group)

        async def first_three() -> bool:
            return len(await self.applications(consumer_engine)) >= 3

        await self.consume_until(first, first_three, "three events applied")
        applied_before = len(await self.applications(consumer_engine))
        # A later event, published while nothing consumes; then the broker's
        # memory goes (the embedded process stops) and a new relay starts.
        await store.append(random_stream(), 0, [new_event("Late")])
        await self.publish_all(store, transport)
        fresh = self.after_restart(transport)
        publisher = fresh.publisher()
        await publisher.start()
        try:
            republished = await self.relay(store, publisher, batch_size=4).republish_retained()
        finally:
            await publisher.stop()

        assert republished == 7
        again = self.consumer(fresh, consumer_engine, topic, group)

        async def all_applied() -> bool:
            return len(await self.applications(consumer_engine)) >= 7

        await self.consume_until(again, all_applied, "every event applied")
        rows = await self.applications(consumer_engine)
        assert applied_before >= 3
        assert len(rows) == 7 and len({row.event_id for row in rows}) == 7

    async def test_a_consumer_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
        self, store: EventStore, transport: Transport, consumer_engine: AsyncEngine, topic: str
    ) -> None:
        await self.append_interleaved(store, streams=5, per_stream=8)
        await self.publish_all(store, transport)
        group = f"history-{random_suffix()}"
        reached = asyncio.Event()
        hold = asyncio.Event()
        handled = 0

        async def stall_at_the_eleventh(envelope: EventEnvelope, tx: Transaction) -> None:
            nonlocal handled
            await record_application(envelope, tx)
            handled += 1
            if handled == 11:
                reached.set()
                await hold.wait()

        # Batches of 4: two commit fully, the third dies half-applied.
        doomed = self.consumer(
            transport, consumer_engine, topic, group=group, handler=stall_at_the_eleventh, batch_size=4
        )
        running = asyncio.create_task(doomed.run())
        await asyncio.wait_for(reached.wait(), 60)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert len(await self.applications(consumer_engine)) == 8
        survivor = self.consumer(transport, consumer_engine, topic, group=group)

        async def all_applied() -> bool:
            return len(await self.applications(consumer_engine)) >= 40

        await self.consume_until(survivor, all_applied, "40 applied")

        rows = await self.applications(consumer_engine)
        assert len(rows) == 40 and len({row.event_id for row in rows}) == 40
