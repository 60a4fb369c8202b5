"""Random names that keep tests from seeing each other's data."""

from __future__ import annotations

import uuid

from events.envelope import Actor, NewEvent, Stream


def random_suffix() -> str:
    return uuid.uuid4().hex[:10]


def random_stream(stream_type: str = "compose") -> Stream:
    return Stream(stream_type, f"{stream_type}-{random_suffix()}")


def random_org() -> str:
    return f"org-{random_suffix()}"


def new_event(event_type: str = "ComposeRequested", org_id: str = "org-1", **payload: object) -> NewEvent:
    return NewEvent(
        event_type=event_type,
        payload=dict(payload) or {"n": random_suffix()},
        actor=Actor(subject="user-1", org_id=org_id, client="tests"),
    )
