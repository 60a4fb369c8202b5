"""The job queue on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from tests.contracts.job_queue import JobQueueContract

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestJobQueueOnPostgreSQL(JobQueueContract):
    pass
