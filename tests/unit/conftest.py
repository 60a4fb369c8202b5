"""The services' databases for the unit tier: SQLite files, one pair per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def composer_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


@pytest.fixture
def backend_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}"
