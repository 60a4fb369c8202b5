"""The services' databases for the integration tier: two PostgreSQL databases.

(The package cache real builds share is tests/conftest.py's cache_dir.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def composer_database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def backend_database_url(postgres_url_factory: Callable[..., str]) -> str:
    return postgres_url_factory("backend")
