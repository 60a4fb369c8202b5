"""The embedded mode: every service in one process on SQLite stores.

So far the event stores and their relays exist: ``image-builder up`` migrates
both service databases, relays each outbox to the in-process broker, and
serves health, readiness and a status summary. The composer, backend,
frontend and worker join here as they are built.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from events.envelope import Stream
from events.inprocess import InProcessBroker
from events.migrations import SERVICES, upgrade_async
from events.relay import OutboxRelay
from events.verify import ChainReport
from services.settings import Settings
from services.stores import open_store

# Reading a stream's version touches the store's tables: it fails if the
# database is unreachable or not migrated.
READINESS_PROBE = Stream("readiness", "probe")


class OutboxStatus(msgspec.Struct, frozen=True):
    pending: int
    published: int


class StoreStatus(msgspec.Struct, frozen=True):
    service: str
    topic: str | None
    chain: ChainReport
    outbox: OutboxStatus


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(state: State) -> dict[str, str]:
    for service, relay in state.relays.items():
        try:
            await relay.store.stream_version(READINESS_PROBE)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"
            raise HTTPException(status_code=503, detail=f"{service} store unavailable: {error}") from error
    return {"status": "ready"}


@get("/status")
async def status(state: State) -> list[StoreStatus]:
    found = []
    for service, relay in state.relays.items():
        await relay.refresh_gauges()
        metrics = relay.metrics
        outbox = OutboxStatus(int(metrics.pending._value.get()), int(metrics.published._value.get()))
        found.append(StoreStatus(service, relay.store.outbox_topic, await relay.store.verify(), outbox))
    return found


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def services(app: Litestar) -> AsyncIterator[None]:
        broker = InProcessBroker()
        async with AsyncExitStack() as stack:
            relays: dict[str, OutboxRelay] = {}
            for service in SERVICES:
                await upgrade_async(settings.database_url(service), service)
                store = await stack.enter_async_context(open_store(settings, service))
                relays[service] = OutboxRelay(store, broker.publisher(), poll_interval=settings.relay_poll_interval)
            running = [asyncio.create_task(relay.run()) for relay in relays.values()]
            app.state.broker = broker
            app.state.relays = relays
            try:
                yield
            finally:
                for relay in relays.values():
                    relay.request_stop()
                await asyncio.gather(*running)

    return Litestar(route_handlers=[health, ready, status], lifespan=[services])
