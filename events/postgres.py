"""PostgreSQL-only helpers that need a dedicated asyncpg connection.

Session advisory locks and LISTEN live as long as one server session, so they
cannot use a pooled SQLAlchemy connection that may be handed to someone else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine


def asyncpg_dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class AdvisoryLeadership:
    """Leader election by a session advisory lock: held while the session lives.

    When the leader's process dies its session ends and the lock is free; the
    next candidate's retry takes it within ``retry_interval`` seconds.
    """

    def __init__(self, engine: AsyncEngine, key: int, retry_interval: float = 1.0) -> None:
        self._dsn = asyncpg_dsn(engine)
        self._key = key
        self._retry_interval = retry_interval
        self._conn: asyncpg.Connection | None = None

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._dsn)
                if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                    return True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._retry_interval):  # not wait_for: see events/wakeup.py
                    await stop.wait()
        return False

    async def still_leader(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            await self._conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._conn.close()
        self._conn = None


class SoleLeadership:
    """SQLite: one process owns the database file, so it always leads."""

    async def acquire(self, stop: asyncio.Event) -> bool:
        return not stop.is_set()

    async def still_leader(self) -> bool:
        return True

    async def release(self) -> None:
        pass


class Listener:
    """LISTEN on a channel and call ``on_notify`` for every notification."""

    def __init__(self, engine: AsyncEngine, channel: str, on_notify: Callable[[], None]) -> None:
        self._dsn = asyncpg_dsn(engine)
        self._channel = channel
        self._on_notify = on_notify
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        await self._conn.add_listener(self._channel, lambda *_: self._on_notify())

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._conn.close()
            self._conn = None

    @property
    def alive(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()
