"""Kafka behind the transport ports, for the distributed mode (aiokafka).

Every call that waits on the broker has a time limit: aiokafka itself would
wait for ever in some places (an idempotent producer retries a batch until it
is acknowledged, its stop() waits for that, and a consumer retries a commit
until the group coordinator answers), and a relay or consumer that hangs is
worse than one that fails, backs off and tries again. Failures surface as
PublishError from a publisher and ConnectionError from a subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, NoError, TopicAlreadyExistsError, for_code

from events.transport import Delivery, Message, PublishError

# How long one request to the broker may take before aiokafka gives up on it.
REQUEST_TIMEOUT_MS = 10_000
# How long start(), publish(), commit() and lag() may take as a whole.
OPERATION_TIMEOUT = 15.0
# A short linger batches what one publish() sends without adding much latency.
LINGER_MS = 5


class KafkaTransport:
    def __init__(
        self, bootstrap_servers: str, client_id: str = "image-builder", *, timeout: float = OPERATION_TIMEOUT
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.timeout = timeout

    def publisher(self) -> KafkaPublisher:
        return KafkaPublisher(self.bootstrap_servers, self.client_id, timeout=self.timeout)

    def subscriber(self, topics: Sequence[str], group: str) -> KafkaSubscriber:
        return KafkaSubscriber(self.bootstrap_servers, self.client_id, tuple(topics), group, timeout=self.timeout)


class KafkaPublisher:
    """An idempotent producer that waits for every replica (acks=all).

    After a failed publish the producer is thrown away and the next publish
    starts a fresh one, so a caller only has to retry; a producer that aiokafka
    left in a fatal state can never wedge the relay.
    """

    def __init__(self, bootstrap_servers: str, client_id: str, *, timeout: float = OPERATION_TIMEOUT) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect, or raise PublishError within the timeout; safe to call again."""
        await self.stop()
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=LINGER_MS,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await producer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await _close_producer(producer)
            raise PublishError(f"cannot connect to Kafka at {self._bootstrap_servers}: {_reason(exc)}") from exc
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _close_producer(producer)

    async def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        try:
            async with asyncio.timeout(self._timeout):
                await self._send_all(self._producer, messages)
        except (KafkaError, TimeoutError) as exc:
            await self.stop()
            raise PublishError(
                f"Kafka at {self._bootstrap_servers} did not acknowledge {len(messages)} messages "
                f"within {self._timeout:g}s: {_reason(exc)}"
            ) from exc

    @staticmethod
    async def _send_all(producer: AIOKafkaProducer, messages: Sequence[Message]) -> None:
        # send() only queues a message; queue them all, then wait for the acks,
        # so one publish costs one round trip per partition rather than per message.
        acks = [
            await producer.send(m.topic, m.value, key=m.key.encode(), headers=list(m.headers)) for m in messages
        ]
        await asyncio.gather(*acks)


class KafkaSubscriber:
    """One member of a consumer group; offsets are committed only by commit()."""

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str,
        topics: tuple[str, ...],
        group: str,
        *,
        timeout: float = OPERATION_TIMEOUT,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._topics = topics
        self._group = group
        self._timeout = timeout
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Join the group (aiokafka waits for the first assignment), or raise ConnectionError."""
        await self.stop()
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            request_timeout_ms=REQUEST_TIMEOUT_MS,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await consumer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await _close_consumer(consumer)
            raise ConnectionError(
                f"cannot join group {self._group!r} on Kafka at {self._bootstrap_servers}: {_reason(exc)}"
            ) from exc
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _close_consumer(consumer)

    async def fetch(self, timeout: float, max_records: int = 500) -> list[Delivery]:
        batches = await self._started().getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        return [
            Delivery(
                message=Message(
                    topic=record.topic,
                    key=record.key.decode() if record.key is not None else "",
                    value=record.value if record.value is not None else b"",
                    headers=tuple((name, value) for name, value in record.headers),
                ),
                partition=record.partition,
                offset=record.offset,
            )
            for records in batches.values()
            for record in records
        ]

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for delivery in deliveries:
            tp = TopicPartition(delivery.message.topic, delivery.partition)
            offsets[tp] = max(offsets.get(tp, 0), delivery.offset + 1)
        if not offsets:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._started().commit(offsets)
        except (KafkaError, TimeoutError) as exc:
            raise ConnectionError(f"group {self._group!r} could not commit {offsets}: {_reason(exc)}") from exc

    async def lag(self) -> dict[tuple[str, int], int]:
        consumer = self._started()
        assigned = consumer.assignment()
        try:
            async with asyncio.timeout(self._timeout):
                # The highwater mark comes with fetch responses; before the first, ask for it.
                ends = {tp: consumer.highwater(tp) for tp in assigned}
                unknown = [tp for tp, end in ends.items() if end is None]
                if unknown:
                    ends.update(await consumer.end_offsets(unknown))
                return {(tp.topic, tp.partition): ends[tp] - await consumer.position(tp) for tp in assigned}
        except (KafkaError, TimeoutError) as exc:
            raise ConnectionError(f"group {self._group!r} could not measure its lag: {_reason(exc)}") from exc

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the subscriber is not started")
        return self._consumer


async def ensure_topics(
    bootstrap_servers: str, topics: Sequence[str], partitions: int = 3, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(t, partitions, replication_factor) for t in topics])
    finally:
        await admin.close()
    # The response carries one error code per topic rather than raising.
    for topic, code, *message in response.topic_errors:
        error = for_code(code)
        if error not in (NoError, TopicAlreadyExistsError):
            raise error(f"cannot create topic {topic!r}: {message[0] if message else ''}")


async def _close_producer(producer: AIOKafkaProducer) -> None:
    # An idempotent aiokafka producer never expires a batch: it retries until
    # the broker acknowledges it, and stop() waits for that, so with the broker
    # down stop() would never return. Do what stop() does without the wait:
    # end the sender (its requests in flight finish after one attempt) and
    # close the connections; unacknowledged batches are dropped, and their
    # publish() has raised PublishError already.
    await producer._sender.close()
    await producer.client.close()
    producer._closed = True  # what stop() would have marked: no "unclosed producer" warning


async def _close_consumer(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        # With the broker down, aiokafka's Fetcher.close() re-raises the
        # cancellation of a fetch request that was backing off after a failure
        # (aio-libs/aiokafka#647), and stop() then leaves the client open.
        # Only a cancellation of this task itself may propagate.
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        if consumer._fetcher is not None:
            for task in consumer._fetcher._pending_tasks:
                task.cancel()
        await consumer._client.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # ours, from asyncio.timeout(); aiokafka's is a KafkaError
        return "timed out"
    return str(exc) or type(exc).__name__
