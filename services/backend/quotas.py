"""Quotas: at most N composes per org within a sliding window.

The count is a projection: the history rows carry the org and ``created_at``
(the time of the compose's ComposeRequested), and the history index
``(org_id, created_at, compose_id)`` answers "how many since T" as a range
scan. Deleted composes count too: deleting a compose from the history does
not undo its build.

Checking and recording must not race: two requests at the last slot would
both count N-1 and both get in. So the check runs in the unit of work that
appends ComposeRequested, serialized per org until it commits:

- PostgreSQL: ``pg_advisory_xact_lock`` on a hash of the org id (no table to
  lock, so no schema change; two orgs sharing a hash only wait for each
  other). The second request waits, and its count, a statement begun after
  the first committed, sees the first's row (READ COMMITTED).
- SQLite: the unit of work already holds the database's single write lock
  (``BEGIN IMMEDIATE``).

An org without a limit takes no lock.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from events.envelope import as_utc
from services.backend.tables import composes

DEFAULT_WINDOW_SECONDS = 24 * 3600


class QuotaPolicy(msgspec.Struct, frozen=True, kw_only=True):
    # Composes an org may request per window; None: no limit.
    composes: int | None = None
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    # Per org: a limit of its own (None: no limit), whatever the default.
    overrides: dict[str, int | None] = msgspec.field(default_factory=dict)

    def limit_for(self, org_id: str) -> int | None:
        return self.overrides.get(org_id, self.composes)


class QuotaExceeded(Exception):
    def __init__(
        self, org_id: str, limit: int, window_seconds: float, used: int, now: datetime, frees_at: datetime | None
    ) -> None:
        when = "never: this org may not request composes" if frees_at is None else f"at {frees_at.isoformat()}"
        super().__init__(
            f"org {org_id} has reached its quota of {limit} composes per {_duration(window_seconds)}; "
            f"the next one is possible {when}"
        )
        self.org_id = org_id
        self.limit = limit
        self.window_seconds = window_seconds
        self.used = used
        self.now = now
        self.frees_at = frees_at

    def details(self) -> dict[str, object]:
        return {
            "org_id": self.org_id,
            "limit": self.limit,
            "window_seconds": self.window_seconds,
            "used": self.used,
            "frees_at": None if self.frees_at is None else self.frees_at.isoformat(),
        }

    def retry_after_seconds(self) -> int:
        assert self.frees_at is not None
        return max(1, math.ceil((self.frees_at - self.now).total_seconds()))


async def admit(connection: AsyncConnection, policy: QuotaPolicy, org_id: str, now: datetime) -> None:
    """Let one more compose of ``org_id`` in at ``now``, or raise QuotaExceeded.

    Call it inside the unit of work that records the compose: on PostgreSQL it
    holds the org's lock until that commits.
    """
    limit = policy.limit_for(org_id)
    if limit is None:
        return
    if connection.dialect.name == "postgresql":
        key = sa.func.hashtextextended(f"image-builder quota {org_id}", 0)
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    # Counted: composes requested strictly after now - window, so one frees its
    # slot exactly ``window`` after it was requested.
    counted = (composes.c.org_id == org_id, composes.c.created_at > now - timedelta(seconds=policy.window_seconds))
    used = await connection.scalar(sa.select(sa.func.count()).select_from(composes).where(*counted)) or 0
    if used < limit:
        return
    frees_at = None
    if limit > 0:
        # The slot frees when all but limit - 1 of the counted composes have left the window.
        leaving = sa.select(composes.c.created_at).where(*counted).order_by(composes.c.created_at)
        oldest = await connection.scalar(leaving.offset(used - limit).limit(1))
        frees_at = as_utc(oldest) + timedelta(seconds=policy.window_seconds)
    raise QuotaExceeded(org_id, limit, policy.window_seconds, used, now, frees_at)


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"
