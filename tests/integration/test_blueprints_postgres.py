"""Blueprints in the backend beside a real composer, each on its own PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contracts.blueprint_api import BlueprintContract

pytestmark = pytest.mark.integration


@pytest.fixture
def composer_database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def backend_database_url(postgres_url_factory: Callable[..., str]) -> str:
    return postgres_url_factory("backend")


class TestBlueprintsOnPostgreSQL(BlueprintContract):
    pass
