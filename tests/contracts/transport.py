"""The transport contract: every adapter must pass these unchanged.

Not collected by itself (no ``test_`` prefix); each adapter's test module
subclasses ``TransportContract`` and provides the ``transport`` fixture, and may
override ``topic`` (Kafka creates it with several partitions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from events.transport import Delivery, Message, Publisher, Subscriber, Transport
from tests.random_refs import random_suffix

Join = Callable[[str, str], Awaitable[Subscriber]]

# Long enough for a fetch to see anything already published, short enough to
# keep "and nothing more" checks cheap.
QUIET = 0.5


def random_name(kind: str) -> str:
    return f"test-{kind}-{random_suffix()}"


def numbered(topic: str, count: int, keys: int = 1) -> list[Message]:
    """``count`` messages spread over ``keys`` keys, interleaved: k0, k1, ..., k0, ..."""
    return [Message(topic=topic, key=f"stream-{i % keys}", value=f"{i}".encode()) for i in range(count)]


async def fetch_until(subscriber: Subscriber, count: int, timeout: float = 30.0) -> list[Delivery]:
    """Exactly ``count`` deliveries; a Kafka member may need a few fetches to get going."""
    found: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"fetched {len(found)} of {count} deliveries in {timeout}s: {values(found)}")
        found.extend(await subscriber.fetch(timeout=min(remaining, 1.0)))
    assert len(found) == count, f"wanted {count} deliveries, got {len(found)}: {values(found)}"
    return found


def values(deliveries: Sequence[Delivery]) -> list[bytes]:
    return [d.message.value for d in deliveries]


def by_position(deliveries: Sequence[Delivery]) -> list[Delivery]:
    return sorted(deliveries, key=lambda d: (d.message.topic, d.partition, d.offset))


class TransportContract:
    @pytest.fixture
    def topic(self) -> str:
        return random_name("topic")

    @pytest.fixture
    async def publisher(self, transport: Transport) -> AsyncIterator[Publisher]:
        publisher = transport.publisher()
        await publisher.start()
        yield publisher
        await publisher.stop()

    @pytest.fixture
    async def join(self, transport: Transport) -> AsyncIterator[Join]:
        """Start a subscriber (a new member of ``group``); stopped after the test."""
        started: list[Subscriber] = []

        async def join(topic: str, group: str) -> Subscriber:
            subscriber = transport.subscriber([topic], group)
            await subscriber.start()
            started.append(subscriber)
            return subscriber

        yield join
        for subscriber in started:
            await subscriber.stop()

    async def test_a_published_message_is_delivered_with_its_key_value_and_headers(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        sent = Message(
            topic=topic,
            key="compose-42",
            value=b'{"image_name": "web"}',
            headers=(("event_id", b"e-1"), ("event_type", b"ComposeRequested"), ("empty", b"")),
        )
        await publisher.publish([sent])
        subscriber = await join(topic, random_name("group"))

        (delivery,) = await fetch_until(subscriber, 1)

        assert delivery.message == sent
        assert delivery.message.header("event_type") == b"ComposeRequested"
        assert delivery.offset == 0
        assert await subscriber.fetch(timeout=QUIET) == []

    async def test_messages_with_one_key_arrive_in_the_order_they_were_published(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        sent = numbered(topic, 200, keys=5)
        for start in range(0, 200, 50):
            await publisher.publish(sent[start : start + 50])
        subscriber = await join(topic, random_name("group"))

        received = await fetch_until(subscriber, 200)

        for key in {m.key for m in sent}:
            assert [d.message.value for d in received if d.message.key == key] == [
                m.value for m in sent if m.key == key
            ]
        assert sorted(values(received)) == sorted(m.value for m in sent)

    async def test_a_member_that_restarts_resumes_after_the_groups_last_commit(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        group = random_name("group")
        await publisher.publish(numbered(topic, 20, keys=4))
        first = await join(topic, group)
        fetched = await fetch_until(first, 20)
        await first.commit(fetched[:10])
        await first.stop()

        second = await join(topic, group)
        rest = await fetch_until(second, 10)

        # The first ten were a prefix of every partition, so exactly the others remain.
        assert by_position(rest) == by_position(fetched[10:])
        assert await second.fetch(timeout=QUIET) == []

    async def test_uncommitted_deliveries_are_delivered_again_to_the_next_member_of_the_group(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        group = random_name("group")
        await publisher.publish(numbered(topic, 5, keys=5))
        first = await join(topic, group)
        fetched = await fetch_until(first, 5)
        await first.stop()

        second = await join(topic, group)
        again = await fetch_until(second, 5)

        assert by_position(again) == by_position(fetched)
        assert await second.fetch(timeout=QUIET) == []

    async def test_a_member_is_not_given_a_delivery_twice_before_it_restarts(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        subscriber = await join(topic, random_name("group"))
        await publisher.publish(numbered(topic, 3, keys=3))
        fetched = await fetch_until(subscriber, 3)
        await publisher.publish(numbered(topic, 4, keys=3)[3:])

        later = await fetch_until(subscriber, 1)

        assert values(fetched) != [] and values(later) == [b"3"]
        assert await subscriber.fetch(timeout=QUIET) == []

    async def test_two_groups_each_receive_every_message_and_keep_their_own_commits(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        sent = numbered(topic, 30, keys=6)
        await publisher.publish(sent)
        projector = await join(topic, random_name("projector"))
        seen_by_projector = await fetch_until(projector, 30)
        await projector.commit(seen_by_projector)

        notifier = await join(topic, random_name("notifier"))
        seen_by_notifier = await fetch_until(notifier, 30)

        assert sorted(values(seen_by_projector)) == sorted(m.value for m in sent)
        assert by_position(seen_by_notifier) == by_position(seen_by_projector)

    async def test_lag_counts_what_has_not_been_fetched_yet(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        await publisher.publish(numbered(topic, 10, keys=5))
        subscriber = await join(topic, random_name("group"))

        assert sum((await subscriber.lag()).values()) == 10
        some = await subscriber.fetch(timeout=10, max_records=4)
        assert 1 <= len(some) <= 4
        assert sum((await subscriber.lag()).values()) == 10 - len(some)
        await fetch_until(subscriber, 10 - len(some))
        lag = await subscriber.lag()

        assert lag and set(lag.values()) == {0}
        assert {t for t, _ in lag} == {topic}

    async def test_fetch_returns_an_empty_list_after_its_timeout_when_nothing_arrives(
        self, join: Join, topic: str
    ) -> None:
        subscriber = await join(topic, random_name("group"))
        started = time.monotonic()

        assert await subscriber.fetch(timeout=0.5) == []

        assert 0.45 <= time.monotonic() - started < 5

    async def test_a_waiting_fetch_returns_as_soon_as_a_message_is_published(
        self, publisher: Publisher, join: Join, topic: str
    ) -> None:
        subscriber = await join(topic, random_name("group"))
        waiting = asyncio.create_task(subscriber.fetch(timeout=20))
        await asyncio.sleep(0.2)
        started = time.monotonic()

        await publisher.publish(numbered(topic, 1))
        delivered = await waiting

        assert values(delivered) == [b"0"]
        assert time.monotonic() - started < 5
