"""Migrations on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.migrations import MigrationsContract


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"


class TestMigrationsOnSQLite(MigrationsContract):
    pass
