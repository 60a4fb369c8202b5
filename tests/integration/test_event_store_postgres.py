"""The event store contract on a real PostgreSQL server."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy as sa

from events.engine import create_engine
from events.migrations import upgrade_async
from events.store import EventStore
from tests.contracts.event_store import EventStoreContract
from tests.random_refs import new_event, random_stream

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestEventStoreOnPostgreSQL(EventStoreContract):
    writers_commit_concurrently = True


async def test_a_connection_the_server_closed_is_not_pooled_again(postgres_url: str) -> None:
    await upgrade_async(postgres_url, "composer")
    engine = create_engine(postgres_url, pool_size=1)
    store = EventStore(engine, outbox_topic="composer.events.v1")
    try:
        await store.append(random_stream(), 0, [new_event()])
        async with engine.connect() as conn:
            pid = (await conn.get_raw_connection()).driver_connection.get_server_pid()
        admin = await asyncpg.connect(sa.make_url(postgres_url).set(drivername="postgresql").render_as_string(False))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

        with pytest.raises(sa.exc.OperationalError):
            await store.append(random_stream(), 0, [new_event()])
        # The one pooled connection was the dead one: the next append gets a new one.
        stream = random_stream()
        await store.append(stream, 0, [new_event()])
        assert await store.stream_version(stream) == 1
    finally:
        await store.close()
        await engine.dispose()
