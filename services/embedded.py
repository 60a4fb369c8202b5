"""The embedded mode: the whole system in one process on SQLite stores.

``image-builder up`` serves, on one port: the web frontend (``/``), the
built-in OpenID Connect issuer (``/oidc``), the backend's image-builder API,
the composer's compose and worker APIs, and health, readiness and a status
summary; it runs one worker that builds the images, relays both services'
outboxes to the in-process broker, and the backend follows the composer's
events from there. The backend reaches the composer, and the frontend the
backend, over HTTP with their own clients of the built-in issuer, exactly as
when distributed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from events.envelope import Stream
from events.inprocess import InProcessBroker
from events.migrations import SERVICES, upgrade_async
from events.relay import OutboxRelay
from events.verify import ChainReport
from services.backend.app import BACKEND_ROUTES, BackendConfig, backend_state
from services.backend.app import PUBLIC_PATHS as BACKEND_PUBLIC_PATHS
from services.backend.composer_client import ComposerClient
from services.backend.config import quota_policy
from services.backend.errors import EXCEPTION_HANDLERS as BACKEND_EXCEPTION_HANDLERS
from services.backend.paths import PREFIX as BACKEND_PREFIX
from services.composer.app import COMPOSER_ROUTES, PUBLIC_PATHS, composer_state, metrics, openapi_config
from services.composer.config import composer_config
from services.composer.errors import EXCEPTION_HANDLERS
from services.embedded_identity import AUDIENCE, EmbeddedIdentity
from services.frontend.app import EXCEPTION_HANDLERS as FRONTEND_EXCEPTION_HANDLERS
from services.frontend.app import frontend_router, frontend_state, template_config
from services.frontend.config import FrontendConfig
from services.identity.client import ServiceTokenSource
from services.identity.guards import BearerAuth
from services.identity.issuer import mount_issuer
from services.settings import SERVICE_TOPICS, Settings
from workers.main import AwsConfig, create_worker
from services.stores import open_store
from services.logs import log_unhandled

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


@get(f"{BACKEND_PREFIX}/openapi.json", sync_to_thread=False, include_in_schema=False)
def backend_openapi(request: Request) -> dict[str, object]:
    """One process, one document: it describes the backend's and the composer's APIs."""
    return request.app.openapi_schema.to_schema()


def _backend_config(settings: Settings, identity: EmbeddedIdentity) -> BackendConfig:
    return BackendConfig(
        database_url=settings.backend_database_url, composer_url=f"http://{settings.host}:{settings.port}",
        client_id=identity.secrets.backend_client_id, outbox_topic=SERVICE_TOPICS["backend"],
        composer_topic=SERVICE_TOPICS["composer"], quota=quota_policy(settings), operator_org=settings.operator_org,
        # The worker's cache (unless set apart): a package search reads the lists its builds read.
        package_cache_dir=settings.backend_package_cache_dir,
    )  # fmt: skip


def _frontend_config(settings: Settings, identity: EmbeddedIdentity) -> FrontendConfig:
    url = f"http://{settings.host}:{settings.port}"
    session_secret = settings.frontend_session_secret or identity.secrets.frontend_session_secret
    assert session_secret is not None
    return FrontendConfig(
        backend_url=url, public_url=settings.frontend_public_url or url, issuer=identity.config.issuer,
        client_id=identity.secrets.frontend_client_id, client_secret=identity.secrets.frontend_client_secret,
        session_secret=session_secret,
    )  # fmt: skip


def create_app(settings: Settings, identity: EmbeddedIdentity) -> Litestar:
    frontend_config = _frontend_config(settings, identity)

    @asynccontextmanager
    async def services(app: Litestar) -> AsyncIterator[None]:
        broker = InProcessBroker()
        async with AsyncExitStack() as stack:
            relays: dict[str, OutboxRelay] = {}
            for service in SERVICES:
                await upgrade_async(settings.database_url(service), service)
                store = await stack.enter_async_context(open_store(settings, service))
                relays[service] = OutboxRelay(store, broker.publisher(), poll_interval=settings.relay_poll_interval)
            configured = composer_config(settings)
            trusted = configured.trusted_clients | {identity.secrets.backend_client_id}
            composer_settings = msgspec.structs.replace(configured, trusted_clients=trusted)
            composer = await stack.enter_async_context(composer_state(composer_settings, relays["composer"].store))
            assert identity.secrets.backend_client_secret is not None
            tokens = ServiceTokenSource(
                f"{identity.config.issuer}/token", identity.secrets.backend_client_id,
                identity.secrets.backend_client_secret, audience=AUDIENCE,
            )  # fmt: skip
            # Like the worker, the backend calls the composer over HTTP and retries until the server listens.
            config = _backend_config(settings, identity)
            composer_client = ComposerClient(config.composer_url, tokens)
            stack.push_async_callback(composer_client.close)
            backend = await stack.enter_async_context(
                backend_state(config, relays["backend"].store, composer_client, broker)
            )
            worker = create_worker(
                f"http://{settings.host}:{settings.port}", f"{identity.config.issuer}/token",
                identity.secrets.worker_client_id, identity.secrets.worker_client_secret,
                cache_dir=settings.worker_cache_dir, work_dir=settings.worker_work_dir, name="embedded-worker",
                aws=AwsConfig(**settings.worker_aws()),
                # Short polls: the server waits for open requests when it shuts down.
                poll_timeout=3.0,
            )  # fmt: skip
            # Like the backend, the frontend reads over HTTP, with each signed-in person's token.
            frontend = await stack.enter_async_context(frontend_state(frontend_config, identity.validator()))
            # The in-process broker starts empty: what was published before a
            # stop but not yet consumed goes out again (inboxes drop the rest).
            for relay in relays.values():
                await relay.republish_retained()
            running = [asyncio.create_task(relay.run()) for relay in relays.values()]
            # The worker reaches the composer over HTTP like any other; it retries until the server listens.
            working = asyncio.create_task(worker.run())
            app.state.update(broker=broker, relays=relays, **composer, **backend, **frontend)
            try:
                yield
            finally:
                worker.request_stop()
                working.cancel()
                for relay in relays.values():
                    relay.request_stop()
                await asyncio.gather(*running, working, return_exceptions=True)
                await worker.close()

    return Litestar(
        route_handlers=[
            health, ready, status, metrics, *COMPOSER_ROUTES, *BACKEND_ROUTES, backend_openapi,
            mount_issuer(identity.config, signing_keys=identity.keys), frontend_router(frontend_config),
        ],  # fmt: skip
        template_config=template_config(),
        lifespan=[services],
        middleware=[BearerAuth(identity.validator(), exclude=(*PUBLIC_PATHS, *BACKEND_PUBLIC_PATHS, "/status"))],
        exception_handlers={**EXCEPTION_HANDLERS, **BACKEND_EXCEPTION_HANDLERS},
        after_exception=[log_unhandled({**EXCEPTION_HANDLERS, **BACKEND_EXCEPTION_HANDLERS, **FRONTEND_EXCEPTION_HANDLERS})],
        openapi_config=openapi_config(),
    )
