"""When the validator goes back to the issuer for keys, and when it will not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey
from litestar import Litestar, get

from services.identity.issuer import create_issuer_app
from services.identity.signing_keys import SigningKeys
from services.identity.tokens import InvalidToken, IssuerUnavailable, TokenValidator
from tests.unit.identity.conftest import AUDIENCE, Accounts, FakeClock, RunningIssuer, issuer_config
from tests.unit.identity.forged_tokens import signed, valid_claims
from tests.servers.asgi import reserve_socket, serving

pytestmark = pytest.mark.unit


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=1000.0)


@pytest.fixture
def validator(issuer: RunningIssuer, clock: FakeClock) -> TokenValidator:
    return TokenValidator(issuer.url, AUDIENCE, jwks_url=f"{issuer.url}/jwks", refresh_interval=30, clock=clock)


async def test_a_rotated_signing_key_is_picked_up_with_one_fetch(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    await validator.validate(await issuer.client_credentials_token())
    issuer.keys.rotate()

    principal = await validator.validate(await issuer.client_credentials_token())

    assert principal.subject == "composer-client"
    assert issuer.requests.count("/jwks") == 2


async def test_tokens_signed_before_a_rotation_stay_valid(issuer: RunningIssuer, validator: TokenValidator) -> None:
    before = await issuer.client_credentials_token()
    issuer.keys.rotate()
    await validator.validate(await issuer.client_credentials_token())

    assert (await validator.validate(before)).subject == "composer-client"


async def test_unknown_kids_make_at_most_one_fetch_per_refresh_interval(
    issuer: RunningIssuer, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(await issuer.client_credentials_token())
    stranger = RSAKey.generate_key(2048)

    for attempt in range(5):
        token = signed(valid_claims(issuer.url), stranger, kid=f"garbage-{attempt}")
        with pytest.raises(InvalidToken, match="unknown key"):
            await validator.validate(token)
        clock.advance(5)

    assert issuer.requests.count("/jwks") == 2  # the first fetch, and one refresh


async def test_after_the_refresh_interval_an_unknown_kid_may_fetch_again(
    issuer: RunningIssuer, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(await issuer.client_credentials_token())
    garbage = signed(valid_claims(issuer.url), RSAKey.generate_key(2048), kid="garbage")
    with pytest.raises(InvalidToken):
        await validator.validate(garbage)

    clock.advance(31)
    issuer.keys.rotate()

    assert (await validator.validate(await issuer.client_credentials_token())).subject == "composer-client"
    assert issuer.requests.count("/jwks") == 3


async def test_a_rotation_inside_the_interval_after_a_garbage_kid_waits_for_the_interval(
    issuer: RunningIssuer, validator: TokenValidator, clock: FakeClock
) -> None:
    await validator.validate(await issuer.client_credentials_token())
    with pytest.raises(InvalidToken):
        await validator.validate(signed(valid_claims(issuer.url), RSAKey.generate_key(2048), kid="garbage"))
    issuer.keys.rotate()
    rotated = await issuer.client_credentials_token()

    with pytest.raises(InvalidToken, match="unknown key"):
        await validator.validate(rotated)
    clock.advance(30)
    assert (await validator.validate(rotated)).subject == "composer-client"


async def test_concurrent_unknown_kids_share_one_fetch(issuer: RunningIssuer, validator: TokenValidator) -> None:
    await validator.validate(await issuer.client_credentials_token())
    stranger = RSAKey.generate_key(2048)
    tokens = [signed(valid_claims(issuer.url), stranger, kid=f"garbage-{n}") for n in range(10)]

    results = await asyncio.gather(*(validator.validate(token) for token in tokens), return_exceptions=True)

    assert all(isinstance(result, InvalidToken) for result in results)
    assert issuer.requests.count("/jwks") == 2


async def test_an_unreachable_issuer_is_unavailable_rather_than_the_token_invalid(issuer: RunningIssuer) -> None:
    sock, nobody = reserve_socket()
    sock.close()  # nothing listens there
    validator = TokenValidator(nobody, AUDIENCE)

    with pytest.raises(IssuerUnavailable, match="could not fetch"):
        await validator.validate(await issuer.client_credentials_token())


async def test_an_issuer_outage_does_not_drop_the_keys_already_fetched(
    tmp_path: Path, accounts: Accounts, clock: FakeClock
) -> None:
    sock, url = reserve_socket()
    config = issuer_config(url, tmp_path, accounts)
    keys = SigningKeys(config.key_file)
    validator = TokenValidator(url, AUDIENCE, refresh_interval=30, clock=clock)
    token = signed(valid_claims(url), keys.current)
    async with serving(create_issuer_app(config, signing_keys=keys), sock):
        await validator.validate(token)

    clock.advance(4000)  # the keys are stale, a refetch is due, and the issuer is gone

    assert (await validator.validate(token)).subject == "someone"


async def test_a_discovery_document_naming_another_issuer_is_not_trusted() -> None:
    @get("/.well-known/openid-configuration", sync_to_thread=False)
    def lying_discovery() -> dict[str, str]:
        return {"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}

    sock, url = reserve_socket()
    async with serving(Litestar([lying_discovery]), sock):
        validator = TokenValidator(url, AUDIENCE)
        with pytest.raises(IssuerUnavailable, match=r"names issuer 'https://evil\.example'"):
            await validator.validate(signed(valid_claims(url), RSAKey.generate_key(2048, auto_kid=True)))
