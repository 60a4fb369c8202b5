"""Opening each service's event store, and closing it in the right order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from events.engine import create_engine
from events.store import EventStore
from services.settings import SERVICE_TOPICS, Settings


@asynccontextmanager
async def open_event_store(database_url: str, outbox_topic: str | None) -> AsyncIterator[EventStore]:
    """A store on its own engine; on the way out the store first finishes the
    NOTIFY it may still owe other processes, then the engine goes."""
    engine = create_engine(database_url)
    store = EventStore(engine, outbox_topic=outbox_topic)
    try:
        yield store
    finally:
        await store.close()
        await engine.dispose()


@asynccontextmanager
async def open_store(settings: Settings, service: str) -> AsyncIterator[EventStore]:
    async with open_event_store(settings.database_url(service), SERVICE_TOPICS[service]) as store:
        yield store
