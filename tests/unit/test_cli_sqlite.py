"""Operator commands against an embedded (SQLite) database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.cli import OperatorCommandsContract


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


class TestOperatorCommandsOnSQLite(OperatorCommandsContract):
    pass
