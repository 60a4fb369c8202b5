"""The integrity hash chain over a store's events.

Each event's hash covers the previous event's hash and a canonical encoding of
the event as stored, including its global position; editing, deleting or
reordering stored events therefore breaks the chain at the first change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

from events.envelope import as_utc

GENESIS_HASH = "0" * 64

# The stored columns the hash covers, in this order (the order is part of the format).
HASHED_COLUMNS = (
    "event_id",
    "stream_type",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "occurred_at",
    "actor_subject",
    "actor_org_id",
    "actor_client",
    "correlation_id",
    "causation_id",
    "payload",
)


def canonical_encoding(position: int, row: Mapping[str, Any]) -> bytes:
    """A byte string that changes whenever any hashed column or the position does."""
    fields: list[Any] = [position]
    for column in HASHED_COLUMNS:
        value = row[column]
        if column == "occurred_at":
            value = as_utc(value).isoformat(timespec="microseconds")
        elif column == "event_id":
            value = str(value)
        fields.append(value)
    return msgspec.json.encode(fields)


def link_hash(previous_hash: str, position: int, row: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(bytes.fromhex(previous_hash))
    digest.update(canonical_encoding(position, row))
    return digest.hexdigest()
