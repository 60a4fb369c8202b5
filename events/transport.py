"""Ports for moving events between services: publishers and subscribers.

Two adapters implement them: Kafka (events/kafka.py) for the distributed mode
and an in-process broker (events/inprocess.py) for the embedded mode and unit
tests. One contract suite (tests/contracts/transport.py) runs against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    # The stream id: every event of one aggregate lands in one partition, in order.
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """A message as a subscriber received it, with where it sits in its topic."""

    message: Message
    partition: int
    offset: int


class PublishError(Exception):
    """The broker did not acknowledge every message; none may be marked published."""


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Return only once the broker acknowledged every message (else raise PublishError)."""


class Subscriber(Protocol):
    """One member of a consumer group on some topics."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def fetch(self, timeout: float, max_records: int = 500) -> list[Delivery]:
        """The next deliveries after this member's position; empty after ``timeout`` seconds."""

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        """Record for the group that these deliveries (and all before them) are consumed."""

    async def lag(self) -> dict[tuple[str, int], int]:
        """Messages not yet fetched, per (topic, partition)."""


class Transport(Protocol):
    def publisher(self) -> Publisher: ...

    def subscriber(self, topics: Sequence[str], group: str) -> Subscriber: ...
