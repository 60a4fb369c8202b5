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
from sqlalchemy.ext.asyncio import AsyncEngine

from events.chain import GENESIS_HASH, HASHED_COLUMNS, link_hash
from events.engine import is_postgres
from events.schema import chain_head, events
from events.statements import Statement, transaction

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
    async with transaction(engine) as tx:
        if postgres and not await _TRY_LOCK.scalar(tx, key=SEQUENCER_LOCK_KEY):
            return 0
        rows = await _PENDING[postgres].rows(tx, batch_size=batch_size)
        if not rows:
            return 0
        head = await _HEAD.row(tx)
        position, previous = (head["position"], head["hash"]) if head else (0, GENESIS_HASH)
        seqs, positions, hashes = [], [], []
        for row in rows:
            position += 1
            previous = link_hash(previous, position, row)
            seqs.append(row["seq"])
            positions.append(position)
            hashes.append(previous)
        if postgres:
            await _PLACE_POSTGRES.execute(tx, seqs=seqs, positions=positions, hashes=hashes)
        else:
            await tx.connection.execute(
                _PLACE_PORTABLE,
                [{"b_seq": seq, "b_position": at, "b_hash": hash_} for seq, at, hash_ in zip(seqs, positions, hashes, strict=True)],
            )
        if not await _MOVE_HEAD.execute(tx, new_position=position, new_hash=previous):
            await _START_HEAD.execute(tx, new_position=position, new_hash=previous)
        return len(rows)


_TRY_LOCK = Statement(sa.select(sa.func.pg_try_advisory_xact_lock(sa.bindparam("key", type_=sa.BigInteger))))


def _pending_query(postgres: bool) -> Statement:
    columns = [events.c.seq, *(events.c[name] for name in HASHED_COLUMNS)]
    query = sa.select(*columns).where(events.c.position.is_(None))
    if postgres:
        query = query.where(events.c.tx_id < _xmin_horizon).order_by(events.c.tx_id, events.c.seq)
    else:
        query = query.order_by(events.c.seq)
    return Statement(query.limit(sa.bindparam("batch_size", type_=sa.Integer)))


_PENDING = {True: _pending_query(True), False: _pending_query(False)}
_HEAD = Statement(sa.select(chain_head.c.position, chain_head.c.hash))
# One statement for the whole batch, whatever its size.
_PLACE_POSTGRES = Statement(sa.text("""
    UPDATE events SET position = placed.position, hash = placed.hash
    FROM unnest(CAST(:seqs AS bigint[]), CAST(:positions AS bigint[]), CAST(:hashes AS text[]))
         AS placed(seq, position, hash)
    WHERE events.seq = placed.seq
"""))
_PLACE_PORTABLE = (
    events.update()
    .where(events.c.seq == sa.bindparam("b_seq"))
    .values(position=sa.bindparam("b_position"), hash=sa.bindparam("b_hash"))
)
_MOVE_HEAD = Statement(chain_head.update().values(position=sa.bindparam("new_position"), hash=sa.bindparam("new_hash")))
_START_HEAD = Statement(
    chain_head.insert().values(id=1, position=sa.bindparam("new_position"), hash=sa.bindparam("new_hash"))
)
