"""Running a queue operation as one transaction, again when it lost a race.

Concurrent operations on one compose (two uploads finishing, a cancel during a
claim) can meet on the same stream version, a row lock cycle or a unique key.
Each is a whole transaction that changed nothing, so trying it again is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from events.errors import ConcurrencyError
from events.store import EventStore, UnitOfWork

log = logging.getLogger(__name__)

RETRIES = 8
# PostgreSQL: deadlock detected, serialization failure, unique violation.
RACE_SQLSTATES = {"40P01", "40001", "23505"}
T = TypeVar("T")


async def run_retrying(store: EventStore, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    for attempt in range(1, RETRIES + 1):
        try:
            async with store.unit_of_work() as uow:
                return await work(uow)
        except (ConcurrencyError, DBAPIError) as error:
            if attempt == RETRIES or not lost_a_race(error):
                raise
            log.debug("queue transaction lost a race (attempt %d): %s", attempt, error)
    raise AssertionError("unreachable")


def lost_a_race(error: Exception) -> bool:
    if isinstance(error, ConcurrencyError):
        return True
    original = getattr(error, "orig", None)
    code = getattr(original, "sqlstate", None) or getattr(getattr(original, "__cause__", None), "sqlstate", None)
    return code in RACE_SQLSTATES
