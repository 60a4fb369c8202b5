"""Domain events: immutable facts, named in the past tense.

Each event class is registered by name, so the application layer can store an
event as (type name, payload) and rebuild it when an aggregate is replayed.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    registry: ClassVar[dict[str, type[DomainEvent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        DomainEvent.registry[cls.__name__] = cls

    @property
    def event_type(self) -> str:
        return type(self).__name__

    def payload(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


E = TypeVar("E", bound=DomainEvent)


def event_from(event_type: str, payload: dict[str, Any]) -> DomainEvent:
    """Rebuild a stored event; unknown types are an error, never silently skipped."""
    try:
        cls = DomainEvent.registry[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None
    return msgspec.convert(payload, cls)
