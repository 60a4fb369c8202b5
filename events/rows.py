"""Turning stored rows back into envelopes (with upcasting)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.envelope import Actor, EventEnvelope, as_utc, decode_payload
from events.upcasting import UpcasterRegistry


def envelope_from_row(row: Mapping[str, Any], upcasters: UpcasterRegistry) -> EventEnvelope:
    version, payload = upcasters.upcast(row["event_type"], row["schema_version"], decode_payload(row["payload"]))
    return EventEnvelope(
        event_id=row["event_id"],
        stream_type=row["stream_type"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        position=row["position"],
        event_type=row["event_type"],
        schema_version=version,
        occurred_at=as_utc(row["occurred_at"]),
        actor=Actor(subject=row["actor_subject"], org_id=row["actor_org_id"], client=row["actor_client"]),
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        payload=payload,
        hash=row["hash"],
    )
