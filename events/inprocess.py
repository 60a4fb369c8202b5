"""An in-process broker behind the transport ports, for the embedded mode and tests.

It keeps Kafka's semantics that the rest of the code relies on: per-key order
(one partition per topic here, so also total order), consumer groups whose
committed offsets survive a member's restart, and redelivery of everything
after the last commit. Messages live in memory for the life of the process;
the outbox in the database is what makes the embedded mode lose nothing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from events.transport import Delivery, Message

PARTITION = 0


class InProcessBroker:
    def __init__(self) -> None:
        self._topics: dict[str, list[Message]] = defaultdict(list)
        self._committed: dict[tuple[str, str], int] = {}
        self._arrived = asyncio.Condition()

    def publisher(self) -> InProcessPublisher:
        return InProcessPublisher(self)

    def subscriber(self, topics: Sequence[str], group: str) -> InProcessSubscriber:
        return InProcessSubscriber(self, tuple(topics), group)

    def messages(self, topic: str) -> list[Message]:
        return list(self._topics[topic])

    async def _append(self, messages: Sequence[Message]) -> None:
        async with self._arrived:
            for message in messages:
                self._topics[message.topic].append(message)
            self._arrived.notify_all()

    async def _wait_beyond(self, positions: dict[str, int], timeout: float) -> None:
        def has_more() -> bool:
            return any(len(self._topics[topic]) > offset for topic, offset in positions.items())

        async with self._arrived:
            try:
                async with asyncio.timeout(timeout):  # not wait_for: see events/wakeup.py
                    await self._arrived.wait_for(has_more)
            except TimeoutError:
                pass


class InProcessPublisher:
    def __init__(self, broker: InProcessBroker) -> None:
        self._broker = broker

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, messages: Sequence[Message]) -> None:
        await self._broker._append(messages)


class InProcessSubscriber:
    def __init__(self, broker: InProcessBroker, topics: tuple[str, ...], group: str) -> None:
        self._broker = broker
        self._topics = topics
        self._group = group
        self._positions: dict[str, int] = {}

    async def start(self) -> None:
        # Like a Kafka group member: resume after the group's last commit.
        self._positions = {topic: self._broker._committed.get((self._group, topic), 0) for topic in self._topics}

    async def stop(self) -> None:
        self._positions = {}

    async def fetch(self, timeout: float, max_records: int = 500) -> list[Delivery]:
        await self._broker._wait_beyond(self._positions, timeout)
        found: list[Delivery] = []
        for topic in self._topics:
            log = self._broker._topics[topic]
            start = self._positions[topic]
            batch = log[start : start + max_records - len(found)]
            found.extend(
                Delivery(message=message, partition=PARTITION, offset=start + i) for i, message in enumerate(batch)
            )
            self._positions[topic] = start + len(batch)
        return found

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            key = (self._group, delivery.message.topic)
            self._broker._committed[key] = max(self._broker._committed.get(key, 0), delivery.offset + 1)

    async def lag(self) -> dict[tuple[str, int], int]:
        return {
            (topic, PARTITION): len(self._broker._topics[topic]) - self._positions.get(topic, 0)
            for topic in self._topics
        }
