"""The frontend's only source: the backend's API, called with the signed-in user's token.

Errors keep the API's shape (``{"errors": [{"id", "reason", "details"}]}``):
a page shows the reason, and a form puts each ``details.field`` error next
to its field. A 401 means the token is no longer good: the user signs in again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from services.frontend.sse import Message, messages

PREFIX = "/api/image-builder/v1"


class SignInAgain(Exception):
    """The backend refused the token (expired, or the issuer rotated its keys)."""


class BackendUnavailable(Exception):
    """The backend could not be reached or failed."""


class ApiError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        return "; ".join(str(error.get("reason", "")) for error in self.errors) or f"HTTP {self.status}"

    def field_errors(self) -> dict[str, str]:
        """``details.field`` -> reason, for the errors that name a field."""
        found: dict[str, str] = {}
        for error in self.errors:
            details = error.get("details")
            field = details.get("field") if isinstance(details, dict) else None
            if isinstance(field, str) and field:
                reason = str(error.get("reason", ""))
                found.setdefault(field, reason.removeprefix(f"{field}: "))
        return found


class UserApi:
    """The backend's API as one user: every call carries their bearer token."""

    def __init__(self, http: httpx2.AsyncClient, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **params: Any) -> Any:
        query = {name: value for name, value in params.items() if value not in (None, "")}
        return await self._call("GET", path, params=query)

    async def post(self, path: str, body: Any) -> Any:
        return await self._call("POST", path, json=body)

    async def put(self, path: str, body: Any) -> Any:
        return await self._call("PUT", path, json=body)

    async def delete(self, path: str) -> Any:
        return await self._call("DELETE", path)

    async def post_file(self, path: str, content: bytes, content_type: str, **params: Any) -> Any:
        """A file's bytes as the body, e.g. an osbuild blueprint as ``application/toml``."""
        return await self._call("POST", path, content=content, headers={"Content-Type": content_type}, params=params)

    async def get_file(self, path: str, **params: Any) -> tuple[str, bytes]:
        """(content type, body) of a document the API answers with as it is (an export)."""
        response = await self._send("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})
        return response.headers.get("content-type", "application/octet-stream"), response.content

    @asynccontextmanager
    async def updates(self) -> AsyncIterator[AsyncIterator[Message]]:
        """The org's history changes as server-sent events, while the block runs."""
        timeout = httpx2.Timeout(10.0, read=60.0)  # the backend sends a keep-alive every 15 s
        try:
            async with self.http.stream("GET", f"{PREFIX}/composes/updates", headers=self.headers, timeout=timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    _raise_for(response)
                yield messages(response.aiter_lines())
        except httpx2.TransportError as error:
            raise BackendUnavailable(f"the image-builder API could not be reached: {error}") from error

    @asynccontextmanager
    async def download(self, path: str) -> AsyncIterator[httpx2.Response]:
        """A streamed GET of a file the API serves (an image), while the block runs."""
        timeout = httpx2.Timeout(10.0, read=120.0)
        try:
            async with self.http.stream("GET", f"{PREFIX}{path}", headers=self.headers, timeout=timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    _raise_for(response)
                yield response
        except httpx2.TransportError as error:
            raise BackendUnavailable(f"the image could not be fetched: {error}") from error

    async def _call(self, method: str, path: str, **options: Any) -> Any:
        return (await self._send(method, path, **options)).json()

    async def _send(self, method: str, path: str, *, headers: dict[str, str] | None = None, **options: Any) -> httpx2.Response:
        try:
            response = await self.http.request(method, f"{PREFIX}{path}", headers={**self.headers, **(headers or {})}, **options)
        except httpx2.TransportError as error:
            raise BackendUnavailable(f"the image-builder API could not be reached: {error}") from error
        _raise_for(response)
        return response


def _raise_for(response: httpx2.Response) -> None:
    if response.status_code < 400:
        return
    if response.status_code == 401:
        raise SignInAgain()
    try:
        errors = response.json().get("errors")
    except ValueError:
        errors = None
    if not isinstance(errors, list):
        errors = [{"id": str(response.status_code), "reason": response.text[:300] or response.reason_phrase}]
    if response.status_code >= 500:
        raise BackendUnavailable("; ".join(str(error.get("reason")) for error in errors))
    raise ApiError(response.status_code, errors)
