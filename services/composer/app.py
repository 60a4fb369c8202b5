"""The composer service: ``create_app`` wires one replica together.

Nothing connects at import time; the lifespan opens the database, starts the
queue's background duties and closes everything on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from events.engine import create_engine
from events.store import EventStore
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

OPENAPI_PATH = compose_api.PREFIX


class ComposerConfig(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    artifact_dir: Path
    trusted_clients: frozenset[str] = frozenset()
    lease_seconds: float = 60.0
    max_attempts: int = 3
    sweep_interval: float = 5.0
    outbox_topic: str = "composer.events.v1"


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready")
async def ready(state: State) -> dict[str, str]:
    await state.queue.reads.job_status_probe()
    return {"status": "ready"}


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(state: State) -> Response[bytes]:
    return Response(await state.metrics.render(state.store.engine), media_type="text/plain; version=0.0.4")


def create_app(config: ComposerConfig, validator: TokenValidator) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(config.database_url)
        store = EventStore(engine, outbox_topic=config.outbox_topic)
        composer_metrics = ComposerMetrics()
        queue = JobQueue(
            store, lease=timedelta(seconds=config.lease_seconds), max_attempts=config.max_attempts,
            on_claim=composer_metrics.claimed, on_lapse=composer_metrics.requeues.inc,
            on_conclusion=composer_metrics.concluded,
        )  # fmt: skip
        background = QueueBackground(queue, sweep_interval=config.sweep_interval)
        await background.start()
        app.state.update(
            store=store, queue=queue, views=ComposeViews(engine), fleet=Fleet(engine, queue.clock),
            artifacts=ArtifactStore(config.artifact_dir), trusted_clients=config.trusted_clients,
            metrics=composer_metrics,
        )  # fmt: skip
        try:
            yield
        finally:
            await background.stop()
            await engine.dispose()

    return Litestar(
        route_handlers=[compose_api.ComposeController, worker_api.WorkerController, health, ready, metrics],
        lifespan=[lifespan],
        middleware=[BearerAuth(validator, exclude=("/health", "/ready", "/metrics", f"{OPENAPI_PATH}/openapi.json"))],
        exception_handlers=EXCEPTION_HANDLERS,
        # The process configures logging (services/logs.py); Litestar must not replace it.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="image-builder composer", version="2", path=OPENAPI_PATH, render_plugins=[]
        ),
    )
