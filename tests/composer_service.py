"""A real composer replica and a real issuer, both over HTTP, for API tests."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from events.migrations import upgrade_async
from services.composer.app import ComposerConfig, create_app
from services.identity.config import ClientRegistration, IssuerConfig, UserAccount, new_client
from services.identity.issuer import create_issuer_app
from services.identity.tokens import TokenValidator
from tests.servers.asgi import reserve_socket, serving

AUDIENCE = "image-builder"
COMPOSE = "/api/image-builder-composer/v2"
WORKER = "/api/worker/v1"

# client id -> (org, roles): users of two orgs, the backend, a worker.
CLIENTS = {
    "alice-cli": ("org-a", ("user",)),
    "bob-cli": ("org-b", ("user",)),
    "backend": ("org-services", ("service",)),
    "rogue-service": ("org-services", ("service",)),
    "worker": ("org-workers", ("worker",)),
    "audrey-audit": ("org-a", ("auditor",)),
    "bert-audit": ("org-b", ("auditor",)),
    # A service-wide auditor where the operator org is "org-ops".
    "olga-operator": ("org-ops", ("auditor", "admin")),
}


@dataclass
class Composer:
    url: str
    issuer_url: str
    secrets: dict[str, str]
    app: Any = None
    tokens: dict[str, str] = field(default_factory=dict)

    @asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """The composer is down inside this block, and back on the same port after it."""
        await self._server.__aexit__(None, None, None)
        try:
            yield
        finally:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", int(self.url.rsplit(":", 1)[1])))
            self._server = serving(self.app(), sock)
            await self._server.__aenter__()

    @property
    def token_url(self) -> str:
        return f"{self.issuer_url}/token"

    async def token(self, client_id: str) -> str:
        if client_id not in self.tokens:
            async with httpx2.AsyncClient() as http:
                response = await http.post(
                    f"{self.issuer_url}/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, self.secrets[client_id]),
                )
            response.raise_for_status()
            self.tokens[client_id] = response.json()["access_token"]
        return self.tokens[client_id]

    @asynccontextmanager
    async def client(self, client_id: str | None) -> AsyncIterator[httpx2.AsyncClient]:
        headers = {"Authorization": f"Bearer {await self.token(client_id)}"} if client_id else {}
        async with httpx2.AsyncClient(base_url=self.url, headers=headers, timeout=90) as http:
            yield http


@asynccontextmanager
async def running_composer(
    database_url: str, work_dir: Path, shutdown_grace: float | None = None, *,
    users: Sequence[UserAccount] = (), clients: Sequence[ClientRegistration] = (), **options: Any,
) -> AsyncIterator[Composer]:  # fmt: skip
    """`shutdown_grace` cuts short the long polls of workers still waiting when the composer stops;
    `users` and `clients` are added to the issuer's (people who sign in, the frontend's client)."""
    await upgrade_async(database_url, "composer")
    issuer_sock, issuer_url = reserve_socket()
    registrations, secrets = [], {}
    for client_id, (org, roles) in CLIENTS.items():
        registration, secret = new_client(client_id, org, roles)
        registrations.append(registration)
        secrets[client_id] = secret
    issuer = IssuerConfig(
        issuer=issuer_url, data_dir=work_dir / "issuer", audiences=(AUDIENCE,), clients=(*registrations, *clients), users=tuple(users),
    )  # fmt: skip
    composer_sock, composer_url = reserve_socket()
    config = ComposerConfig(
        database_url=database_url, artifact_dir=work_dir / "artifacts", trusted_clients=frozenset({"backend"}),
        sweep_interval=0.2, **options,
    )  # fmt: skip
    def app() -> Any:
        return create_app(config, TokenValidator(issuer_url, AUDIENCE))

    async with serving(create_issuer_app(issuer), issuer_sock):
        composer = Composer(composer_url, issuer_url, secrets, app)
        composer._server = serving(app(), composer_sock, shutdown_grace)
        await composer._server.__aenter__()
        try:
            yield composer
        finally:
            await composer._server.__aexit__(None, None, None)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
