"""Running alembic for one service's database from code and the CLI.

composer-db and image-builder-db live in one alembic script directory as two
branches, labelled ``composer`` and ``backend``; each database only ever
carries its own branch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from events.engine import create_engine

SERVICES = ("composer", "backend")
SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option(
        "version_locations",
        " ".join(str(SCRIPT_LOCATION / "versions" / service) for service in SERVICES),
    )
    config.set_main_option("path_separator", "space")
    config.set_main_option("sqlalchemy.url", url)
    return config


def _target(service: str, revision: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    return revision if "@" in revision else f"{service}@{revision}"


async def upgrade_async(url: str, service: str, revision: str = "head") -> None:
    await _run(url, lambda config: command.upgrade(config, _target(service, revision)))


async def downgrade_async(url: str, service: str, revision: str = "base") -> None:
    await _run(url, lambda config: command.downgrade(config, _target(service, revision)))


def upgrade(url: str, service: str, revision: str = "head") -> None:
    asyncio.run(upgrade_async(url, service, revision))


def downgrade(url: str, service: str, revision: str = "base") -> None:
    asyncio.run(downgrade_async(url, service, revision))


async def _run(url: str, action) -> None:  # noqa: ANN001
    # Alembic is synchronous; hand it a connection from our async engine so the
    # same engine settings (SQLite locking, pool) apply to migrations.
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def migrate(sync_connection) -> None:  # noqa: ANN001
                config = alembic_config(url)
                config.attributes["connection"] = sync_connection
                action(config)

            await conn.run_sync(migrate)
    finally:
        await engine.dispose()
