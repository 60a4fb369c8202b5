"""The consumer inbox: which events each consumer has applied."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from events.schema import consumer_inbox
from events.statements import Statement, Transaction


async def record_new(tx: Transaction, consumer: str, event_ids: list[uuid.UUID], at: datetime) -> set[uuid.UUID]:
    """Record a batch in one statement; returns the ids this consumer had not applied before."""
    if not event_ids:
        return set()
    if tx.connection.dialect.name == "postgresql":
        recorded = await _RECORD_BATCH_POSTGRES.rows(tx, consumer=consumer, ids=list(set(event_ids)), at=at)
        return {row["event_id"] for row in recorded}
    from sqlalchemy.dialects.sqlite import insert

    rows = [{"consumer": consumer, "event_id": event_id, "processed_at": at} for event_id in dict.fromkeys(event_ids)]
    result = await tx.connection.execute(
        insert(consumer_inbox).values(rows).on_conflict_do_nothing().returning(consumer_inbox.c.event_id)
    )
    return set(result.scalars())


# unnest: one statement and one plan whatever the batch size.
_RECORD_BATCH_POSTGRES = Statement(sa.text("""
    INSERT INTO consumer_inbox (consumer, event_id, processed_at)
    SELECT :consumer, id, :at FROM unnest(CAST(:ids AS uuid[])) AS id
    ON CONFLICT DO NOTHING
    RETURNING event_id
"""))


async def record_once(conn: AsyncConnection, consumer: str, event_id: uuid.UUID, at: datetime) -> bool:
    """Record that ``consumer`` applies ``event_id`` now; False if it already did.

    Concurrent members racing on one event wait on the row and only one wins.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(consumer_inbox).values(consumer=consumer, event_id=event_id, processed_at=at)
    result = await conn.execute(statement.on_conflict_do_nothing())
    return result.rowcount == 1
