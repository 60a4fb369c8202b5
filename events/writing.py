"""Writing an append: claim the stream's versions, insert events and outbox rows.

The effect is the same on both backends; only the number of round trips
differs. PostgreSQL does it in ONE statement (data-modifying CTEs), so a plain
``append`` needs no explicit transaction at all: a single statement is atomic,
and round trips are what an append costs most. SQLite runs the same three
steps as separate statements inside its (local, cheap) transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from events.envelope import EventEnvelope, Stream
from events.schema import events, outbox, streams
from events.statements import as_sqlalchemy_errors

# Claims the versions (expected, expected + n]; yields a row only if the stream
# was at `expected`. A new stream is inserted; an existing one is moved on.
_CLAIM_NEW = """
    INSERT INTO event_streams (stream_type, stream_id, version)
    VALUES (:stream_type, :stream_id, :new_version)
    ON CONFLICT DO NOTHING
    RETURNING version
"""
_CLAIM_EXISTING = """
    UPDATE event_streams SET version = :new_version
    WHERE stream_type = :stream_type AND stream_id = :stream_id AND version = :expected
    RETURNING version
"""
_WRITE = """
WITH claim AS ({claim}),
written AS (
    INSERT INTO events (event_id, stream_type, stream_id, stream_version, event_type, schema_version,
                        occurred_at, actor_subject, actor_org_id, actor_client, correlation_id,
                        causation_id, payload)
    SELECT e.event_id, :stream_type, :stream_id, :expected + e.n::int, e.event_type, e.schema_version,
           e.occurred_at, e.actor_subject, e.actor_org_id, e.actor_client, e.correlation_id,
           e.causation_id, e.payload
    FROM unnest(
        CAST(:event_ids AS uuid[]), CAST(:event_types AS text[]), CAST(:schema_versions AS int[]),
        CAST(:occurred_ats AS timestamptz[]), CAST(:subjects AS text[]), CAST(:orgs AS text[]),
        CAST(:clients AS text[]), CAST(:correlations AS text[]), CAST(:causations AS text[]),
        CAST(:payloads AS text[])
    ) WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, actor_subject,
                           actor_org_id, actor_client, correlation_id, causation_id, payload, n)
    WHERE EXISTS (SELECT FROM claim)
    RETURNING event_id
),
boxed AS (
    INSERT INTO outbox (event_id, topic, created_at)
    SELECT event_id, CAST(:topic AS text), now() FROM written WHERE CAST(:topic AS text) IS NOT NULL
)
SELECT count(*) FROM claim
"""
_POSTGRES_WRITE = {
    True: sa.text(_WRITE.format(claim=_CLAIM_NEW)),
    False: sa.text(_WRITE.format(claim=_CLAIM_EXISTING)),
}


def _positional(statement: sa.TextClause) -> tuple[str, tuple[str, ...]]:
    """The statement in asyncpg's ``$n`` form, and the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"(?<!:):(\w+)", number, statement.text), tuple(names)


_POSTGRES_DRIVER_WRITE = {new: _positional(statement) for new, statement in _POSTGRES_WRITE.items()}


class Batch:
    """The events of one append, as they will be stored."""

    def __init__(self, stream: Stream, expected: int, envelopes: Sequence[EventEnvelope], payloads: Sequence[str]) -> None:
        self.stream = stream
        self.expected = expected
        self.envelopes = envelopes
        self.payloads = payloads

    def parameters(self, topic: str | None) -> dict[str, Any]:
        envelopes = self.envelopes
        return {
            "stream_type": self.stream.type,
            "stream_id": self.stream.id,
            "expected": self.expected,
            "new_version": self.expected + len(envelopes),
            "topic": topic,
            "event_ids": [e.event_id for e in envelopes],
            "event_types": [e.event_type for e in envelopes],
            "schema_versions": [e.schema_version for e in envelopes],
            "occurred_ats": [e.occurred_at for e in envelopes],
            "subjects": [e.actor.subject for e in envelopes],
            "orgs": [e.actor.org_id for e in envelopes],
            "clients": [e.actor.client for e in envelopes],
            "correlations": [e.correlation_id for e in envelopes],
            "causations": [e.causation_id for e in envelopes],
            "payloads": list(self.payloads),
        }

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "event_id": e.event_id,
                "stream_type": e.stream_type,
                "stream_id": e.stream_id,
                "stream_version": e.stream_version,
                "event_type": e.event_type,
                "schema_version": e.schema_version,
                "occurred_at": e.occurred_at,
                "actor_subject": e.actor.subject,
                "actor_org_id": e.actor.org_id,
                "actor_client": e.actor.client,
                "correlation_id": e.correlation_id,
                "causation_id": e.causation_id,
                "payload": payload,
            }
            for e, payload in zip(self.envelopes, self.payloads, strict=True)
        ]


async def write_events(
    conn: AsyncConnection, batch: Batch, topic: str | None, *, driver: asyncpg.Connection | None = None
) -> bool:
    """Store the batch after ``batch.expected``; False (and nothing written) if the stream moved."""
    if conn.dialect.name != "postgresql":
        return await _write_portable(conn, batch, topic)
    if driver is not None:
        return await write_events_postgres(driver, batch, topic)
    claimed = await conn.scalar(_POSTGRES_WRITE[batch.expected == 0], batch.parameters(topic))
    return claimed == 1


async def write_events_postgres(driver: asyncpg.Connection, batch: Batch, topic: str | None) -> bool:
    """``write_events`` sent by asyncpg itself: SQLAlchemy's per-statement work
    would cost more CPU than the database spends on the append."""
    sql, names = _POSTGRES_DRIVER_WRITE[batch.expected == 0]
    parameters = batch.parameters(topic)
    async with as_sqlalchemy_errors(sql):
        claimed = await driver.fetchval(sql, *(parameters[name] for name in names))
    return claimed == 1


async def _write_portable(conn: AsyncConnection, batch: Batch, topic: str | None) -> bool:
    stream, expected, count = batch.stream, batch.expected, len(batch.envelopes)
    if expected == 0:
        from sqlalchemy.dialects.sqlite import insert

        claim = insert(streams).values(stream_type=stream.type, stream_id=stream.id, version=count)
        result = await conn.execute(claim.on_conflict_do_nothing())
    else:
        result = await conn.execute(
            streams.update()
            .where(streams.c.stream_type == stream.type, streams.c.stream_id == stream.id, streams.c.version == expected)
            .values(version=expected + count)
        )
    if result.rowcount != 1:
        return False
    rows = batch.rows()
    await conn.execute(events.insert(), rows)
    if topic is not None:
        now = datetime.now(UTC)
        await conn.execute(
            outbox.insert(), [{"event_id": row["event_id"], "topic": topic, "created_at": now} for row in rows]
        )
    return True
