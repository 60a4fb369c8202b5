"""The client's HTTP session with the image-builder API.

Answers come back as parsed JSON (or text, for a TOML export); everything
else is an exception that says what to do about it: the server cannot be
reached, the token is missing or no longer good (401), or the API refused
the request (its ``{"errors": [{"id", "reason", "details"}]}``).

With an OAuth2 client's credentials, a token is fetched by client
credentials (authlib) before the first call and again shortly before it
expires, so ``compose status --watch`` can outlive one token; a 401 to a
token we thought good fetches a new one once (the issuer may have rotated
its keys), as the services' own client does (services/identity/client.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from services.client.settings import ClientSettings

API = "/api/image-builder/v1"
# How long before its expiry a token is replaced.
REFRESH_MARGIN = 30.0


class ClientError(Exception):
    """Something the user reads on stderr; ``exit_code`` 1 unless it is a usage error."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [f"error: {self}"]


class UsageError(ClientError):
    exit_code = 2


class Unreachable(ClientError):
    def __init__(self, url: str, error: Exception) -> None:
        super().__init__(f"cannot reach {url}: {str(error) or type(error).__name__}")

    def lines(self) -> list[str]:
        return [str(self)]


class NotSignedIn(ClientError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"not signed in, or the token expired: {reason}")


class ApiError(ClientError):
    """The API refused: one line per error, naming the field it is about."""

    def __init__(self, status: int, errors: list[dict[str, Any]], body: Any = None) -> None:
        self.status = status
        self.errors = errors
        self.body = body
        super().__init__("; ".join(str(error.get("reason", "")) for error in errors) or f"HTTP {status}")

    def lines(self) -> list[str]:
        return [f"error: {_error_line(error)}" for error in self.errors] or [f"error: HTTP {self.status}"]


def _error_line(error: dict[str, Any]) -> str:
    reason = str(error.get("reason", ""))
    details = error.get("details")
    field = details.get("field") if isinstance(details, dict) else None
    if not isinstance(field, str) or not field:
        return reason
    return f"{reason.removeprefix(f'{field}: ')} ({field})"


class Session:
    def __init__(self, settings: ClientSettings, http: httpx2.Client) -> None:
        self.settings = settings
        self.http = http

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        query = {name: value for name, value in params.items() if value is not None}
        return self.request("GET", path, params=query)

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.request("POST", path, **({"json": body} if body is not None else {}), **options)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def request(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self.http.request(method, f"{API}{path}", **options)
        except httpx2.TransportError as error:
            raise Unreachable(self.settings.server, error) from error
        _raise_for(response)
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    @contextmanager
    def stream(self, path: str) -> Iterator[httpx2.Response]:
        """A streamed GET (a download): the open 200 response while the block runs."""
        timeout = httpx2.Timeout(self.settings.timeout, read=300.0)
        try:
            with self.http.stream("GET", f"{API}{path}", timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                yield response
        except httpx2.TransportError as error:
            raise Unreachable(self.settings.server, error) from error


def open_session(settings: ClientSettings) -> Session:
    """A session that sends the configured token, or fetches one with the configured client's credentials."""
    auth: httpx2.Auth
    if settings.token:
        auth = StaticToken(settings.token)
    elif settings.client_id and settings.client_secret:
        auth = ClientCredentials(settings)
    else:
        raise UsageError(
            "not signed in: set IMAGE_BUILDER_TOKEN (or --token) to a bearer token, or IMAGE_BUILDER_CLIENT_ID "
            "and IMAGE_BUILDER_CLIENT_SECRET to an OAuth2 client's credentials (`image-builder up` prints a service account)"
        )
    timeout = httpx2.Timeout(settings.timeout, connect=10.0)
    return Session(settings, httpx2.Client(base_url=settings.server, auth=auth, timeout=timeout))


class StaticToken(httpx2.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class ClientCredentials(httpx2.Auth):
    def __init__(self, settings: ClientSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._token_url = settings.token_url

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        fetched = self._token is None or self.clock() >= self._refresh_at
        if fetched:
            self._fetch()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and not fetched:
            self._fetch()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _fetch(self) -> None:
        url = self._token_url or self._discover()
        self._token_url = url
        settings = self.settings
        extra = {"audience": settings.audience} if settings.audience else {}
        started = self.clock()
        try:
            with OAuth2Client(
                settings.client_id, settings.client_secret, token_endpoint_auth_method="client_secret_basic",
                timeout=settings.timeout,
            ) as oauth:  # fmt: skip
                token = oauth.fetch_token(url, grant_type="client_credentials", **extra)
        except OAuthError as error:
            raise NotSignedIn(f"{url} refused client {settings.client_id!r}: {error.error}: {error.description}") from error
        except httpx2.TransportError as error:
            raise Unreachable(url, error) from error
        except (httpx2.HTTPError, ValueError) as error:
            raise NotSignedIn(f"no token from {url}: {error}") from error
        # A token without expires_in is not reused: nothing says how long it lives.
        self._token = token["access_token"]
        self._refresh_at = started + float(token.get("expires_in") or 0) - REFRESH_MARGIN

    def _discover(self) -> str:
        """The token endpoint, from the issuer's OpenID Connect discovery document."""
        url = f"{self.settings.issuer_url}/.well-known/openid-configuration"
        try:
            response = httpx2.get(url, timeout=self.settings.timeout)
        except httpx2.TransportError as error:
            raise Unreachable(url, error) from error
        try:
            endpoint = response.json()["token_endpoint"] if response.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            endpoint = None
        if not isinstance(endpoint, str):
            raise UsageError(
                f"no token endpoint found at {url} (HTTP {response.status_code}): set --token-url or "
                "IMAGE_BUILDER_CLIENT_TOKEN_URL, or the issuer with IMAGE_BUILDER_CLIENT_ISSUER"
            )
        return endpoint


def _raise_for(response: httpx2.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not all(isinstance(error, dict) for error in errors):
        errors = [{"id": str(response.status_code), "reason": response.text[:300] or response.reason_phrase}]
    if response.status_code == 401:
        raise NotSignedIn("; ".join(str(error.get("reason", "")) for error in errors))
    raise ApiError(response.status_code, errors, body)
