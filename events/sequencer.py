"""Assigning global positions and chain hashes after commit, in commit-safe order.

Writers commit concurrently and only check their own stream's version; giving
every event its global position inside the writer's transaction would
serialize all writers (one lock for the whole store). Instead one sequencer at
a time, like Trillian's integrator, takes committed events that no running
transaction can still precede, numbers them and extends the hash chain.

Commit-safe on PostgreSQL: each event row records its writer's transaction id
(``pg_current_xact_id()``). Every transaction with an id below the current
snapshot's ``xmin`` has finished, so rows with ``tx_id < xmin`` are final and
no transaction still running can add a row that sorts before them. A reader
that follows positions therefore never skips an event that committed late; an
open writer only delays sequencing until it ends. On SQLite writers are
serialized by the single write lock, so every committed row is final.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from events.chain import GENESIS_HASH, HASHED_COLUMNS, link_hash
from events.engine import is_postgres
from events.schema import chain_head, events

# An arbitrary but fixed advisory-lock key: "one sequencer per database".
SEQUENCER_LOCK_KEY = 0x1B5E0001

_xmin_horizon = sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


async def sequence_pending(engine: AsyncEngine, batch_size: int = 1000) -> int:
    """Sequence every committed, unsequenced event; returns how many were placed.

    Returns 0 at once when another sequencer holds the lock: it will place them.
    """
    total = 0
    while True:
        placed = await _sequence_batch(engine, batch_size)
        total += placed
        if placed < batch_size:
            return total


async def _sequence_batch(engine: AsyncEngine, batch_size: int) -> int:
    postgres = is_postgres(engine)
    async with engine.begin() as conn:
        if postgres and not await _try_lock(conn):
            return 0
        pending = await conn.execute(_pending_query(postgres, batch_size))
        rows = pending.mappings().all()
        if not rows:
            return 0
        position, previous = await _head(conn)
        updates = []
        for row in rows:
            position += 1
            previous = link_hash(previous, position, row)
            updates.append({"b_seq": row["seq"], "b_position": position, "b_hash": previous})
        await conn.execute(
            events.update()
            .where(events.c.seq == sa.bindparam("b_seq"))
            .values(position=sa.bindparam("b_position"), hash=sa.bindparam("b_hash")),
            updates,
        )
        await _store_head(conn, position, previous)
        return len(rows)


async def _try_lock(conn: AsyncConnection) -> bool:
    result = await conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(SEQUENCER_LOCK_KEY)))
    return bool(result.scalar_one())


def _pending_query(postgres: bool, batch_size: int) -> sa.Select:
    columns = [events.c.seq, *(events.c[name] for name in HASHED_COLUMNS)]
    query = sa.select(*columns).where(events.c.position.is_(None))
    if postgres:
        return query.where(events.c.tx_id < _xmin_horizon).order_by(events.c.tx_id, events.c.seq).limit(batch_size)
    return query.order_by(events.c.seq).limit(batch_size)


async def _head(conn: AsyncConnection) -> tuple[int, str]:
    row = (await conn.execute(sa.select(chain_head.c.position, chain_head.c.hash))).first()
    return (row.position, row.hash) if row else (0, GENESIS_HASH)


async def _store_head(conn: AsyncConnection, position: int, hash_: str) -> None:
    updated = await conn.execute(chain_head.update().values(position=position, hash=hash_))
    if updated.rowcount == 0:
        await conn.execute(chain_head.insert().values(id=1, position=position, hash=hash_))
