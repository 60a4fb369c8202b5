"""Migrations contract: both service databases go from empty to head and back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from events.engine import create_engine
from events.migrations import SERVICES, downgrade_async, upgrade_async
from services.backend.tables import metadata as backend_metadata
from services.composer.tables import metadata as composer_metadata

# What each service's database must look like at head.
EXPECTED_SCHEMA = {"composer": composer_metadata, "backend": backend_metadata}


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _schema_differences(url: str, service: str) -> list:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), EXPECTED_SCHEMA[service])
            )
    finally:
        await engine.dispose()


class MigrationsContract:
    @pytest.mark.parametrize("service", SERVICES)
    async def test_an_empty_database_upgrades_to_head_and_back_down(self, database_url: str, service: str) -> None:
        await upgrade_async(database_url, service)
        assert {"events", "event_streams", "event_chain_head", "outbox", "consumer_inbox"} <= await _tables(database_url)

        await downgrade_async(database_url, service)
        assert await _tables(database_url) <= {"alembic_version"}

    @pytest.mark.parametrize("service", SERVICES)
    async def test_the_migrated_schema_is_exactly_what_the_code_expects(self, database_url: str, service: str) -> None:
        await upgrade_async(database_url, service)

        assert await _schema_differences(database_url, service) == []

    async def test_upgrading_twice_changes_nothing(self, database_url: str) -> None:
        await upgrade_async(database_url, "backend")
        before = await _tables(database_url)

        await upgrade_async(database_url, "backend")

        assert await _tables(database_url) == before

    async def test_an_unknown_service_is_refused(self, database_url: str) -> None:
        with pytest.raises(ValueError, match="unknown service 'frontend'"):
            await upgrade_async(database_url, "frontend")
