"""A real issuer per test, served over HTTP, with known users and clients.

Secrets are hashed once per session: scrypt is deliberately slow.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from services.identity.config import ClientRegistration, IssuerConfig, UserAccount, new_client, new_user
from services.identity.issuer import create_issuer_app
from services.identity.signing_keys import SigningKeys
from tests.servers.asgi import RequestLog, reserve_socket, serving

AUDIENCE = "image-builder"
REDIRECT_URI = "http://127.0.0.1:9/callback"


class FakeClock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Accounts:
    users: tuple[UserAccount, ...]
    clients: tuple[ClientRegistration, ...]
    secrets: dict[str, str]


@pytest.fixture(scope="session")
def accounts() -> Accounts:
    ada, ada_password = new_user("ada", "org-a", ("user", "admin"))
    bob, bob_password = new_user("bob", "org-b", ("user",))
    composer, composer_secret = new_client("composer-client", "org-services", ("service",))
    worker, worker_secret = new_client("worker-1", "org-services", ("worker",))
    web, web_secret = new_client(
        "web", "org-services", (), grant_types=("authorization_code",), redirect_uris=(REDIRECT_URI,)
    )
    return Accounts(
        users=(ada, bob),
        clients=(composer, worker, web),
        secrets={
            "ada": ada_password,
            "bob": bob_password,
            "composer-client": composer_secret,
            "worker-1": worker_secret,
            "web": web_secret,
        },
    )


def issuer_config(url: str, data_dir: Path, accounts: Accounts, **options: object) -> IssuerConfig:
    return IssuerConfig(
        issuer=url,
        data_dir=data_dir,
        audiences=(AUDIENCE, "composer"),
        users=accounts.users,
        clients=accounts.clients,
        **options,  # type: ignore[arg-type]
    )


@dataclass
class RunningIssuer:
    url: str
    config: IssuerConfig
    keys: SigningKeys
    requests: RequestLog
    secrets: dict[str, str]

    async def client_credentials_token(self, client_id: str = "composer-client", **form: str) -> str:
        async with httpx2.AsyncClient() as http:
            response = await http.post(
                f"{self.url}/token",
                data={"grant_type": "client_credentials", **form},
                auth=(client_id, self.secrets[client_id]),
            )
        response.raise_for_status()
        return response.json()["access_token"]


@pytest.fixture
async def issuer(tmp_path: Path, accounts: Accounts) -> AsyncIterator[RunningIssuer]:
    sock, url = reserve_socket()
    config = issuer_config(url, tmp_path / "issuer", accounts)
    keys = SigningKeys(config.key_file)
    requests = RequestLog(create_issuer_app(config, signing_keys=keys))
    async with serving(requests, sock):
        yield RunningIssuer(url, config, keys, requests, accounts.secrets)
