"""The embedded mode: every service in one process on SQLite stores.

So far the event stores are what exists: ``image-builder up`` migrates both
service databases, checks their hash chains and serves health, readiness and
a status summary. The composer, backend, frontend and worker join here as
they are built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from events.migrations import SERVICES, upgrade_async
from events.envelope import Stream
from events.store import EventStore
from events.verify import ChainReport
from services.settings import Settings
from services.stores import open_store


# Reading a stream's version touches the store's tables: it fails if the
# database is unreachable or not migrated.
READINESS_PROBE = Stream("readiness", "probe")


class StoreStatus(msgspec.Struct, frozen=True):
    service: str
    topic: str | None
    chain: ChainReport


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(state: State) -> dict[str, str]:
    for service, store in state.stores.items():
        try:
            await store.stream_version(READINESS_PROBE)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            raise HTTPException(status_code=503, detail=f"{service} store unavailable: {error}") from error
    return {"status": "ready"}


@get("/status")
async def status(state: State) -> list[StoreStatus]:
    return [StoreStatus(service, store.outbox_topic, await store.verify()) for service, store in state.stores.items()]


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def stores(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            opened: dict[str, EventStore] = {}
            for service in SERVICES:
                await upgrade_async(settings.database_url(service), service)
                opened[service] = await stack.enter_async_context(open_store(settings, service))
            app.state.stores = opened
            yield

    return Litestar(route_handlers=[health, ready, status], lifespan=[stores])
