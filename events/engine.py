"""Creating database engines with the settings the event store relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "image_builder_read_only"


def create_engine(url: str, *, pool_size: int = 32, max_overflow: int = 0) -> AsyncEngine:
    """An async engine for a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL.

    No overflow by default: an overflow connection is closed as soon as it is
    returned, so a steady load above the pool size would open (fork) a new
    server connection per request. Waiting for a pooled one is cheaper.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_async_engine(parsed, pool_size=pool_size, max_overflow=max_overflow)


def _sqlite_engine(url: sa.URL) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection, _record):  # noqa: ANN001
        # Take transaction control away from the sqlite3 module, which would
        # otherwise begin lazily and defer locks; we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _begin(connection):  # noqa: ANN001
        # IMMEDIATE takes the single write lock up front: writers queue instead
        # of failing with SQLITE_BUSY when a read snapshot cannot be upgraded,
        # and commits happen in the order sequence numbers were handed out.
        # Readers keep a plain (deferred) BEGIN so WAL lets them run alongside.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only; on SQLite it does not take the write lock."""
    async with engine.connect() as conn:
        yield await conn.execution_options(**{READ_ONLY_OPTION: True})
