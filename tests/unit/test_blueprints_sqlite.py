"""Blueprints in the backend beside a real composer, both on SQLite (embedded mode's databases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.blueprint_api import BlueprintContract


@pytest.fixture
def composer_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


@pytest.fixture
def backend_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}"


class TestBlueprintsOnSQLite(BlueprintContract):
    pass
