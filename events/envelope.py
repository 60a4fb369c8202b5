"""The event envelope: one shape for every stored event, whatever the service.

Domain events know nothing of storage; an application wraps each one in a
``NewEvent`` with who caused it and why, and the store hands back
``EventEnvelope`` values that carry everything an auditor needs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who caused an event: a user or service account, scoped to an org."""

    subject: str
    org_id: str
    client: str | None = None


SYSTEM_ACTOR = Actor(subject="system", org_id="system")


class Stream(msgspec.Struct, frozen=True):
    """One aggregate's event stream, e.g. ``Stream("compose", "<uuid>")``."""

    type: str
    id: str


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be appended; the store adds stream, version and position.

    ``schema_version`` left as None is stamped with the type's current version
    from the store's upcaster registry.
    """

    event_type: str
    payload: dict[str, Any]
    actor: Actor = SYSTEM_ACTOR
    event_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    schema_version: int | None = None
    occurred_at: datetime = msgspec.field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A stored event.

    ``position`` and ``hash`` are None until the sequencer has placed the event
    in the store's global order (shortly after its transaction committed).
    """

    event_id: uuid.UUID
    stream_type: str
    stream_id: str
    stream_version: int
    position: int | None
    event_type: str
    schema_version: int
    occurred_at: datetime
    actor: Actor
    correlation_id: str | None
    causation_id: str | None
    payload: dict[str, Any]
    hash: str | None = None

    @property
    def stream(self) -> Stream:
        return Stream(self.stream_type, self.stream_id)


def encode_payload(payload: dict[str, Any]) -> str:
    """Canonical JSON for a payload: sorted keys, no whitespace.

    The stored text is what the integrity hash covers, so it must not depend
    on dict insertion order.
    """
    return msgspec.json.encode(payload, order="sorted").decode()


def decode_payload(text: str) -> dict[str, Any]:
    return msgspec.json.decode(text)


def as_utc(moment: datetime) -> datetime:
    """Normalise a timestamp read back from a database to aware UTC.

    SQLite hands back naive datetimes; everything we store is UTC.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
