"""The composer service: ``create_app`` wires one replica together.

Nothing connects at import time; the lifespan opens the database, starts the
queue's background duties and closes everything on shutdown. The embedded
mode (services/embedded.py) serves the same routes with the same state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

from events.store import EventStore
from services.audit_api import AuditLog, audit_controller
from services.composer import compose_api, worker_api
from services.composer.artifacts import ArtifactStore
from services.composer.background import QueueBackground
from services.composer.errors import EXCEPTION_HANDLERS
from services.composer.fleet import Fleet
from services.composer.metrics import ComposerMetrics
from services.composer.queue import JobQueue
from services.composer.views import ComposeViews
from services.identity.guards import BearerAuth
from services.identity.tokens import TokenValidator
from services.logs import log_unhandled
from services.stores import open_event_store

OPENAPI_PATH = compose_api.PREFIX
PUBLIC_PATHS = ("/health", "/ready", "/metrics", f"{OPENAPI_PATH}/openapi.json")


class ComposerConfig(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    artifact_dir: Path
    trusted_clients: frozenset[str] = frozenset()
    lease_seconds: float = 60.0
    max_attempts: int = 3
    sweep_interval: float = 5.0
    outbox_topic: str = "composer.events.v1"
    # Auditors with role admin in this org read every org's events (services/audit_api.py).
    operator_org: str | None = None


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(state: State) -> dict[str, str]:
    await state.queue.reads.job_status_probe()
    return {"status": "ready"}


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(state: State) -> Response[bytes]:
    return Response(await state.metrics.render(state.queue.store.engine), media_type="text/plain; version=0.0.4")


COMPOSER_ROUTES: list[ControllerRouterHandler] = [
    compose_api.ComposeController,
    worker_api.WorkerController,
    audit_controller(compose_api.PREFIX, lambda state: state.audit),
]


@asynccontextmanager
async def composer_state(config: ComposerConfig, store: EventStore) -> AsyncIterator[dict[str, Any]]:
    """Everything the composer's handlers find on ``app.state``, running until closed."""
    composer_metrics = ComposerMetrics()
    queue = JobQueue(
        store, lease=timedelta(seconds=config.lease_seconds), max_attempts=config.max_attempts,
        on_claim=composer_metrics.claimed, on_lapse=composer_metrics.requeues.inc,
        on_conclusion=composer_metrics.concluded,
    )  # fmt: skip
    background = QueueBackground(queue, sweep_interval=config.sweep_interval)
    await background.start()
    try:
        yield {
            "queue": queue, "views": ComposeViews(store.engine), "fleet": Fleet(store.engine, queue.clock),
            "artifacts": ArtifactStore(config.artifact_dir), "trusted_clients": config.trusted_clients,
            "metrics": composer_metrics, "audit": AuditLog(store, config.operator_org),
        }  # fmt: skip
    finally:
        await background.stop()


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(title="image-builder composer", version="2", path=OPENAPI_PATH, render_plugins=[])


def create_app(config: ComposerConfig, validator: TokenValidator) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with (
            open_event_store(config.database_url, config.outbox_topic) as store,
            composer_state(config, store) as state,
        ):
            app.state.update(state)
            yield

    return Litestar(
        route_handlers=[*COMPOSER_ROUTES, health, ready, metrics],
        lifespan=[lifespan],
        middleware=[BearerAuth(validator, exclude=PUBLIC_PATHS)],
        exception_handlers=EXCEPTION_HANDLERS,
        after_exception=[log_unhandled(EXCEPTION_HANDLERS)],
        # The process configures logging (services/logs.py); Litestar must not replace it.
        logging_config=None,
        openapi_config=openapi_config(),
    )
