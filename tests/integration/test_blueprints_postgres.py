"""Blueprints in the backend beside a real composer, each on its own PostgreSQL database."""

from __future__ import annotations

import pytest

from tests.contracts.blueprint_api import BlueprintContract

pytestmark = pytest.mark.integration


class TestBlueprintsOnPostgreSQL(BlueprintContract):
    pass
