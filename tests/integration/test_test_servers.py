"""The test servers themselves: real clients can use them, and Kafka survives a restart."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        values = [(await asyncio.wait_for(consumer.getone(), 30)).value for _ in range(count)]
        await consumer.commit()
        return values
    finally:
        await consumer.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_kafka_round_trips_a_message_through_a_consumer_group(kafka_bootstrap: str) -> None:
    topic = unique("smoke")
    await produce(kafka_bootstrap, topic, b"hello")
    assert await consume(kafka_bootstrap, topic, unique("group"), 1) == [b"hello"]


async def test_each_test_gets_its_own_postgres_database(postgres_url: str, postgres_url_factory) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    other = postgres_url_factory()
    assert other.rsplit("/", 1)[1] != postgres_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == postgres_url.rsplit("/", 1)[1]
    finally:
        await conn.close()


async def test_kafka_keeps_data_and_address_across_a_restart(kafka_server) -> None:
    bootstrap, topic, group = kafka_server.bootstrap, unique("restart"), unique("group")
    await produce(bootstrap, topic, b"before")
    assert await consume(bootstrap, topic, group, 1) == [b"before"]

    kafka_server.stop()
    try:
        assert not kafka_server.running
    finally:
        kafka_server.start()  # later tests share this broker: always bring it back

    assert kafka_server.bootstrap == bootstrap
    await produce(bootstrap, topic, b"after")
    # The committed offset survived, so the group resumes after "before".
    assert await consume(bootstrap, topic, group, 1) == [b"after"]
