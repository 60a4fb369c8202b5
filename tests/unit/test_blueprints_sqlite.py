"""Blueprints in the backend beside a real composer, both on SQLite (embedded mode's databases)."""

from __future__ import annotations

from tests.contracts.blueprint_api import BlueprintContract


class TestBlueprintsOnSQLite(BlueprintContract):
    pass
