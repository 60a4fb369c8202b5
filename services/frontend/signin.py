"""Signing in through the OpenID Connect issuer: authorization code with PKCE (RFC 7636).

``/signin`` keeps a random ``state`` and a PKCE verifier in the session and
sends the browser to the issuer's authorization endpoint (found by OIDC
discovery) with the verifier's S256 challenge. The issuer sends it back to
``/auth/callback`` with a code; the frontend checks the state (and the
issuer, RFC 9207), redeems the code at the token endpoint with the verifier
(and its client secret, if it has one), and validates the access token
exactly as the backend will before it remembers the user. The code travels
through the browser, but without the verifier it is worth nothing.

authlib's OAuth2 client builds the authorization URL and redeems the code.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Annotated, Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Template

from services.frontend.config import FrontendConfig
from services.frontend.pages import page
from services.frontend.session import (
    SignedIn,
    remember,
    safe_next,
    session_data,
    signed_in,
)
from services.identity.tokens import InvalidToken, IssuerUnavailable, TokenValidator

SIGNIN_KEY = "signin"
DISCOVERY_TTL = 300.0


class SignInFailed(Exception):
    """The issuer said no, or its answer cannot be trusted; ``reason`` is fit to show."""


class OidcClient:
    def __init__(self, config: FrontendConfig, validator: TokenValidator, **http_options: Any) -> None:
        self.config = config
        self.validator = validator
        self._http_options = {"timeout": 10.0, **http_options}
        self._metadata: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched once and kept for a few minutes."""
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched_at > DISCOVERY_TTL:
                url = f"{self.config.issuer}/.well-known/openid-configuration"
                try:
                    async with httpx2.AsyncClient(**self._http_options) as http:
                        response = await http.get(url)
                        response.raise_for_status()
                        document = response.json()
                except (httpx2.HTTPError, ValueError) as error:
                    raise SignInFailed(f"the sign-in service at {self.config.issuer} cannot be reached: {error}") from error
                if document.get("issuer") != self.config.issuer:
                    raise SignInFailed("the sign-in service describes itself as another issuer")
                self._metadata, self._fetched_at = document, time.monotonic()
            return self._metadata

    def _client(self) -> AsyncOAuth2Client:
        secret = self.config.client_secret
        return AsyncOAuth2Client(
            self.config.client_id, secret, scope=self.config.scope, redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic" if secret else "none",
            **self._http_options,
        )  # fmt: skip

    async def authorization_url(self, state: str, verifier: str) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        async with self._client() as client:
            url, _ = client.create_authorization_url(endpoint, state=state, code_verifier=verifier)
        return str(url)

    async def redeem(self, code: str, verifier: str) -> SignedIn:
        endpoint = (await self.metadata())["token_endpoint"]
        started = time.time()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    endpoint, grant_type="authorization_code", code=code, code_verifier=verifier,
                    redirect_uri=self.config.redirect_uri,
                )  # fmt: skip
        except OAuthError as error:
            raise SignInFailed(f"the sign-in service refused: {error.description or error.error}") from error
        except (httpx2.HTTPError, ValueError) as error:
            raise SignInFailed(f"the sign-in service cannot be reached: {error}") from error
        access_token = token.get("access_token")
        if not isinstance(access_token, str):
            raise SignInFailed("the sign-in service sent no access token")
        try:
            principal = await self.validator.validate(access_token)
        except InvalidToken as error:
            raise SignInFailed(f"the sign-in service sent a token the image builder cannot use: {error.reason}") from error
        except IssuerUnavailable as error:
            raise SignInFailed(f"the sign-in service's keys cannot be fetched: {error}") from error
        lifetime = float(token.get("expires_in") or 0) or 300.0
        return SignedIn(token=access_token, expires_at=started + lifetime, subject=principal.subject, org_id=principal.org_id)


class SignInController(Controller):
    @get("/signin")
    async def sign_in(
        self, request: Request[Any, Any, State], state: State,
        next_url: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Redirect | Template:
        """Off to the issuer, unless already signed in."""
        target = safe_next(next_url)
        if signed_in(request) is not None:
            return Redirect(target)
        oidc: OidcClient = state.frontend.oidc
        login = {"state": secrets.token_urlsafe(24), "verifier": secrets.token_urlsafe(48), "next": target}
        try:
            url = await oidc.authorization_url(login["state"], login["verifier"])
        except SignInFailed as failed:
            return page(request, "signin_failed.html", status_code=503, reason=str(failed), next=target)
        request.set_session({SIGNIN_KEY: login})
        return Redirect(url)

    @get("/auth/callback")
    async def callback(
        self, request: Request[Any, Any, State], state: State, code: FromQuery[str | None] = None,
        error: FromQuery[str | None] = None, error_description: FromQuery[str | None] = None,
        iss: FromQuery[str | None] = None,
    ) -> Redirect | Template:  # fmt: skip
        """The issuer's answer: a code to redeem, or an error to show."""
        login = session_data(request).get(SIGNIN_KEY)
        target = safe_next(login.get("next") if isinstance(login, dict) else None)
        returned_state = request.query_params.get("state", "")
        oidc: OidcClient = state.frontend.oidc
        try:
            if not isinstance(login, dict) or not secrets.compare_digest(str(login.get("state")), returned_state):
                raise SignInFailed("this sign-in was not started here, or it was started in another tab; please try again")
            if iss is not None and iss != oidc.config.issuer:
                raise SignInFailed("the answer came from another issuer")
            if error is not None:
                raise SignInFailed(f"the sign-in service said: {error_description or error}")
            if not code:
                raise SignInFailed("the sign-in service sent no code")
            user = await oidc.redeem(code, str(login["verifier"]))
        except SignInFailed as failed:
            request.clear_session()
            return page(request, "signin_failed.html", status_code=400, reason=str(failed), next=target)
        remember(request, user)
        return Redirect(target)

    @post("/signout")
    async def sign_out(self, request: Request[Any, Any, State]) -> Redirect:
        """Forget the session here. The built-in issuer keeps no session of its own, so nothing else to end."""
        request.clear_session()
        return Redirect("/signed-out")

    @get("/signed-out")
    async def signed_out(self, request: Request[Any, Any, State]) -> Template:
        return page(request, "signed_out.html")
