"""Alembic environment for both service databases (branches ``composer`` and ``backend``).

Run through ``image-builder migrate --service composer|backend``, which hands
over an open connection. Plain ``alembic -x url=...`` works too.
"""

from __future__ import annotations

import asyncio

from alembic import context

from events.engine import create_engine


def _migrate(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=None,
        # SQLite cannot ALTER most things in place; batch mode copies tables.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_migrate)
            await conn.commit()
    finally:
        await engine.dispose()


def run() -> None:
    if context.is_offline_mode():
        raise SystemExit("offline (SQL script) mode is not supported; run against a database")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    asyncio.run(_migrate_url(url))


run()
