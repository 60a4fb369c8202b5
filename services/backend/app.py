"""The backend service: ``create_app`` wires one replica together.

Nothing connects at import time. The lifespan opens image-builder-db, starts
the submitter (hands recorded composes to the composer) and, given a
transport, the consumer of the composer's events (keeps the history
current); it stops both and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from events.consumer import ConsumerRunner
from events.store import EventStore
from events.transport import Transport
from services.audit_api import AuditLog, audit_controller
from services.backend.blueprint_api import BlueprintController
from services.backend.blueprints import Blueprints
from services.backend.build_api import BuildController
from services.backend.build_reads import BuildReads, ComposerBuilds
from services.backend.catalog_api import CatalogController
from services.backend.compose_api import ComposeController
from services.backend.compose_documents import ComposeDocuments, ComposerDocuments
from services.backend.composer_client import ComposerClient
from services.backend.composer_events import CONSUMER_NAME, ComposerEvents
from services.backend.composes import Composes
from services.backend.errors import EXCEPTION_HANDLERS
from services.backend.history import HistoryViews
from services.backend.history_updates import HistoryUpdates
from services.backend.packages import PackageSearch
from services.backend.paths import PREFIX
from services.backend.quotas import QuotaPolicy
from services.backend.submitter import Composer, Submitter
from services.backend.updates_api import HistoryUpdatesController
from services.identity.client import ServiceTokenSource
from services.identity.guards import BearerAuth
from services.identity.tokens import TokenValidator
from services.logs import log_unhandled
from services.stores import open_event_store

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/health", "/ready", f"{PREFIX}/openapi.json")


class BackendConfig(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    composer_url: str
    # The backend's own OAuth2 client: composer composes it submitted are the backend's.
    client_id: str
    outbox_topic: str = "image-builder.events.v1"
    composer_topic: str = "composer.events.v1"
    consumer_group: str = "image-builder-backend"
    submit_poll_interval: float = 30.0
    submit_max_backoff: float = 30.0
    quota: QuotaPolicy = msgspec.field(default_factory=QuotaPolicy)
    # Auditors with role admin in this org read every org's events (services/audit_api.py).
    operator_org: str | None = None
    # Where GET /packages keeps its apt lists (services/backend/packages.py); None: no package search.
    package_cache_dir: Path | None = None


@dataclass(frozen=True)
class Backend:
    """What the backend's handlers find at ``state.backend``."""

    composes: Composes
    history: HistoryViews
    blueprints: Blueprints
    documents: ComposeDocuments
    audit: AuditLog
    # Live changes of the history, for GET /composes/updates.
    updates: HistoryUpdates
    # A build's progress and its images, read from the composer.
    builds: BuildReads
    # Package search in the cached apt lists.
    packages: PackageSearch


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(state: State) -> dict[str, str]:
    try:
        await state.backend.history.probe()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        raise HTTPException(status_code=503, detail=f"image-builder-db unavailable: {error}") from error
    return {"status": "ready"}


BACKEND_ROUTES: list[ControllerRouterHandler] = [
    CatalogController,
    ComposeController,
    BuildController,
    HistoryUpdatesController,
    BlueprintController,
    audit_controller(PREFIX, lambda state: state.backend.audit),
]


class BackendComposer(Composer, ComposerDocuments, ComposerBuilds, Protocol):
    """What the backend asks of the composer: taking composes, its documents of them, their builds."""


@asynccontextmanager
async def backend_state(
    config: BackendConfig, store: EventStore, composer: BackendComposer, transport: Transport | None,
    *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[dict[str, Any]]:  # fmt: skip
    """The backend's state for ``app.state``, with its submitter and consumer running until closed."""
    composes = Composes(store, clock=clock, quota=config.quota)
    submitter = Submitter(
        store.engine, composes, composer, poll_interval=config.submit_poll_interval, max_backoff=config.submit_max_backoff
    )
    composes.on_requested = submitter.wake
    consumer = None
    if transport is None:
        log.warning("no transport configured: the build history does not follow the composer's events")
    else:
        consumer = ConsumerRunner(
            name=CONSUMER_NAME,
            subscriber=transport.subscriber([config.composer_topic], config.consumer_group),
            engine=store.engine,
            handler=ComposerEvents(store, config.client_id, clock=clock),
            dead_letters=transport.publisher(),
            # Its commits bypass unit_of_work: wake the history's followers (and an in-process relay) now.
            on_commit=store.notify_commit,
        )
    updates = HistoryUpdates(store)
    await updates.start()
    await submitter.start()
    consuming = None
    if consumer is not None:
        consuming = asyncio.create_task(consumer.run())
        consuming.add_done_callback(_report_stopped)
    try:
        history = HistoryViews(store)
        yield {
            "backend": Backend(
                composes=composes, history=history, documents=ComposeDocuments(history, composer),
                blueprints=Blueprints(store, composes),
                audit=AuditLog(store, config.operator_org), updates=updates,
                builds=BuildReads(history, composer), packages=PackageSearch(config.package_cache_dir),
            )
        }  # fmt: skip
    finally:
        await updates.stop()
        await submitter.stop()
        if consumer is not None and consuming is not None:
            consumer.request_stop()
            with contextlib.suppress(Exception):  # already reported by _report_stopped
                await consuming


def _report_stopped(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the consumer of the composer's events stopped; the history no longer follows", exc_info=task.exception())


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(title="image-builder", version="1", path=PREFIX, render_plugins=[])


def create_app(
    config: BackendConfig, validator: TokenValidator, tokens: ServiceTokenSource, transport: Transport | None = None,
    *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Litestar:  # fmt: skip
    """``tokens`` gets the backend's client-credentials tokens for calling the composer;
    ``transport`` delivers ``composer.events.v1`` (Kafka, or in-process when embedded);
    ``clock`` stamps the backend's events (tests move it to pass a quota window)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        composer = ComposerClient(config.composer_url, tokens)
        try:
            async with (
                open_event_store(config.database_url, config.outbox_topic) as store,
                backend_state(config, store, composer, transport, clock=clock) as state,
            ):
                app.state.update(state)
                yield
        finally:
            await composer.close()

    return Litestar(
        route_handlers=[*BACKEND_ROUTES, health, ready],
        lifespan=[lifespan],
        middleware=[BearerAuth(validator, exclude=PUBLIC_PATHS)],
        exception_handlers=EXCEPTION_HANDLERS,
        after_exception=[log_unhandled(EXCEPTION_HANDLERS)],
        # The process configures logging (services/logs.py); Litestar must not replace it.
        logging_config=None,
        openapi_config=openapi_config(),
    )
