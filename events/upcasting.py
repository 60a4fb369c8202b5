"""Upcasting: old event payloads are turned into the current shape on read.

Stored events are never rewritten (their hashes cover the stored bytes); each
event type has a current schema version and one upcaster per older version,
applied in a chain v1 -> v2 -> ... -> current.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.errors import UpcastError

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class UpcasterRegistry:
    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """Register the step that turns ``from_version`` into ``from_version + 1``."""
        key = (event_type, from_version)
        if key in self._steps:
            raise ValueError(f"{event_type} already has an upcaster from v{from_version}")
        self._steps[key] = upcaster
        self._current[event_type] = max(self._current.get(event_type, 1), from_version + 1)

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of :meth:`register`."""

        def decorate(function: Upcaster) -> Upcaster:
            self.register(event_type, from_version, function)
            return function

        return decorate

    def current_version(self, event_type: str) -> int:
        return self._current.get(event_type, 1)

    def upcast(self, event_type: str, version: int, payload: Payload) -> tuple[int, Payload]:
        current = self.current_version(event_type)
        if version > current:
            raise UpcastError(
                f"{event_type} v{version} is newer than this code knows (v{current})"
            )
        while version < current:
            step = self._steps.get((event_type, version))
            if step is None:
                raise UpcastError(f"{event_type} has no upcaster from v{version}")
            payload = step(payload)
            version += 1
        return version, payload
