"""Opening each service's event store from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from events.engine import create_engine
from events.store import EventStore
from services.settings import SERVICE_TOPICS, Settings


@asynccontextmanager
async def open_store(settings: Settings, service: str) -> AsyncIterator[EventStore]:
    engine = create_engine(settings.database_url(service))
    store = EventStore(engine, outbox_topic=SERVICE_TOPICS[service])
    try:
        yield store
    finally:
        await store.close()
        await engine.dispose()
