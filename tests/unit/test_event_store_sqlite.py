"""The event store contract on SQLite (the embedded mode's backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.event_store import EventStoreContract


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


class TestEventStoreOnSQLite(EventStoreContract):
    writers_commit_concurrently = False
