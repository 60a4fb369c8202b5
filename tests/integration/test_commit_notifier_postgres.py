"""The outbox NOTIFY an event store sends after its commits, on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa

from events.engine import create_engine
from events.migrations import upgrade_async
from events.migrations.messaging_0002 import OUTBOX_CHANNEL
from events.notifier import CommitNotifier
from events.store import EventStore
from tests.random_refs import new_event, random_stream

pytestmark = pytest.mark.integration


class Heard:
    """A LISTENing session of its own, as a relay in another process has."""

    def __init__(self) -> None:
        self.count = 0
        self.arrived = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self.count += 1
        self.arrived.set()

    async def settle(self) -> int:
        """The count once nothing more has arrived for a moment (notifications are asynchronous)."""
        while True:
            before = self.count
            await asyncio.sleep(0.3)
            if self.count == before:
                return before


@pytest.fixture
async def heard(postgres_url: str) -> AsyncIterator[Heard]:
    await upgrade_async(postgres_url, "composer")
    conn = await asyncpg.connect(sa.make_url(postgres_url).set(drivername="postgresql").render_as_string(False))
    listener = Heard()
    await conn.add_listener(OUTBOX_CHANNEL, listener)
    yield listener
    await conn.close()


async def test_an_append_wakes_a_listener_in_another_session(postgres_url: str, heard: Heard) -> None:
    engine = create_engine(postgres_url)
    store = EventStore(engine, outbox_topic="composer.events.v1")
    try:
        await store.append(random_stream(), 0, [new_event()])
        async with asyncio.timeout(10):
            await heard.arrived.wait()
    finally:
        await store.close()
        await engine.dispose()
    assert await heard.settle() == 1


async def test_the_database_itself_no_longer_notifies_on_an_outbox_insert(postgres_url: str, heard: Heard) -> None:
    # A store without an outbox topic writes no outbox rows and sends nothing;
    # an outbox row inserted by hand reaches no listener either: the trigger is gone.
    engine = create_engine(postgres_url)
    store = EventStore(engine)
    try:
        [event] = await store.append(random_stream(), 0, [new_event()])
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO outbox (event_id, topic, created_at) VALUES (:id, 't', now())"), {"id": event.event_id}
            )
    finally:
        await store.close()
        await engine.dispose()
    assert await heard.settle() == 0


async def test_commits_that_arrive_while_a_notify_is_due_share_it(postgres_url: str, heard: Heard) -> None:
    engine = create_engine(postgres_url)
    notifier = CommitNotifier(engine, OUTBOX_CHANNEL)
    try:
        for _ in range(10):
            notifier.nudge()
        await notifier.close()
        assert await heard.settle() == 1
        # A commit after that one was sent gets a NOTIFY of its own.
        notifier.nudge()
        await notifier.close()
        assert await heard.settle() == 2
    finally:
        await engine.dispose()


async def test_a_notify_that_cannot_be_sent_is_logged_and_the_commit_stands(
    postgres_url: str, heard: Heard, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = create_engine(sa.make_url(postgres_url).set(port=1).render_as_string(False))
    notifier = CommitNotifier(unreachable, OUTBOX_CHANNEL)
    try:
        with caplog.at_level(logging.WARNING, logger="events.notifier"):
            notifier.nudge()
            await notifier.close()
    finally:
        await unreachable.dispose()
    assert "could not NOTIFY listeners" in caplog.text
    assert await heard.settle() == 0
