"""The event store contract on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from tests.contracts.event_store import EventStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestEventStoreOnPostgreSQL(EventStoreContract):
    writers_commit_concurrently = True
