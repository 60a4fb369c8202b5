"""The composer's HTTP APIs on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from tests.contracts.composer_api import ComposerApiContract

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestComposerApiOnPostgreSQL(ComposerApiContract):
    pass
