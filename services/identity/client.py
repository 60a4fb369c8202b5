"""Access tokens for services calling services (OAuth2 client credentials).

    source = ServiceTokenSource(token_url, client_id, client_secret, audience="image-builder")
    async with httpx2.AsyncClient(auth=source.auth()) as composer: ...

httpx2 rather than httpx: authlib 1.9 uses httpx2 when it is installed and
deprecates its httpx fallback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client


class ServiceTokenUnavailable(Exception):
    """The issuer refused the client or could not be reached."""


class ServiceTokenSource:
    """Fetches a token and reuses it until ``refresh_margin`` seconds before
    it expires, so a token is never sent that dies in flight. Concurrent
    callers share one fetch. ``http_options`` go to the HTTP client
    (``timeout``, ``verify``, ``transport``)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        audience: str | None = None,
        *,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        **http_options: Any,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.audience = audience
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._client_secret = client_secret
        self._http_options = {"timeout": 10.0, **http_options}
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self.clock() >= self._refresh_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token, e.g. after a service answered 401 to it."""
        self._token = None

    def auth(self) -> httpx2.Auth:
        """An httpx2 auth that sends the token and, on a 401, retries once
        with a fresh one (the issuer may have rotated its key)."""
        return _BearerAuth(self)

    async def _fetch(self) -> None:
        extra = {"audience": self.audience} if self.audience else {}
        started = self.clock()
        try:
            async with AsyncOAuth2Client(
                self.client_id,
                self._client_secret,
                token_endpoint_auth_method="client_secret_basic",
                **self._http_options,
            ) as oauth:
                token = await oauth.fetch_token(self.token_url, grant_type="client_credentials", **extra)
        except OAuthError as error:
            raise ServiceTokenUnavailable(
                f"{self.token_url} refused {self.client_id!r}: {error.error}: {error.description}"
            ) from error
        except (httpx2.HTTPError, ValueError) as error:
            raise ServiceTokenUnavailable(f"could not get a token from {self.token_url}: {error}") from error
        # Counted from when we asked, not when the answer came: the issuer's
        # clock started before ours stopped. A token without expires_in is
        # not reused, as nothing says how long it lives.
        lifetime = float(token.get("expires_in") or 0)
        self._token = token["access_token"]
        self._refresh_at = started + lifetime - self.refresh_margin


class _BearerAuth(httpx2.Auth):
    def __init__(self, source: ServiceTokenSource) -> None:
        self.source = source

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        # Without this a sync client would silently send no token at all.
        raise RuntimeError("ServiceTokenSource.auth() works with httpx2.AsyncClient only")

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = f"Bearer {await self.source.token()}"
        response = yield request
        if response.status_code == 401:
            self.source.invalidate()
            request.headers["Authorization"] = f"Bearer {await self.source.token()}"
            yield request
