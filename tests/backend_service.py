"""A real backend replica beside a real composer (tests/composer_service.py), over HTTP.

The composer's outbox is relayed to a transport the backend consumes, as in
either way of running: an in-process broker, or Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2
from litestar import Litestar

from events.engine import create_engine
from events.migrations import upgrade_async
from events.relay import OutboxRelay
from events.store import EventStore
from events.transport import Transport
from services.backend.app import BackendConfig, create_app
from services.backend.composer_client import ComposerClient
from services.identity.client import ServiceTokenSource
from services.identity.tokens import TokenValidator
from services.settings import SERVICE_TOPICS
from tests.composer_service import AUDIENCE, Composer
from tests.servers.asgi import reserve_socket, serving

API = "/api/image-builder/v1"
BACKEND_CLIENT = "backend"


class FakeClock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Backend:
    url: str
    composer: Composer
    database_url: str
    # The Litestar app being served, for tests that walk its routes.
    app: Litestar | None = None

    @asynccontextmanager
    async def client(self, client_id: str | None) -> AsyncIterator[httpx2.AsyncClient]:
        headers = {"Authorization": f"Bearer {await self.composer.token(client_id)}"} if client_id else {}
        async with httpx2.AsyncClient(base_url=self.url, headers=headers, timeout=30) as http:
            yield http


def backend_tokens(composer: Composer) -> ServiceTokenSource:
    return ServiceTokenSource(composer.token_url, BACKEND_CLIENT, composer.secrets[BACKEND_CLIENT], audience=AUDIENCE)


@asynccontextmanager
async def composer_client(composer: Composer) -> AsyncIterator[ComposerClient]:
    """The backend's client of the composer, as the backend itself makes it."""
    client = ComposerClient(composer.url, backend_tokens(composer))
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def running_backend(
    composer: Composer, database_url: str, transport: Transport | None,
    clock: Callable[[], datetime] | None = None, **options: Any,
) -> AsyncIterator[Backend]:  # fmt: skip
    """``options`` are BackendConfig's (quota, operator_org, ...); ``clock`` stamps the backend's events."""
    await upgrade_async(database_url, "backend")
    config = BackendConfig(
        database_url=database_url, composer_url=composer.url, client_id=BACKEND_CLIENT,
        **{"submit_poll_interval": 1.0, "submit_max_backoff": 0.5, **options},
    )  # fmt: skip
    validator = TokenValidator(composer.issuer_url, AUDIENCE)
    app = create_app(config, validator, backend_tokens(composer), transport, **({"clock": clock} if clock else {}))
    sock, url = reserve_socket()
    async with serving(app, sock):
        yield Backend(url, composer, database_url, app)


@asynccontextmanager
async def relaying(composer_database_url: str, transport: Transport) -> AsyncIterator[OutboxRelay]:
    """The composer's outbox relay, publishing to ``transport`` while the block runs."""
    engine = create_engine(composer_database_url)
    relay = OutboxRelay(EventStore(engine, outbox_topic=SERVICE_TOPICS["composer"]), transport.publisher(), poll_interval=0.05)
    running = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.request_stop()
        await running
        await engine.dispose()
