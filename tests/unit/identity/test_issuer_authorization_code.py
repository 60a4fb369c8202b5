"""People signing in: the authorization code flow with PKCE on the built-in issuer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from joserfc import jwt
from litestar.testing import AsyncTestClient

from services.identity.issuer import create_issuer_app
from services.identity.tokens import TokenValidator
from tests.unit.identity.browser import authorization_params, new_verifier, read_form, redirect_query, sign_in
from tests.unit.identity.conftest import AUDIENCE, REDIRECT_URI, Accounts, FakeClock, RunningIssuer, issuer_config

pytestmark = pytest.mark.unit


@pytest.fixture
async def browser() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as http:
        yield http


async def signed_in_code(
    issuer: RunningIssuer, browser: httpx2.AsyncClient, verifier: str, **extra: str
) -> tuple[str, dict[str, str]]:
    params = authorization_params("web", REDIRECT_URI, verifier, **extra)
    answer = await sign_in(browser, f"{issuer.url}/authorize", params, "ada", issuer.secrets["ada"])
    assert answer.status_code == 303, answer.text
    query = redirect_query(answer)
    assert query["state"] == params["state"]
    return query["code"], query


async def exchange(
    issuer: RunningIssuer, code: str, verifier: str, redirect_uri: str = REDIRECT_URI
) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(
            f"{issuer.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=("web", issuer.secrets["web"]),
        )


async def test_the_sign_in_form_is_labelled_and_carries_a_csrf_token(
    issuer: RunningIssuer, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(
        f"{issuer.url}/authorize", params=authorization_params("web", REDIRECT_URI, new_verifier())
    )

    form = read_form(page.text)
    assert page.status_code == 200 and '<html lang="en">' in page.text
    assert form.action == f"{issuer.url}/authorize"
    assert form.fields["csrf_token"] == browser.cookies["issuer_csrf"]
    assert {field["name"] for field in form.visible_inputs} == {"username", "password"}
    assert all(field["id"] in form.labelled_ids for field in form.visible_inputs)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_signing_in_and_exchanging_the_code_with_the_verifier_gives_the_users_tokens(
    issuer: RunningIssuer, browser: httpx2.AsyncClient
) -> None:
    verifier = new_verifier()
    code, query = await signed_in_code(issuer, browser, verifier, nonce="n-0S6")

    response = await exchange(issuer, code, verifier)

    body = response.json()
    principal = await TokenValidator(issuer.url, AUDIENCE).validate(body["access_token"])
    id_claims = jwt.decode(body["id_token"], issuer.keys.current).claims
    assert query["iss"] == issuer.url
    assert (principal.subject, principal.org_id, principal.roles, principal.client_id) == (
        "ada", "org-a", frozenset({"user", "admin"}), "web",
    )  # fmt: skip
    assert (id_claims["aud"], id_claims["sub"], id_claims["nonce"]) == ("web", "ada", "n-0S6")


async def test_a_wrong_verifier_is_refused(issuer: RunningIssuer, browser: httpx2.AsyncClient) -> None:
    code, _ = await signed_in_code(issuer, browser, new_verifier())

    response = await exchange(issuer, code, new_verifier())

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def test_a_code_works_only_once(issuer: RunningIssuer, browser: httpx2.AsyncClient) -> None:
    verifier = new_verifier()
    code, _ = await signed_in_code(issuer, browser, verifier)
    assert (await exchange(issuer, code, verifier)).status_code == 200

    again = await exchange(issuer, code, verifier)

    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


async def test_a_code_is_bound_to_its_redirect_uri(issuer: RunningIssuer, browser: httpx2.AsyncClient) -> None:
    verifier = new_verifier()
    code, _ = await signed_in_code(issuer, browser, verifier)

    response = await exchange(issuer, code, verifier, redirect_uri="http://127.0.0.1:9/other")

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def test_a_code_is_bound_to_its_client(
    issuer: RunningIssuer, browser: httpx2.AsyncClient, accounts: Accounts
) -> None:
    verifier = new_verifier()
    code, _ = await signed_in_code(issuer, browser, verifier)

    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{issuer.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=("composer-client", issuer.secrets["composer-client"]),
        )

    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")


async def test_an_expired_code_is_refused(tmp_path: Path, accounts: Accounts) -> None:
    clock = FakeClock()
    url = "http://testserver.local"
    app = create_issuer_app(issuer_config(url, tmp_path, accounts, code_lifetime=60), clock=clock)
    verifier = new_verifier()
    async with AsyncTestClient(app, base_url=url) as client:
        page = await client.get("/authorize", params=authorization_params("web", REDIRECT_URI, verifier))
        form = read_form(page.text)
        answer = await client.post(
            "/authorize",
            data={**form.fields, "username": "bob", "password": accounts.secrets["bob"]},
            follow_redirects=False,
        )
        code = redirect_query(answer)["code"]  # type: ignore[arg-type]
        clock.advance(61)
        response = await client.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=("web", accounts.secrets["web"]),
        )

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "override",
    [{"redirect_uri": "https://evil.example/steal"}, {"client_id": "nobody"}, {"redirect_uri": ""}],
    ids=["unregistered redirect_uri", "unknown client", "no redirect_uri"],
)
async def test_an_untrusted_redirect_is_an_error_page_never_a_redirect(
    issuer: RunningIssuer, browser: httpx2.AsyncClient, override: dict[str, str]
) -> None:
    params = {**authorization_params("web", REDIRECT_URI, new_verifier()), **override}

    page = await browser.get(f"{issuer.url}/authorize", params=params)

    assert page.status_code == 400 and "location" not in page.headers
    assert "evil.example" not in page.text and 'role="alert"' in page.text


async def test_a_forged_post_with_an_unregistered_redirect_is_an_error_page(
    issuer: RunningIssuer, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(
        f"{issuer.url}/authorize", params=authorization_params("web", REDIRECT_URI, new_verifier())
    )
    fields = {**read_form(page.text).fields, "redirect_uri": "https://evil.example/steal"}

    answer = await browser.post(
        f"{issuer.url}/authorize", data={**fields, "username": "ada", "password": issuer.secrets["ada"]}
    )

    assert answer.status_code == 400 and "location" not in answer.headers


@pytest.mark.parametrize(
    "override, error",
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
    ids=["plain PKCE", "no PKCE", "implicit flow"],
)
async def test_a_bad_request_from_a_known_client_is_sent_back_to_it_as_an_error(
    issuer: RunningIssuer, browser: httpx2.AsyncClient, override: dict[str, str], error: str
) -> None:
    params = {**authorization_params("web", REDIRECT_URI, new_verifier()), **override}

    answer = await browser.get(f"{issuer.url}/authorize", params=params)

    assert answer.status_code == 303 and answer.headers["location"].startswith(REDIRECT_URI)
    assert redirect_query(answer)["error"] == error and redirect_query(answer)["state"] == params["state"]


async def test_a_wrong_password_shows_the_form_again_with_the_error(
    issuer: RunningIssuer, browser: httpx2.AsyncClient
) -> None:
    params = authorization_params("web", REDIRECT_URI, new_verifier())

    answer = await sign_in(browser, f"{issuer.url}/authorize", params, "ada", "not her password")

    assert answer.status_code == 400 and "location" not in answer.headers
    assert "Wrong username or password." in answer.text and 'aria-invalid="true"' in answer.text
    assert read_form(answer.text).fields["username"] == "ada"


async def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(
    issuer: RunningIssuer, browser: httpx2.AsyncClient
) -> None:
    params = authorization_params("web", REDIRECT_URI, new_verifier())

    answer = await sign_in(browser, f"{issuer.url}/authorize", params, "mallory", "guess")

    assert answer.status_code == 400 and "Wrong username or password." in answer.text


async def test_a_sign_in_post_without_the_csrf_cookie_is_refused(
    issuer: RunningIssuer, browser: httpx2.AsyncClient
) -> None:
    page = await browser.get(
        f"{issuer.url}/authorize", params=authorization_params("web", REDIRECT_URI, new_verifier())
    )
    fields = read_form(page.text).fields

    # A cross-site form post: the attacker's page has the fields, not the cookie.
    async with httpx2.AsyncClient() as attacker:
        answer = await attacker.post(
            f"{issuer.url}/authorize", data={**fields, "username": "ada", "password": issuer.secrets["ada"]}
        )

    assert answer.status_code == 403 and "location" not in answer.headers
    assert "expired" in answer.text
