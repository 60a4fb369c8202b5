"""The built-in issuer's discovery, keys and client-credentials grant."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from litestar import Litestar
from litestar.testing import AsyncTestClient

from services.identity.issuer import mount_issuer
from services.identity.signing_keys import SigningKeys
from tests.unit.identity.conftest import AUDIENCE, Accounts, RunningIssuer, issuer_config

pytestmark = pytest.mark.unit


async def post_token(issuer: RunningIssuer, **kwargs: object) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(f"{issuer.url}/token", **kwargs)  # type: ignore[arg-type]


async def test_the_discovery_document_names_the_configured_issuer_and_its_endpoints(issuer: RunningIssuer) -> None:
    async with httpx2.AsyncClient() as http:
        document = (await http.get(f"{issuer.url}/.well-known/openid-configuration")).json()

    assert document["issuer"] == issuer.url
    assert document["jwks_uri"] == f"{issuer.url}/jwks"
    assert document["token_endpoint"] == f"{issuer.url}/token"
    assert document["authorization_endpoint"] == f"{issuer.url}/authorize"
    assert document["code_challenge_methods_supported"] == ["S256"]


async def test_mounted_under_a_prefix_the_issuer_serves_and_names_its_prefixed_urls(
    tmp_path: Path, accounts: Accounts
) -> None:
    url = "http://testserver.local/oidc"
    app = Litestar([mount_issuer(issuer_config(url, tmp_path, accounts))])

    async with AsyncTestClient(app) as client:
        document = (await client.get("/oidc/.well-known/openid-configuration")).json()
        jwks = (await client.get("/oidc/jwks")).json()
        token = await client.post(
            "/oidc/token",
            data={"grant_type": "client_credentials"},
            auth=("composer-client", accounts.secrets["composer-client"]),
        )

    assert document["issuer"] == url and document["jwks_uri"] == f"{url}/jwks"
    assert len(jwks["keys"]) == 1
    assert jwt.decode(token.json()["access_token"], KeySet.import_key_set(jwks)).claims["iss"] == url


async def test_the_jwks_publishes_the_public_key_under_its_thumbprint(issuer: RunningIssuer) -> None:
    async with httpx2.AsyncClient() as http:
        (published,) = (await http.get(f"{issuer.url}/jwks")).json()["keys"]

    assert published["kid"] == issuer.keys.current.thumbprint()
    assert published["kty"] == "RSA" and published["alg"] == "RS256" and published["use"] == "sig"
    assert "d" not in published and "p" not in published


def test_the_signing_key_survives_a_restart_and_is_private_to_the_owner(tmp_path: Path) -> None:
    first = SigningKeys(tmp_path / "keys.json")

    again = SigningKeys(tmp_path / "keys.json")

    assert again.current.kid == first.current.kid
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_after_a_rotation_the_new_key_signs_the_previous_one_stays_published_and_older_ones_retire(
    tmp_path: Path,
) -> None:
    keys = SigningKeys(tmp_path / "keys.json")
    old = keys.current.kid

    new = keys.rotate().kid
    newest = keys.rotate().kid

    published = [key["kid"] for key in SigningKeys(tmp_path / "keys.json").public_jwks()["keys"]]
    assert keys.current.kid == newest
    assert published == [new, newest] and old not in published


async def test_a_client_credentials_token_carries_the_clients_identity(issuer: RunningIssuer) -> None:
    response = await post_token(
        issuer, data={"grant_type": "client_credentials"}, auth=("composer-client", issuer.secrets["composer-client"])
    )

    body = response.json()
    claims = jwt.decode(body["access_token"], issuer.keys.current).claims
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert claims["sub"] == claims["client_id"] == "composer-client"
    assert (claims["org_id"], claims["roles"], claims["aud"], claims["iss"]) == (
        "org-services",
        ["service"],
        AUDIENCE,
        issuer.url,
    )
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"] and claims["jti"]


async def test_client_secret_post_authenticates_too(issuer: RunningIssuer) -> None:
    response = await post_token(
        issuer,
        data={"grant_type": "client_credentials", "client_id": "worker-1", "client_secret": issuer.secrets["worker-1"]},
    )

    assert response.status_code == 200
    assert jwt.decode(response.json()["access_token"], issuer.keys.current).claims["roles"] == ["worker"]


async def test_a_client_may_ask_for_another_configured_audience(issuer: RunningIssuer) -> None:
    token = await issuer.client_credentials_token(audience="composer")

    assert jwt.decode(token, issuer.keys.current).claims["aud"] == "composer"


async def test_an_unknown_audience_is_refused(issuer: RunningIssuer) -> None:
    response = await post_token(
        issuer,
        data={"grant_type": "client_credentials", "audience": "billing"},
        auth=("composer-client", issuer.secrets["composer-client"]),
    )

    assert (response.status_code, response.json()["error"]) == (400, "invalid_target")


@pytest.mark.parametrize(
    "client_id, secret",
    [("composer-client", "wrong"), ("nobody", "whatever"), ("composer-client", "")],
    ids=["wrong secret", "unknown client", "empty secret"],
)
async def test_a_client_that_fails_to_authenticate_gets_invalid_client(
    issuer: RunningIssuer, client_id: str, secret: str
) -> None:
    response = await post_token(issuer, data={"grant_type": "client_credentials"}, auth=(client_id, secret))

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "client authentication failed"}
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_request_without_client_credentials_gets_invalid_client(issuer: RunningIssuer) -> None:
    response = await post_token(issuer, data={"grant_type": "client_credentials"})

    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_malformed_basic_credentials_get_invalid_client(issuer: RunningIssuer) -> None:
    garbage = base64.b64encode(b"no-colon-here").decode()
    response = await post_token(
        issuer, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {garbage}"}
    )

    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_two_authentication_methods_at_once_are_an_invalid_request(issuer: RunningIssuer) -> None:
    secret = issuer.secrets["composer-client"]
    response = await post_token(
        issuer, data={"grant_type": "client_credentials", "client_secret": secret}, auth=("composer-client", secret)
    )

    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_a_grant_the_client_is_not_registered_for_is_unauthorized_client(issuer: RunningIssuer) -> None:
    response = await post_token(issuer, data={"grant_type": "client_credentials"}, auth=("web", issuer.secrets["web"]))

    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")


async def test_an_unknown_grant_type_is_unsupported(issuer: RunningIssuer) -> None:
    response = await post_token(
        issuer, data={"grant_type": "password"}, auth=("composer-client", issuer.secrets["composer-client"])
    )

    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


async def test_a_repeated_parameter_is_an_invalid_request(issuer: RunningIssuer) -> None:
    response = await post_token(
        issuer,
        content=b"grant_type=client_credentials&grant_type=authorization_code",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=("composer-client", issuer.secrets["composer-client"]),
    )

    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
