"""The job queue on SQLite (embedded mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contracts.job_queue import JobQueueContract


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


class TestJobQueueOnSQLite(JobQueueContract):
    pass
