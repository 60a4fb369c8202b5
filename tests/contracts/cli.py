"""The operator commands against a service database: migrate, audit verify."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from events.engine import create_engine
from events.schema import events
from events.store import EventStore
from tests.cli import run_cli
from tests.random_refs import new_event, random_stream


class OperatorCommandsContract:
    @pytest.fixture
    def env(self, database_url: str) -> dict[str, str]:
        return {"IMAGE_BUILDER_COMPOSER_DATABASE_URL": database_url}

    async def test_migrate_then_verify_an_intact_event_log(self, database_url: str, env: dict[str, str]) -> None:
        migrated = run_cli("migrate", "--service", "composer", env=env)
        assert migrated.returncode == 0, migrated.stderr
        engine = create_engine(database_url)
        store = EventStore(engine)
        for _ in range(3):
            await store.append(random_stream(), 0, [new_event()])
        await store.sequence()
        await engine.dispose()

        verified = run_cli("audit", "verify", "--service", "composer", env=env)

        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "intact (3 events)" in verified.stdout

    async def test_verify_exits_1_naming_the_first_tampered_position(self, database_url: str, env: dict[str, str]) -> None:
        assert run_cli("migrate", "--service", "composer", env=env).returncode == 0
        engine = create_engine(database_url)
        store = EventStore(engine)
        for _ in range(4):
            await store.append(random_stream(), 0, [new_event()])
        await store.sequence()
        async with engine.begin() as conn:
            await conn.execute(events.update().where(events.c.position == 2).values(event_type="Forged"))
        await engine.dispose()

        verified = run_cli("audit", "verify", "--service", "composer", env=env)

        assert verified.returncode == 1
        assert "BROKEN at position 2" in verified.stdout

    def test_migrate_refuses_an_unknown_service(self, env: dict[str, str]) -> None:
        refused = run_cli("migrate", "--service", "frontend", env=env)

        assert refused.returncode == 2
        assert "invalid choice: 'frontend'" in refused.stderr

    async def test_migrate_reports_its_progress_for_the_chosen_database(self, database_url: str, env: dict[str, str]) -> None:
        migrated = run_cli("migrate", "--service", "composer", env=env)

        assert migrated.returncode == 0
        assert "composer database is at head" in migrated.stdout
        engine = create_engine(database_url)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        await engine.dispose()
        assert "events" in tables

    def test_relay_without_a_kafka_bootstrap_says_what_to_set(self, env: dict[str, str]) -> None:
        refused = run_cli("relay", "--service", "composer", env={**env, "IMAGE_BUILDER_KAFKA_BOOTSTRAP": ""})

        assert refused.returncode == 2
        assert "IMAGE_BUILDER_KAFKA_BOOTSTRAP" in refused.stderr
