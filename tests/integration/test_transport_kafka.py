"""The transport contract on a real Kafka broker, and what only Kafka can do."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from events.kafka import KafkaTransport, ensure_topics
from events.transport import Message, PublishError
from tests.contracts.transport import TransportContract, fetch_until, random_name, values
from tests.servers._util import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def transport(kafka_bootstrap: str) -> KafkaTransport:
    return KafkaTransport(kafka_bootstrap)


class TestKafkaTransport(TransportContract):
    @pytest.fixture
    async def topic(self, kafka_bootstrap: str) -> str:
        # Several partitions, so per-key order and per-partition commits are really tested.
        name = random_name("topic")
        await ensure_topics(kafka_bootstrap, [name], partitions=3)
        return name


async def partitions(bootstrap: str, topic: str) -> set[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"] for p in described["partitions"]}


async def test_ensure_topics_creates_missing_topics_and_leaves_existing_ones_alone(kafka_bootstrap: str) -> None:
    topic = random_name("topic")

    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    await ensure_topics(kafka_bootstrap, [topic], partitions=5)

    assert await partitions(kafka_bootstrap, topic) == {0, 1, 2}


async def test_starting_without_a_reachable_broker_fails_fast() -> None:
    transport = KafkaTransport(f"127.0.0.1:{free_port()}", timeout=3)
    started = time.monotonic()

    with pytest.raises(PublishError, match="cannot connect"):
        await transport.publisher().start()
    with pytest.raises(ConnectionError, match="cannot join"):
        await transport.subscriber([random_name("topic")], random_name("group")).start()

    assert time.monotonic() - started < 5


async def test_publishing_while_the_broker_is_down_fails_in_bounded_time_and_recovers_after(
    kafka_server, kafka_bootstrap: str
) -> None:
    topic, key = random_name("topic"), "stream-1"
    transport = KafkaTransport(kafka_bootstrap, timeout=3)
    publisher = transport.publisher()
    await publisher.start()
    try:
        await publisher.publish([Message(topic=topic, key=key, value=b"before")])
        await asyncio.to_thread(kafka_server.stop)
        try:
            started = time.monotonic()
            with pytest.raises(PublishError, match="did not acknowledge"):
                await publisher.publish([Message(topic=topic, key=key, value=b"while down")])
            assert time.monotonic() - started < 6
            with pytest.raises(PublishError, match="cannot connect"):
                await publisher.publish([Message(topic=topic, key=key, value=b"still down")])
        finally:
            await asyncio.to_thread(kafka_server.start)  # later tests share this broker

        await publisher.publish([Message(topic=topic, key=key, value=b"after")])
    finally:
        await publisher.stop()

    subscriber = transport.subscriber([topic], random_name("group"))
    await subscriber.start()
    try:
        assert values(await fetch_until(subscriber, 2)) == [b"before", b"after"]
        assert await subscriber.fetch(timeout=1) == []
    finally:
        await subscriber.stop()


async def test_a_subscriber_keeps_its_place_and_commits_across_a_broker_restart(
    kafka_server, kafka_bootstrap: str
) -> None:
    topic, group = random_name("topic"), random_name("group")
    transport = KafkaTransport(kafka_bootstrap, timeout=5)
    publisher = transport.publisher()
    subscriber = transport.subscriber([topic], group)
    await publisher.start()
    await publisher.publish([Message(topic=topic, key="stream-1", value=b"before")])
    await subscriber.start()
    try:
        await subscriber.commit(await fetch_until(subscriber, 1))
        await asyncio.to_thread(kafka_server.stop)
        try:
            assert await subscriber.fetch(timeout=0.5) == []
        finally:
            await asyncio.to_thread(kafka_server.start)
        await publisher.publish([Message(topic=topic, key="stream-1", value=b"after")])

        after = await fetch_until(subscriber, 1)
        await subscriber.commit(after)
    finally:
        await subscriber.stop()
        await publisher.stop()

    assert values(after) == [b"after"]
    rejoined = transport.subscriber([topic], group)
    await rejoined.start()
    try:
        assert await rejoined.fetch(timeout=1) == []
    finally:
        await rejoined.stop()
