"""Live history updates on SQLite (embedded mode's database), and the stream's own rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from events.engine import create_engine
from events.migrations import upgrade_async
from events.store import EventStore
from services.backend.history import HistoryViews
from services.backend.history_updates import HistoryUpdates
from services.backend.updates_api import history_changes
from tests.contracts.history_updates import HistoryUpdatesContract


class TestHistoryUpdatesOnSQLite(HistoryUpdatesContract):
    pass


@pytest.fixture
async def updates(backend_database_url: str) -> AsyncIterator[HistoryUpdates]:
    await upgrade_async(backend_database_url, "backend")
    engine = create_engine(backend_database_url)
    hub = HistoryUpdates(EventStore(engine))
    await hub.start()
    yield hub
    await hub.stop()
    await engine.dispose()


async def test_a_quiet_stream_sends_keep_alives_and_ends_after_its_lifetime(updates: HistoryUpdates) -> None:
    sent = [m async for m in history_changes(updates, HistoryViews(updates.store), "org-a", heartbeat=0.1, lifetime=0.35)]

    assert sent[0].event == "ready" and sent[0].retry
    assert [m.comment for m in sent[1:]] == ["keep-alive"] * (len(sent) - 1) and 3 <= len(sent) - 1 <= 4


async def test_a_follower_that_falls_behind_is_told_to_read_afresh(updates: HistoryUpdates) -> None:
    updates.subscriber_limit = 2
    with updates.subscribe("org-a") as subscription:
        for compose_id in ("c1", "c2", "c3"):
            subscription.put(compose_id)
        assert subscription.take_lost() is True
        assert await subscription.next(0.01) is None
        assert subscription.take_lost() is False
