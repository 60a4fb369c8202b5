"""Operator commands against a real PostgreSQL server."""

from __future__ import annotations

import pytest

from tests.contracts.cli import OperatorCommandsContract

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestOperatorCommandsOnPostgreSQL(OperatorCommandsContract):
    pass
