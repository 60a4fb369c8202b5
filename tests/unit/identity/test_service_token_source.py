"""ServiceTokenSource: client-credentials tokens, fetched rarely."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from litestar import Litestar, Request, get

from services.identity.client import ServiceTokenSource, ServiceTokenUnavailable
from services.identity.guards import BearerAuth
from services.identity.principal import Principal
from services.identity.tokens import TokenValidator
from tests.unit.identity.conftest import AUDIENCE, FakeClock, RunningIssuer
from tests.servers.asgi import reserve_socket, serving

pytestmark = pytest.mark.unit


def source_for(
    issuer: RunningIssuer, clock: FakeClock, client_id: str = "composer-client", **options: Any
) -> ServiceTokenSource:
    return ServiceTokenSource(f"{issuer.url}/token", client_id, issuer.secrets[client_id], clock=clock, **options)


async def test_the_token_is_a_valid_token_for_the_client(issuer: RunningIssuer) -> None:
    source = source_for(issuer, FakeClock())

    principal = await TokenValidator(issuer.url, AUDIENCE).validate(await source.token())

    assert (principal.subject, principal.roles) == ("composer-client", frozenset({"service"}))


async def test_a_second_call_reuses_the_token_without_asking_the_issuer(issuer: RunningIssuer) -> None:
    source = source_for(issuer, FakeClock())

    first = await source.token()
    second = await source.token()

    assert first == second
    assert issuer.requests.count("/token") == 1


async def test_a_token_is_fetched_again_shortly_before_it_expires(issuer: RunningIssuer) -> None:
    clock = FakeClock()
    source = source_for(issuer, clock, refresh_margin=30)
    first = await source.token()

    clock.advance(900 - 31)
    assert await source.token() == first
    clock.advance(1)
    renewed = await source.token()

    assert renewed != first
    assert issuer.requests.count("/token") == 2


async def test_the_requested_audience_is_in_the_token(issuer: RunningIssuer) -> None:
    source = source_for(issuer, FakeClock(), audience="composer")

    principal = await TokenValidator(issuer.url, "composer").validate(await source.token())

    assert principal.subject == "composer-client"


async def test_a_wrong_secret_is_reported_as_unavailable_with_the_issuers_error(issuer: RunningIssuer) -> None:
    source = ServiceTokenSource(f"{issuer.url}/token", "composer-client", "wrong")

    with pytest.raises(ServiceTokenUnavailable, match="invalid_client"):
        await source.token()


async def test_an_unreachable_issuer_is_reported_as_unavailable() -> None:
    source = ServiceTokenSource("http://127.0.0.1:9/token", "composer-client", "secret", timeout=2)

    with pytest.raises(ServiceTokenUnavailable, match="could not get a token"):
        await source.token()


async def test_the_auth_sends_the_token_and_retries_once_with_a_fresh_one_after_a_401(issuer: RunningIssuer) -> None:
    @get("/whoami", sync_to_thread=False)
    def whoami(request: Request[Principal, str, Any]) -> str:
        return request.user.subject

    validator = TokenValidator(issuer.url, AUDIENCE)
    sock, url = reserve_socket()
    source = source_for(issuer, FakeClock())
    stale = await source.token()
    issuer.keys.rotate()
    issuer.keys.rotate()  # the key that signed the cached token is no longer published

    async with (
        serving(Litestar([whoami], middleware=[BearerAuth(validator)]), sock),
        httpx2.AsyncClient(auth=source.auth()) as http,
    ):
        response = await http.get(f"{url}/whoami")

    assert (response.status_code, response.text) == (200, "composer-client")
    assert await source.token() != stale
