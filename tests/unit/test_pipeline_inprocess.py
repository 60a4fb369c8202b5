"""Relay and consumers on SQLite stores with the in-process broker (embedded mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.inprocess import InProcessBroker
from events.transport import Transport
from tests.contracts.pipeline import PipelineContract


@pytest.fixture
def producer_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"


@pytest.fixture
def consumer_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}"


@pytest.fixture
def transport() -> InProcessBroker:
    return InProcessBroker()


class TestPipelineOnSQLiteInProcess(PipelineContract):
    def after_restart(self, transport: Transport) -> Transport:
        return InProcessBroker()
