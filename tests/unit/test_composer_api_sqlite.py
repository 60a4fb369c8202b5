"""The composer's HTTP APIs on SQLite (embedded mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.composer_api import ComposerApiContract


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


class TestComposerApiOnSQLite(ComposerApiContract):
    pass
