"""Walking the hash chain to find the first event that no longer matches."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from events.engine import reading
from events.chain import GENESIS_HASH, HASHED_COLUMNS, link_hash
from events.schema import chain_head, events


class ChainReport(msgspec.Struct, frozen=True, kw_only=True):
    intact: bool
    checked: int
    first_broken_position: int | None = None
    reason: str | None = None


async def verify_chain(engine: AsyncEngine, batch_size: int = 5000) -> ChainReport:
    columns = [events.c.position, events.c.hash, *(events.c[name] for name in HASHED_COLUMNS)]
    expected_position, previous = 0, GENESIS_HASH
    async with reading(engine) as conn:
        head = (await conn.execute(sa.select(chain_head.c.position, chain_head.c.hash))).first()
        while True:
            query = (
                sa.select(*columns)
                .where(events.c.position > expected_position)
                .order_by(events.c.position)
                .limit(batch_size)
            )
            rows = (await conn.execute(query)).mappings().all()
            for row in rows:
                expected_position += 1
                if row["position"] != expected_position:
                    return _broken(expected_position - 1, expected_position, "the event at this position is missing")
                previous = link_hash(previous, expected_position, row)
                if previous != row["hash"]:
                    return _broken(expected_position - 1, expected_position, "the stored event does not match its hash")
            if len(rows) < batch_size:
                break
    return _check_head(head, expected_position, previous)


def _check_head(head: sa.Row | None, last_position: int, last_hash: str) -> ChainReport:
    head_position, head_hash = (head.position, head.hash) if head else (0, GENESIS_HASH)
    if head_position > last_position:
        return _broken(last_position, last_position + 1, f"events after position {last_position} are missing")
    if head_position < last_position or head_hash != last_hash:
        return _broken(last_position, head_position + 1, "the chain does not end where the recorded head says")
    return ChainReport(intact=True, checked=last_position)


def _broken(checked: int, position: int, reason: str) -> ChainReport:
    return ChainReport(intact=False, checked=checked, first_broken_position=position, reason=reason)
