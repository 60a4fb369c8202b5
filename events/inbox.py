"""The consumer inbox: which events each consumer has applied."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from events.schema import consumer_inbox


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
