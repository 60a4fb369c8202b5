"""The backend's side of the composer's compose API: handing a compose over, and
reading what the composer keeps of it (logs, metadata, SBOMs, a build's progress,
the images it built).

Calls carry a client-credentials token (ServiceTokenSource), the org the
compose belongs to in ``X-Image-Builder-Org`` (the composer believes it only
from its trusted service clients), and the backend's compose id as the
``Idempotency-Key``: asking twice gives the same composer compose.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import msgspec

from services.composer.tenancy import ORG_HEADER
from services.identity.client import ServiceTokenSource, ServiceTokenUnavailable

COMPOSE_API = "/api/image-builder-composer/v2"


class Accepted(msgspec.Struct, frozen=True):
    composer_id: str


class Refused(msgspec.Struct, frozen=True):
    """The composer will never take this request (400): retrying cannot help."""

    reason: str
    details: Any


class ComposerUnavailable(Exception):
    """A server error, or the composer does not trust us (yet): try again later."""


class ComposerUnreachable(ComposerUnavailable):
    """No answer at all (or no token): every other call would fail the same way now."""


class ComposerLost(LookupError):
    """The composer no longer has this compose (deleted there)."""


class ComposerClient:
    def __init__(self, base_url: str, tokens: ServiceTokenSource, *, timeout: float = 30.0, **http_options: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx2.AsyncClient(
            base_url=self.base_url, auth=tokens.auth(), timeout=httpx2.Timeout(timeout, connect=5.0), **http_options
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def submit(self, compose_id: str, org_id: str, request: dict[str, Any]) -> Accepted | Refused:
        response = await self._call(
            "POST", f"{COMPOSE_API}/compose", json=request, headers={"Idempotency-Key": compose_id, ORG_HEADER: org_id}
        )
        if response.status_code == 201:
            return Accepted(response.json()["id"])
        if response.status_code in (400, 422):
            errors = _errors(response)
            reasons = "; ".join(str(e.get("reason")) for e in errors) or response.text[:500]
            return Refused(f"the composer refused the request: {reasons}", {"errors": errors})
        # 401/403 mean a configuration to fix (client or trust), 5xx a composer in trouble:
        # either way the compose is still owed to the composer.
        raise ComposerUnavailable(f"{self.base_url} answered {response.status_code}: {response.text[:500]}")

    async def document(self, org_id: str, composer_id: str, name: str) -> dict[str, Any]:
        """``GET /composes/{composer_id}/{name}`` as the org's compose, e.g. ``logs``."""
        response = await self._call("GET", f"{COMPOSE_API}/composes/{composer_id}/{name}", headers={ORG_HEADER: org_id})
        if response.status_code == 200:
            return response.json()
        if response.status_code == 404:
            raise ComposerLost(composer_id)
        raise ComposerUnavailable(f"{self.base_url} answered {response.status_code}: {response.text[:500]}")

    async def status_document(self, org_id: str, composer_id: str) -> dict[str, Any]:
        """The composer's status document of the compose, for what only it knows (a build's progress)."""
        response = await self._call("GET", f"{COMPOSE_API}/composes/{composer_id}", headers={ORG_HEADER: org_id})
        if response.status_code == 200:
            return response.json()
        if response.status_code == 404:
            raise ComposerLost(composer_id)
        raise ComposerUnavailable(f"{self.base_url} answered {response.status_code}: {response.text[:500]}")

    @asynccontextmanager
    async def artifact(self, org_id: str, composer_id: str, name: str) -> AsyncIterator[httpx2.Response]:
        """An image the composer keeps, as an open streamed response (200) while the block runs."""
        path = f"{COMPOSE_API}/composes/{composer_id}/artifacts/{name}"
        try:
            async with self._http.stream("GET", path, headers={ORG_HEADER: org_id}) as response:
                if response.status_code != 200:
                    await response.aread()
                    if response.status_code == 404:
                        raise ComposerLost(composer_id)
                    raise ComposerUnavailable(f"{self.base_url} answered {response.status_code}: {response.text[:500]}")
                yield response
        except ServiceTokenUnavailable as error:
            raise ComposerUnreachable(str(error)) from error
        except (httpx2.HTTPError, OSError) as error:
            raise ComposerUnreachable(f"{self.base_url} unreachable: {error!r}") from error

    async def _call(self, method: str, path: str, **options: Any) -> httpx2.Response:
        try:
            return await self._http.request(method, path, **options)
        except ServiceTokenUnavailable as error:
            raise ComposerUnreachable(str(error)) from error
        except (httpx2.HTTPError, OSError) as error:
            raise ComposerUnreachable(f"{self.base_url} unreachable: {error!r}") from error


def _errors(response: httpx2.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
