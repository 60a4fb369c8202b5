"""A small built-in OpenID Connect issuer, so the embedded mode runs the same
sign-in and token code paths as a deployment behind a real identity provider.

Flows: client credentials (services calling services) and authorization code
with PKCE S256 (people signing in). Nothing else: no implicit flow, no
password grant, no dynamic registration. It only exists when configured:
``create_issuer_app`` needs an IssuerConfig.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode, urlsplit

from litestar import Litestar, Request, Response, asgi, get, post
from litestar.datastructures import Cookie, FormMultiDict, MultiDict
from litestar.enums import MediaType
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from services.identity.authorization_codes import CHALLENGE_PATTERN, AuthorizationCodes, AuthorizationGrant
from services.identity.config import ClientRegistration, IssuerConfig
from services.identity.login_page import error_page, login_page
from services.identity.passwords import burn_verification_time, verify_secret
from services.identity.signing_keys import ALGORITHM, SigningKeys
from services.identity.token_endpoint import OAuthError, TokenEndpoint
from services.logs import log_unhandled

AUTHORIZATION_PARAMETERS = (
    "response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope", "nonce",
)  # fmt: skip
CSRF_COOKIE = "issuer_csrf"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The sign-in page must not be framed (clickjacking) and needs nothing external.
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class _RefusedRequest(Exception):
    """The client or redirect URI cannot be trusted: show a page, never redirect
    (RFC 6749 section 4.1.2.1), or the issuer becomes an open redirector."""


class _RedirectedError(Exception):
    """An error the client should hear about, at its verified redirect URI."""

    def __init__(self, location: str) -> None:
        self.location = location


def create_issuer_app(
    config: IssuerConfig, *, signing_keys: SigningKeys | None = None, clock: Callable[[], float] = time.time
) -> Litestar:
    keys = signing_keys or SigningKeys(config.key_file)
    codes = AuthorizationCodes(config.code_lifetime, clock)
    tokens = TokenEndpoint(config, keys, codes, clock)
    base = config.issuer
    issuer_path = urlsplit(base).path
    secure_cookies = base.startswith("https://")

    @get("/.well-known/openid-configuration", sync_to_thread=False)
    def discovery() -> dict[str, object]:
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "org_id", "roles", "preferred_username"],
            "authorization_response_iss_parameter_supported": True,
        }

    @get("/jwks", sync_to_thread=False)
    def jwks() -> dict[str, list[dict[str, object]]]:
        return keys.public_jwks()

    @post("/token")
    async def token(request: Request) -> Response:
        form = _single_values(await request.form(), OAuthError("invalid_request", "a parameter is repeated"))
        body = await tokens.respond(form, request.headers.get("authorization"))
        return Response(body, status_code=200, headers=NO_STORE)

    @get("/authorize")
    async def authorize_form(request: Request) -> Response:
        try:
            params = _single_values(request.query_params, _RefusedRequest("a parameter is repeated"))
            client = _check_authorization_request(params)
        except _RefusedRequest as refused:
            return _page(error_page("Sign-in request refused", str(refused)), 400)
        except _RedirectedError as error:
            return _redirect(error.location)
        return sign_in_page(params, client, 200)

    @post("/authorize")
    async def sign_in(request: Request) -> Response:
        try:
            form = _single_values(await request.form(), _RefusedRequest("a parameter is repeated"))
            client = _check_authorization_request(form)
        except _RefusedRequest as refused:
            return _page(error_page("Sign-in request refused", str(refused)), 400)
        except _RedirectedError as error:
            return _redirect(error.location)
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, form.get("csrf_token", "")):
            return sign_in_page(form, client, 403, error="This sign-in form expired. Please sign in again.")
        username = form.get("username", "")
        user = tokens.users.get(username)
        password = form.get("password", "")
        if user is None:
            await asyncio.to_thread(burn_verification_time, password)
        if user is None or not await asyncio.to_thread(verify_secret, password, user.password_hash):
            return sign_in_page(form, client, 400, error="Wrong username or password.")
        grant = AuthorizationGrant(
            client_id=client.client_id,
            redirect_uri=form["redirect_uri"],
            code_challenge=form["code_challenge"],
            username=user.username,
            scope=form.get("scope", ""),
            nonce=form.get("nonce"),
            auth_time=int(clock()),
        )
        location = _with_query(form["redirect_uri"], code=codes.issue(grant), state=form.get("state"), iss=base)
        response = _redirect(location)
        response.delete_cookie(CSRF_COOKIE, path=f"{issuer_path}/authorize")
        return response

    def sign_in_page(
        params: Mapping[str, str], client: ClientRegistration, status: int, error: str | None = None
    ) -> Response:
        # Double-submit cookie: a cross-site form post cannot read the cookie,
        # so it cannot echo the token (OWASP CSRF cheat sheet); SameSite=Strict
        # keeps the cookie off cross-site posts in the first place.
        csrf_token = secrets.token_urlsafe(32)
        hidden = {name: params[name] for name in AUTHORIZATION_PARAMETERS if params.get(name)}
        html = login_page(
            action=f"{base}/authorize",
            client_id=client.client_id,
            hidden={**hidden, "csrf_token": csrf_token},
            username=params.get("username", ""),
            error=error,
        )
        cookie = Cookie(
            key=CSRF_COOKIE,
            value=csrf_token,
            path=f"{issuer_path}/authorize",
            httponly=True,
            secure=secure_cookies,
            samesite="strict",
            max_age=3600,
        )
        return _page(html, status, cookies=[cookie])

    def _check_authorization_request(params: Mapping[str, str]) -> ClientRegistration:
        client = tokens.clients.get(params.get("client_id", ""))
        if client is None:
            raise _RefusedRequest("The application asking you to sign in is not known here.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise _RefusedRequest("The application asked to send you to an address it has not registered.")

        def refuse(error: str, description: str) -> _RedirectedError:
            location = _with_query(
                redirect_uri, error=error, error_description=description, state=params.get("state"), iss=base
            )
            return _RedirectedError(location)

        if "authorization_code" not in client.grant_types:
            raise refuse("unauthorized_client", "this client may not use the authorization code flow")
        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "only response_type=code is supported")
        if params.get("code_challenge_method") != "S256" or not CHALLENGE_PATTERN.fullmatch(
            params.get("code_challenge", "")
        ):
            raise refuse("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        return client

    return Litestar(
        route_handlers=[discovery, jwks, token, authorize_form, sign_in],
        exception_handlers={OAuthError: _oauth_error_response},
        after_exception=[log_unhandled({OAuthError: _oauth_error_response})],
        openapi_config=None,
    )


def mount_issuer(
    config: IssuerConfig, *, signing_keys: SigningKeys | None = None, clock: Callable[[], float] = time.time
) -> ASGIRouteHandler:
    """The issuer as a route handler for a bigger app, mounted at the path of
    its own URL (``.../oidc`` -> ``/oidc``), so served and advertised URLs
    cannot disagree."""
    issuer_app = create_issuer_app(config, signing_keys=signing_keys, clock=clock)

    # Public by nature: BearerAuth lets handlers with this opt through.
    @asgi(urlsplit(config.issuer).path or "/", is_mount=True, copy_scope=True, opt={"exclude_from_auth": True})
    async def issuer(scope: Scope, receive: Receive, send: Send) -> None:
        await issuer_app(scope, receive, send)

    return issuer


def _single_values(values: FormMultiDict | MultiDict[str], error: Exception) -> dict[str, str]:
    """RFC 6749 section 3.1: parameters must not be repeated; a repeated one
    could mean different things to different components."""
    result: dict[str, str] = {}
    for name, value in values.multi_items():
        if name in result:
            raise error
        result[name] = value if isinstance(value, str) else ""
    return result


def _with_query(uri: str, **params: str | None) -> str:
    query = urlencode({name: value for name, value in params.items() if value is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def _redirect(location: str) -> Response:
    # 303: the browser follows with a GET, never re-posting the password.
    return Response(b"", status_code=303, headers={**NO_STORE, "Location": location})


def _page(html: str, status: int, cookies: list[Cookie] | None = None) -> Response:
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=PAGE_HEADERS, cookies=cookies)


def _oauth_error_response(_: Request, error: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if error.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="image-builder issuer"'
    body = {"error": error.error, "error_description": error.description}
    return Response(body, status_code=error.status_code, headers=headers)
