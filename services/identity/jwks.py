"""The issuer's public keys, fetched over HTTP and cached.

Keys are fetched once, then again only when a token names a key id we do not
know (the issuer rotated its key) or the cache is older than ``max_age`` (the
issuer retired a key). Fetches are at most one per ``refresh_interval``: the
key id comes from an unauthenticated header, so without that limit anyone could
make every request cost a round trip to the issuer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx2
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet


class IssuerUnavailable(Exception):
    """The issuer's keys could not be fetched: the caller should retry later;
    the token itself may well be fine."""


class RemoteKeySet:
    def __init__(
        self,
        issuer: str,
        jwks_url: str | None = None,
        *,
        refresh_interval: float = 30.0,
        max_age: float = 3600.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.timeout = timeout
        self.clock = clock
        self._keys: KeySet | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._attempts = 0
        self._last_error: str | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Key | None:
        """The key with this id, fetching the key set again if it is unknown
        and the rate limit allows; None when no such key is published."""
        if self._keys is None or self._stale():
            await self._refresh()
        key = find_key(self._keys, kid)
        if key is None:
            await self._refresh()
            key = find_key(self._keys, kid)
        return key

    def _stale(self) -> bool:
        return self._fetched_at is not None and self.clock() - self._fetched_at > self.max_age

    async def _refresh(self) -> None:
        seen_attempts = self._attempts
        async with self._lock:
            # Requests that queued behind a fetch use its result instead of
            # fetching again: one fetch per burst of unknown kids.
            allowed = self._attempted_at is None or self.clock() - self._attempted_at >= self.refresh_interval
            if self._attempts == seen_attempts and allowed:
                await self._attempt_fetch()
        if self._keys is None:
            raise IssuerUnavailable(self._last_error or "the issuer's keys are not available yet")

    async def _attempt_fetch(self) -> None:
        self._attempts += 1
        self._attempted_at = self.clock()
        first = self._keys is None
        try:
            self._keys = await self._fetch()
        except IssuerUnavailable as error:
            # Keep serving the keys we have: an issuer outage should not
            # turn every valid token into a failure.
            self._last_error = str(error)
            return
        self._fetched_at = self._attempted_at
        self._last_error = None
        if first:
            # The first fetch is not a refresh: a key rotated just after we
            # started is still picked up at once.
            self._attempted_at = None

    async def _fetch(self) -> KeySet:
        async with httpx2.AsyncClient(timeout=self.timeout) as http:
            jwks_url = self.jwks_url or await self._discover(http)
            document = await _get_json(http, jwks_url)
        try:
            return KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, KeyError, TypeError, ValueError) as error:
            raise IssuerUnavailable(f"{jwks_url} is not a usable JWKS: {error}") from error

    async def _discover(self, http: httpx2.AsyncClient) -> str:
        # OpenID Connect Discovery 1.0, sections 4 and 4.3: the document lives
        # under the issuer URL and must name that same issuer.
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        document = await _get_json(http, url)
        if document.get("issuer") != self.issuer:
            raise IssuerUnavailable(f"{url} names issuer {document.get('issuer')!r}, expected {self.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IssuerUnavailable(f"{url} has no jwks_uri")
        self.jwks_url = jwks_uri
        return jwks_uri


def find_key(keys: KeySet | None, kid: str | None) -> Key | None:
    """The key with this id; without an id, the only key, if there is one."""
    if keys is None:
        return None
    if kid is None:
        # Without a kid only an unambiguous (single-key) set can be used.
        return keys.keys[0] if len(keys.keys) == 1 else None
    return next((key for key in keys.keys if key.kid == kid), None)


async def _get_json(http: httpx2.AsyncClient, url: str) -> dict[str, object]:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx2.HTTPError, ValueError) as error:
        raise IssuerUnavailable(f"could not fetch {url}: {error}") from error
    if not isinstance(document, dict):
        raise IssuerUnavailable(f"{url} did not return a JSON object")
    return document
