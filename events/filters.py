"""Filters for reading the global event log (followers, auditors)."""

from __future__ import annotations

from datetime import datetime

import msgspec
import sqlalchemy as sa

from events.schema import events


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    event_types: tuple[str, ...] = ()
    stream_types: tuple[str, ...] = ()
    stream_id: str | None = None
    org_id: str | None = None
    actor_subject: str | None = None
    correlation_id: str | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        c = events.c
        found: list[sa.ColumnElement[bool]] = []
        if self.event_types:
            found.append(c.event_type.in_(self.event_types))
        if self.stream_types:
            found.append(c.stream_type.in_(self.stream_types))
        if self.stream_id is not None:
            found.append(c.stream_id == self.stream_id)
        if self.org_id is not None:
            found.append(c.actor_org_id == self.org_id)
        if self.actor_subject is not None:
            found.append(c.actor_subject == self.actor_subject)
        if self.correlation_id is not None:
            found.append(c.correlation_id == self.correlation_id)
        if self.occurred_after is not None:
            found.append(c.occurred_at >= self.occurred_after)
        if self.occurred_before is not None:
            found.append(c.occurred_at < self.occurred_before)
        return found
