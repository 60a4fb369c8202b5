"""Errors the event store raises; each names what it was about."""

from __future__ import annotations

import uuid


class EventStoreError(Exception):
    """Base class for event store errors."""


class ConcurrencyError(EventStoreError):
    """An append expected a stream version that is no longer current."""

    def __init__(self, stream_type: str, stream_id: str, expected: int, actual: int) -> None:
        self.stream_type = stream_type
        self.stream_id = stream_id
        self.expected_version = expected
        self.actual_version = actual
        super().__init__(
            f"stream {stream_type}/{stream_id}: expected version {expected}, "
            f"but it is at version {actual}"
        )


class DuplicateEventError(EventStoreError):
    """An event id is already stored, but as a different event than the one appended."""

    def __init__(self, event_id: uuid.UUID, reason: str) -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id} is already stored: {reason}")


class UpcastError(EventStoreError):
    """A stored event has a schema version no upcaster chain can bring to current."""
