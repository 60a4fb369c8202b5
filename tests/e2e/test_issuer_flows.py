"""The identity flows as the embedded mode wires them: the built-in issuer
mounted at /oidc next to a protected API, one process, real HTTP.

A person signs in through the browser form and the web client (authlib's
OAuth2 client) exchanges the code with PKCE; a service uses client
credentials; the API checks both with a validator that found the issuer's
keys through discovery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from litestar import Litestar, Request, get

from services.identity.client import ServiceTokenSource
from services.identity.config import IssuerConfig, create_initial_config, new_client
from services.identity.guards import IDENTITY_EXCEPTION_HANDLERS, BearerAuth, require_roles
from services.identity.issuer import mount_issuer
from services.identity.principal import Principal
from services.identity.tokens import TokenValidator
from tests.unit.identity.browser import new_verifier, read_form
from tests.servers.asgi import reserve_socket, serving

pytestmark = pytest.mark.e2e


@get("/api/whoami", sync_to_thread=False)
def whoami(request: Request[Principal, str, Any]) -> dict[str, object]:
    return {"subject": request.user.subject, "org_id": request.user.org_id, "roles": sorted(request.user.roles)}


@get("/api/admin", guards=[require_roles("admin")], sync_to_thread=False)
def admin_area() -> str:
    return "admin"


@get("/health", sync_to_thread=False)
def health() -> str:
    return "ok"


@dataclass
class System:
    url: str
    issuer: str
    username: str
    password: str
    service_id: str
    service_secret: str
    web_secret: str
    redirect_uri: str


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    sock, url = reserve_socket()
    issuer = f"{url}/oidc"
    redirect_uri = f"{url}/auth/callback"
    config, secrets = create_initial_config(issuer, tmp_path / "data", org_id="org-1")
    web, web_secret = new_client("web", "org-1", (), grant_types=("authorization_code",), redirect_uris=(redirect_uri,))
    config.save(tmp_path / "data" / "issuer.json")
    with_web = IssuerConfig.from_file(tmp_path / "data" / "issuer.json", clients=[*config.clients, web])

    validator = TokenValidator(issuer, "image-builder")
    app = Litestar(
        [mount_issuer(with_web), whoami, admin_area, health],
        middleware=[BearerAuth(validator)],
        exception_handlers=IDENTITY_EXCEPTION_HANDLERS,
    )
    async with serving(app, sock):
        yield System(
            url,
            issuer,
            secrets.username,
            secrets.password,
            secrets.client_id,
            secrets.client_secret,
            web_secret,
            redirect_uri,
        )


async def test_a_person_signs_in_and_calls_the_api_with_the_access_token(system: System) -> None:
    verifier = new_verifier()
    web = AsyncOAuth2Client(
        "web", system.web_secret, redirect_uri=system.redirect_uri, scope="openid", code_challenge_method="S256"
    )
    authorize_url, state = web.create_authorization_url(f"{system.issuer}/authorize", code_verifier=verifier)

    async with httpx2.AsyncClient() as browser:
        form = read_form((await browser.get(authorize_url)).text)
        answer = await browser.post(
            form.action, data={**form.fields, "username": system.username, "password": system.password}
        )
    token = await web.fetch_token(
        f"{system.issuer}/token", authorization_response=answer.headers["location"], state=state, code_verifier=verifier
    )
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token['access_token']}"}) as api:
        me = await api.get(f"{system.url}/api/whoami")
        admin = await api.get(f"{system.url}/api/admin")
    await web.aclose()

    assert answer.status_code == 303 and "id_token" in token
    assert me.json() == {"subject": "admin", "org_id": "org-1", "roles": ["admin", "user"]}
    assert admin.status_code == 200


async def test_a_service_calls_the_api_with_client_credentials_but_is_no_admin(system: System) -> None:
    source = ServiceTokenSource(f"{system.issuer}/token", system.service_id, system.service_secret)

    async with httpx2.AsyncClient(auth=source.auth()) as api:
        me = await api.get(f"{system.url}/api/whoami")
        admin = await api.get(f"{system.url}/api/admin")

    assert me.json() == {"subject": system.service_id, "org_id": "org-1", "roles": ["service"]}
    assert admin.status_code == 403 and admin.json()["errors"][0]["id"] == "403"


async def test_without_a_token_the_api_answers_401_but_health_and_the_issuer_answer(system: System) -> None:
    async with httpx2.AsyncClient() as anonymous:
        me = await anonymous.get(f"{system.url}/api/whoami")
        health = await anonymous.get(f"{system.url}/health")
        discovery = await anonymous.get(f"{system.issuer}/.well-known/openid-configuration")

    assert me.status_code == 401 and me.json()["errors"][0]["reason"] == "a bearer token is required"
    assert health.status_code == 200
    assert discovery.json()["issuer"] == system.issuer
