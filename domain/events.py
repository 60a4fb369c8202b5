"""Domain events: immutable facts, named in the past tense.

Each event class is registered by name, so the application layer can store an
event as (type name, payload) and rebuild it when an aggregate is replayed.

A family of events kept in another service's store (the backend's compose
history) declares its own ``registry``: its names may repeat the composer's
(both have a ``ComposeRequested``) without one shadowing the other. Within a
family a name is taken once; a second class of that name is an error.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    registry: ClassVar[dict[str, type[DomainEvent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "registry" in cls.__dict__:
            return  # the root of a family: its subclasses register with it
        known = cls.registry.get(cls.__name__)
        # The same class defined again (a module reloaded) is not a clash.
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"two event classes are named {cls.__name__} in one family: {known.__module__}, {cls.__module__}")
        cls.registry[cls.__name__] = cls

    @property
    def event_type(self) -> str:
        return type(self).__name__

    def payload(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


E = TypeVar("E", bound=DomainEvent)


def event_from(event_type: str, payload: dict[str, Any], family: type[DomainEvent] = DomainEvent) -> DomainEvent:
    """Rebuild a stored event of ``family``; unknown types are an error, never silently skipped."""
    try:
        cls = family.registry[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None
    return msgspec.convert(payload, cls)
