"""Relay and consumers on PostgreSQL with a real Kafka broker (distributed mode)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from events.engine import create_engine
from events.kafka import KafkaTransport
from events.relay import OutboxRelay
from events.store import EventStore
from tests.contracts.pipeline import PipelineContract, eventually
from tests.random_refs import new_event, random_stream

pytestmark = pytest.mark.integration


@pytest.fixture
def producer_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def consumer_url(postgres_url_factory: Callable[..., str]) -> str:
    return postgres_url_factory("consumer")


@pytest.fixture
def transport(kafka_bootstrap: str) -> KafkaTransport:
    return KafkaTransport(kafka_bootstrap)


class TestPipelineOnPostgreSQLAndKafka(PipelineContract):
    """The contract, plus the faults only a real broker and database have."""

    async def test_events_appended_while_the_broker_is_down_all_arrive_once_in_stream_order(
        self, store: EventStore, transport: KafkaTransport, consumer_engine: AsyncEngine, topic: str, kafka_server
    ) -> None:
        kafka_server.stop()
        relay = OutboxRelay(store, transport.publisher(), poll_interval=0.5)
        running = asyncio.create_task(relay.run())
        try:
            streams = [random_stream() for _ in range(50)]
            for version in range(20):
                await asyncio.gather(*(store.append(s, version, [new_event("Step", step=version)]) for s in streams))
            await eventually(lambda: _true(relay.metrics.errors._value.get() > 0), "the relay noticed the broker is down")
            assert await self.unpublished(store) == 1000
        finally:
            kafka_server.start()
        runner = self.consumer(transport, consumer_engine, topic)

        async def all_applied() -> bool:
            return len(await self.applications(consumer_engine)) >= 1000

        await self.consume_until(runner, all_applied, "1000 events applied")
        relay.request_stop()
        await running

        rows = await self.applications(consumer_engine)
        assert len(rows) == 1000 and len({row.event_id for row in rows}) == 1000
        order: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            order[row.stream_id].append(row.stream_version)
        assert dict(order) == {s.id: list(range(1, 21)) for s in streams}
        assert await self.unpublished(store) == 0

    async def test_the_relay_wakes_on_a_commit_in_another_process_without_polling(
        self, store: EventStore, transport: KafkaTransport, producer_url: str, topic: str
    ) -> None:
        relay = OutboxRelay(store, transport.publisher(), poll_interval=3600)
        running = asyncio.create_task(relay.run())
        await eventually(lambda: _true(relay._listener is not None and relay._listener.alive), "relay listening")
        # A separate engine and store: only the NOTIFY the other store sends
        # after its commit can reach the relay.
        other_engine = create_engine(producer_url)
        other = EventStore(other_engine, outbox_topic=topic)
        try:
            await other.append(random_stream(), 0, [new_event()])
            await eventually(lambda: _true(relay.metrics.published._value.get() == 1), "published via NOTIFY", 15)
        finally:
            relay.request_stop()
            await running
            await other.close()
            await other_engine.dispose()


async def _true(value: bool) -> bool:
    return value
