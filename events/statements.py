"""Core statements written once, run on the driver itself where it is asyncpg.

A statement executed through SQLAlchemy costs its process about 120-220 µs
of CPU (building the construct, its cache key, the execution context); the
same statement sent by asyncpg costs about 60. On a hot path of a dozen
statements per transaction that is most of the CPU a job claim needs. A
``Statement`` is a SQLAlchemy Core construct with named bind parameters,
so it stays portable: on PostgreSQL it is compiled once to asyncpg's ``$n``
form and run on the unit of work's driver connection (inside the same
transaction), elsewhere it is executed through SQLAlchemy as usual.

Rows come back as mappings (``row["column"]``) on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn


class Connections(Protocol):
    """What a statement runs on: a unit of work's SQLAlchemy connection and, on PostgreSQL, its driver."""

    connection: AsyncConnection
    driver: asyncpg.Connection | None


class Transaction:
    """An open transaction: its SQLAlchemy connection and, on PostgreSQL, the asyncpg one under it."""

    def __init__(self, connection: AsyncConnection, driver: asyncpg.Connection | None) -> None:
        self.connection = connection
        self.driver = driver


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """One transaction; commits when the block ends, rolls back if it raises.

    On PostgreSQL asyncpg runs it, so statements may go to the driver
    directly (``Statement``) or through SQLAlchemy, whose connection is in
    autocommit mode and so never begins one of its own: both reach the same
    server session, inside the same transaction.
    """
    if engine.dialect.name != "postgresql":
        async with engine.begin() as conn:
            yield Transaction(conn, None)
        return
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        driver = (await conn.get_raw_connection()).driver_connection
        try:
            async with as_sqlalchemy_errors("COMMIT"), driver.transaction():
                yield Transaction(conn, driver)
        except BaseException:
            if driver.is_closed():
                # Not back into the pool: the next transaction to get it would fail.
                await conn.invalidate()
            raise


@asynccontextmanager
async def bare_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled PostgreSQL connection's asyncpg connection, outside any transaction.

    For a lone statement, atomic on its own: no SQLAlchemy connection is
    made around it, which would cost more CPU than the statement's own
    round trip (checkout, execution options, reset on return).
    """
    pooled = await engine.raw_connection()
    driver = pooled.driver_connection
    broken = False
    try:
        yield driver
    except BaseException:
        broken = driver.is_closed()
        raise
    finally:
        await greenlet_spawn(_give_back, pooled, broken)


def _give_back(pooled: PoolProxiedConnection, broken: bool) -> None:
    # A connection the server closed would otherwise go back into the pool
    # and fail the next statement that gets it.
    if broken:
        pooled.invalidate()
    pooled.close()


class Statement:
    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._compiled: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    async def rows(self, on: Connections, **params: Any) -> Sequence[Mapping[str, Any]]:
        if on.driver is not None:
            sql, args = self._driver_form(on, params)
            async with as_sqlalchemy_errors(sql):
                return await on.driver.fetch(sql, *args)
        result = await on.connection.execute(self.statement, params)
        return result.mappings().all()

    async def row(self, on: Connections, **params: Any) -> Mapping[str, Any] | None:
        rows = await self.rows(on, **params)
        return rows[0] if rows else None

    async def scalar(self, on: Connections, **params: Any) -> Any:
        row = await self.row(on, **params)
        return None if row is None else next(iter(row.values()))

    async def execute(self, on: Connections, **params: Any) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        if on.driver is not None:
            sql, args = self._driver_form(on, params)
            async with as_sqlalchemy_errors(sql):
                status = await on.driver.execute(sql, *args)
            # "UPDATE 3", "INSERT 0 1", "DELETE 0": the count is the last word.
            return int(status.rsplit(" ", 1)[-1])
        result = await on.connection.execute(self.statement, params)
        return result.rowcount

    def _driver_form(self, on: Connections, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=on.connection.dialect)
            # Literal values in the construct are bind parameters with defaults.
            self._compiled = (compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))
        sql, names, defaults = self._compiled
        return sql, [params[name] if name in params else defaults[name] for name in names]


@asynccontextmanager
async def as_sqlalchemy_errors(sql: str) -> AsyncIterator[None]:
    """asyncpg's errors as SQLAlchemy's, so callers handle one kind whichever way a statement ran."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise as_sqlalchemy_error(error, sql) from error


def as_sqlalchemy_error(error: asyncpg.PostgresError | asyncpg.InterfaceError, sql: str | None = None) -> sa.exc.DBAPIError:
    """The SQLAlchemy error the same failure raises through SQLAlchemy; ``.orig`` is asyncpg's.

    A lost or refused connection is an ``OperationalError``, as SQLAlchemy
    reports it, so retry loops that tell infrastructure from bad data by
    SQLAlchemy's classes keep working.
    """
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        kind: type[sa.exc.DBAPIError] = IntegrityError
    elif isinstance(error, _CONNECTION_ERRORS):
        kind = sa.exc.OperationalError
    else:
        kind = sa.exc.DBAPIError
    return kind(sql, None, error)


# Class 08 (connection exception), class 57 (operator intervention: the server
# shutting down), and the client finding its connection gone.
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
)
