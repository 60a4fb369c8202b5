"""The embedded mode: the whole system in one process on SQLite stores.

``image-builder up`` serves, on one port: the built-in OpenID Connect issuer
(``/oidc``), the composer's compose and worker APIs, and health, readiness
and a status summary; it runs one worker that builds the images, and relays
both services' outboxes to the in-process broker. The backend and frontend
join here as they are built.
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
from services.composer.app import COMPOSER_ROUTES, PUBLIC_PATHS, composer_state, metrics, openapi_config
from services.composer.config import composer_config
from services.composer.errors import EXCEPTION_HANDLERS
from services.embedded_identity import EmbeddedIdentity
from services.identity.guards import BearerAuth
from services.identity.issuer import mount_issuer
from services.settings import Settings
from workers.main import AwsConfig, create_worker
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


def create_app(settings: Settings, identity: EmbeddedIdentity) -> Litestar:
    @asynccontextmanager
    async def services(app: Litestar) -> AsyncIterator[None]:
        broker = InProcessBroker()
        async with AsyncExitStack() as stack:
            relays: dict[str, OutboxRelay] = {}
            for service in SERVICES:
                await upgrade_async(settings.database_url(service), service)
                store = await stack.enter_async_context(open_store(settings, service))
                relays[service] = OutboxRelay(store, broker.publisher(), poll_interval=settings.relay_poll_interval)
            composer = await stack.enter_async_context(
                composer_state(composer_config(settings), relays["composer"].store)
            )
            worker = create_worker(
                f"http://{settings.host}:{settings.port}", f"{identity.config.issuer}/token",
                identity.secrets.worker_client_id, identity.secrets.worker_client_secret,
                cache_dir=settings.worker_cache_dir, work_dir=settings.worker_work_dir, name="embedded-worker",
                aws=AwsConfig(**settings.worker_aws()),
                # Short polls: the server waits for open requests when it shuts down.
                poll_timeout=3.0,
            )  # fmt: skip
            running = [asyncio.create_task(relay.run()) for relay in relays.values()]
            # The worker reaches the composer over HTTP like any other; it retries until the server listens.
            working = asyncio.create_task(worker.run())
            app.state.update(broker=broker, relays=relays, **composer)
            try:
                yield
            finally:
                worker.request_stop()
                working.cancel()
                for relay in relays.values():
                    relay.request_stop()
                await asyncio.gather(*running, working, return_exceptions=True)
                await worker.client.close()

    return Litestar(
        route_handlers=[
            health, ready, status, metrics, *COMPOSER_ROUTES,
            mount_issuer(identity.config, signing_keys=identity.keys),
        ],  # fmt: skip
        lifespan=[services],
        middleware=[BearerAuth(identity.validator(), exclude=(*PUBLIC_PATHS, "/status"))],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
    )
