"""BearerAuth and require_roles on a small Litestar app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, WebSocket, asgi, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.response.base import ASGIResponse
from litestar.testing import AsyncTestClient, TestClient
from litestar.types import Receive, Scope, Send

from services.identity.guards import IDENTITY_EXCEPTION_HANDLERS, BearerAuth, require_roles
from services.identity.principal import Principal
from services.identity.tokens import TokenValidator
from tests.unit.identity.forged_tokens import signed, valid_claims

pytestmark = pytest.mark.unit

ISSUER = "https://issuer.example"
KEY = RSAKey.generate_key(2048, auto_kid=True)


def token_with(roles: list[str], **claims: object) -> str:
    return signed(valid_claims(ISSUER, sub="ada", roles=roles, **claims), KEY)


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/public", opt={"exclude_from_auth": True}, sync_to_thread=False)
def public() -> str:
    return "anyone"


@get("/whoami", sync_to_thread=False)
def whoami(request: Request[Principal, str, Any]) -> dict[str, object]:
    return {
        "subject": request.user.subject,
        "org_id": request.user.org_id,
        "token_is_kept": request.auth.count(".") == 2,
    }


@get("/admin", guards=[require_roles("admin")], sync_to_thread=False)
def admin_only() -> str:
    return "admin"


@get("/events", guards=[require_roles("auditor", "admin")], sync_to_thread=False)
def event_log() -> str:
    return "events"


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    validator = TokenValidator(ISSUER, "image-builder", jwks=KeySet([KEY]))
    app = Litestar(
        [health, public, whoami, admin_only, event_log],
        middleware=[BearerAuth(validator)],
        exception_handlers=IDENTITY_EXCEPTION_HANDLERS,
    )
    async with AsyncTestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_puts_its_principal_on_the_request(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/whoami", headers=bearer(token_with(["user"])))

    assert response.status_code == 200
    assert response.json() == {"subject": "ada", "org_id": "org-a", "token_is_kept": True}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}], ids=["none", "basic", "empty"]
)
async def test_a_request_without_a_bearer_token_gets_401(
    client: AsyncTestClient[Litestar], headers: dict[str, str]
) -> None:
    response = await client.get("/whoami", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"errors": [{"id": "401", "reason": "a bearer token is required", "details": None}]}
    assert response.headers["www-authenticate"] == 'Bearer realm="image-builder"'


async def test_an_invalid_token_gets_401_with_the_reason(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/whoami", headers=bearer(token_with(["user"], aud="someone-else")))

    assert response.status_code == 401
    assert response.json()["errors"][0]["reason"] == "invalid token: the token is meant for another audience"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_missing_role_gets_403(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/admin", headers=bearer(token_with(["user", "auditor"])))

    assert response.status_code == 403
    assert response.json() == {
        "errors": [{"id": "403", "reason": "this needs one of the roles: admin", "details": None}]
    }


async def test_any_one_of_the_required_roles_is_enough(client: AsyncTestClient[Litestar]) -> None:
    as_auditor = await client.get("/events", headers=bearer(token_with(["auditor"])))
    as_admin = await client.get("/events", headers=bearer(token_with(["admin"])))

    assert (as_auditor.status_code, as_admin.status_code) == (200, 200)


async def test_health_and_routes_marked_public_need_no_token(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/public")).status_code == 200


async def test_a_role_guard_without_the_middleware_answers_401_not_500() -> None:
    app = Litestar([admin_only], exception_handlers=IDENTITY_EXCEPTION_HANDLERS)
    async with AsyncTestClient(app) as client:
        response = await client.get("/admin")

    assert response.status_code == 401 and response.json()["errors"][0]["id"] == "401"


async def test_an_unreachable_issuer_gets_503_not_401() -> None:
    validator = TokenValidator(ISSUER, "image-builder", jwks_url="http://127.0.0.1:9/jwks")
    app = Litestar([whoami], middleware=[BearerAuth(validator)])
    async with AsyncTestClient(app) as client:
        response = await client.get("/whoami", headers=bearer(token_with(["user"])))

    assert response.status_code == 503
    assert response.json()["errors"][0]["reason"] == "tokens cannot be checked right now"


def test_a_typo_in_a_required_role_fails_at_startup() -> None:
    with pytest.raises(ValueError, match="known roles"):
        require_roles("admni")  # type: ignore[arg-type]


async def test_a_mounted_apps_inner_health_path_is_not_mistaken_for_the_public_one() -> None:
    @asgi("/files", is_mount=True, copy_scope=True)
    async def files(scope: Scope, receive: Receive, send: Send) -> None:
        await ASGIResponse(body=b"secret artifact")(scope, receive, send)

    validator = TokenValidator(ISSUER, "image-builder", jwks=KeySet([KEY]))
    async with AsyncTestClient(Litestar([files], middleware=[BearerAuth(validator)])) as client:
        response = await client.get("/files/health")

    assert response.status_code == 401


def test_a_websocket_without_a_token_is_closed_before_it_is_accepted() -> None:
    @websocket("/ws")
    async def stream(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await socket.send_text("hello")

    validator = TokenValidator(ISSUER, "image-builder", jwks=KeySet([KEY]))
    with (
        TestClient(Litestar([stream], middleware=[BearerAuth(validator)])) as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws") as socket,
    ):
        socket.receive_text()

    assert closed.value.code == 1008
