"""TokenValidator against a real issuer: what it accepts and what it refuses."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import KeySet, RSAKey

from services.identity.principal import Principal
from services.identity.tokens import InvalidToken, TokenValidator
from tests.unit.identity.conftest import AUDIENCE, RunningIssuer
from tests.unit.identity.forged_tokens import b64url, hmac_with_public_key, signed, unsecured, valid_claims

pytestmark = pytest.mark.unit


@pytest.fixture
def validator(issuer: RunningIssuer) -> TokenValidator:
    # Only the issuer URL: the JWKS location comes from discovery over HTTP.
    return TokenValidator(issuer.url, AUDIENCE)


async def refusal(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        await validator.validate(token)
    return refused.value.reason


async def test_a_client_credentials_token_validates_to_the_clients_principal(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    token = await issuer.client_credentials_token("composer-client")

    principal = await validator.validate(token)

    assert principal == Principal(
        subject="composer-client", org_id="org-services", roles=frozenset({"service"}), client_id="composer-client"
    )
    assert principal.has_role("service") and not principal.has_role("admin")


async def test_the_validator_finds_the_keys_through_the_discovery_document(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    await validator.validate(await issuer.client_credentials_token())

    assert issuer.requests.count("/.well-known/openid-configuration") == 1
    assert issuer.requests.count("/jwks") == 1


async def test_keys_are_cached_across_validations(issuer: RunningIssuer, validator: TokenValidator) -> None:
    for _ in range(3):
        await validator.validate(await issuer.client_credentials_token())

    assert issuer.requests.count("/jwks") == 1


async def test_a_token_signed_by_another_key_is_refused(issuer: RunningIssuer, validator: TokenValidator) -> None:
    impostor = RSAKey.generate_key(2048)
    # Claims the issuer's kid, so the issuer's key is the one tried.
    token = signed(valid_claims(issuer.url), impostor, kid=issuer.keys.current.kid)

    assert await refusal(validator, token) == "the signature does not verify"


async def test_a_token_for_another_audience_is_refused(issuer: RunningIssuer, validator: TokenValidator) -> None:
    token = await issuer.client_credentials_token(audience="composer")

    assert await refusal(validator, token) == "the token is meant for another audience"


async def test_a_token_from_another_issuer_is_refused(issuer: RunningIssuer, validator: TokenValidator) -> None:
    token = signed(valid_claims("https://elsewhere.example"), issuer.keys.current)

    assert await refusal(validator, token) == "the token was issued by another issuer"


async def test_an_expired_token_is_refused(issuer: RunningIssuer, validator: TokenValidator) -> None:
    an_hour_ago = int(time.time()) - 3600
    token = signed(
        valid_claims(issuer.url, iat=an_hour_ago, nbf=an_hour_ago, exp=an_hour_ago + 900), issuer.keys.current
    )

    assert await refusal(validator, token) == "the token has expired"


async def test_expiry_within_the_leeway_is_forgiven_for_clock_skew(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    just_expired = int(time.time()) - 5
    token = signed(
        valid_claims(issuer.url, iat=just_expired - 60, nbf=just_expired - 60, exp=just_expired), issuer.keys.current
    )

    assert (await validator.validate(token)).subject == "someone"


async def test_a_token_not_yet_valid_is_refused(issuer: RunningIssuer, validator: TokenValidator) -> None:
    in_an_hour = int(time.time()) + 3600
    token = signed(valid_claims(issuer.url, nbf=in_an_hour, exp=in_an_hour + 900), issuer.keys.current)

    assert await refusal(validator, token) == "the token is not valid yet"


async def test_an_unsigned_alg_none_token_is_refused(issuer: RunningIssuer, validator: TokenValidator) -> None:
    token = unsecured(valid_claims(issuer.url), kid=issuer.keys.current.kid)

    assert await refusal(validator, token) == "algorithm 'none' is not accepted; accepted: RS256, ES256"


async def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    token = hmac_with_public_key(valid_claims(issuer.url), issuer.keys.current)

    assert await refusal(validator, token) == "algorithm 'HS256' is not accepted; accepted: RS256, ES256"


async def test_an_allowed_algorithm_that_does_not_fit_the_key_is_refused(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    header = b64url(b'{"alg":"ES256","kid":"%s"}' % str(issuer.keys.current.kid).encode())
    token = f"{header}.{b64url(b'{}')}.{b64url(b'x' * 64)}"

    assert (await refusal(validator, token)).startswith("malformed token")


@pytest.mark.parametrize("missing", ["sub", "exp", "iss", "aud", "org_id"])
async def test_a_token_without_a_required_claim_is_refused(
    issuer: RunningIssuer, validator: TokenValidator, missing: str
) -> None:
    token = signed(valid_claims(issuer.url, **{missing: None}), issuer.keys.current)

    assert await refusal(validator, token) == f"the token lacks required claims: {missing}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "two.parts",
        "four.dot.separated.parts",
        "!!!.e30.sig",
        b64url(b"[1, 2]") + ".e30.sig",
        b64url(b'{"alg": "RS256", "kid": 7}') + ".e30.sig",
        "x" * 20_000,
    ],
    ids=[
        "empty",
        "one part",
        "two parts",
        "four parts",
        "bad base64",
        "header not an object",
        "kid not a string",
        "huge",
    ],
)
async def test_a_malformed_token_is_refused(token: str) -> None:
    validator = TokenValidator(
        "https://issuer.example", AUDIENCE, jwks=KeySet([RSAKey.generate_key(2048, auto_kid=True)])
    )

    assert (await refusal(validator, token)).startswith("malformed token")


async def test_a_token_with_a_signed_but_unparseable_payload_is_refused(
    issuer: RunningIssuer, validator: TokenValidator
) -> None:
    from joserfc import jws

    token = jws.serialize_compact({"alg": "RS256", "kid": issuer.keys.current.kid}, b"not json", issuer.keys.current)

    assert (await refusal(validator, token)).startswith("malformed token")


async def test_roles_the_service_does_not_know_are_ignored(issuer: RunningIssuer, validator: TokenValidator) -> None:
    claims = valid_claims(issuer.url, roles=["auditor", "offline_access", "uma_authorization"])

    principal = await validator.validate(signed(claims, issuer.keys.current))

    assert principal.roles == frozenset({"auditor"})


async def test_org_and_roles_can_come_from_other_claims_such_as_keycloaks(issuer: RunningIssuer) -> None:
    validator = TokenValidator(issuer.url, AUDIENCE, org_claim="tenant", roles_claim="realm_access.roles")
    claims = valid_claims(issuer.url, org_id=None, roles=None, tenant="org-k", realm_access={"roles": ["admin", "x"]})

    principal = await validator.validate(signed(claims, issuer.keys.current))

    assert (principal.org_id, principal.roles) == ("org-k", frozenset({"admin"}))


async def test_roles_may_be_a_space_separated_string(issuer: RunningIssuer, validator: TokenValidator) -> None:
    principal = await validator.validate(signed(valid_claims(issuer.url, roles="user auditor"), issuer.keys.current))

    assert principal.roles == frozenset({"user", "auditor"})


def test_shared_secret_algorithms_cannot_be_allowed() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        TokenValidator("https://issuer.example", AUDIENCE, algorithms=("RS256", "HS256"))
