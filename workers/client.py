"""The worker's side of the composer's worker API (``/api/worker/v1``).

Tokens come from the OAuth2 token endpoint by client credentials; authlib's
client fetches a new one whenever the current one is about to expire.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import msgspec
from authlib.integrations.httpx_client import AsyncOAuth2Client

API = "/api/worker/v1"
CHUNK = 1024 * 1024


class ComposerUnreachable(Exception):
    """No answer, or a server error: worth trying again later."""


class StaleJob(Exception):
    """The composer no longer gives this job to us (409): stop working on it."""


class Refused(RuntimeError):
    """The composer answered 4xx: asking again will not help."""


class ArtifactCorrupt(Exception):
    """A fetched artifact's sha256 is not the one its build recorded."""


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    job_id: str
    compose_id: str
    type: str
    arch: str
    args: dict[str, Any]
    dynamic_args: dict[str, Any]
    lease_expires_at: str


class ComposerClient:
    def __init__(self, base_url: str, token_url: str, client_id: str, client_secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = AsyncOAuth2Client(
            client_id, client_secret, token_endpoint=token_url, grant_type="client_credentials",
            leeway=30, base_url=self.base_url, timeout=httpx2.Timeout(90, connect=10),
        )  # fmt: skip

    async def close(self) -> None:
        await self._http.aclose()

    async def register(self, name: str, arch: str) -> str:
        return (await self._call("POST", f"{API}/workers", json={"name": name, "arch": arch}))["worker_id"]

    async def alive(self, worker_id: str) -> None:
        await self._call("POST", f"{API}/workers/{worker_id}/status")

    async def claim(self, worker_id: str, types: list[str], timeout: float) -> Assignment | None:
        body = {"worker_id": worker_id, "types": types, "timeout": timeout}
        found = await self._call("POST", f"{API}/jobs", json=body)
        return None if found is None else msgspec.convert(found, Assignment)

    async def canceled(self, token: str) -> bool:
        """Renews the lease; True once the job was canceled."""
        return bool((await self._call("GET", f"{API}/jobs/{token}"))["canceled"])

    async def report(self, token: str, **update: Any) -> None:
        await self._call("PATCH", f"{API}/jobs/{token}", json=update)

    async def upload(self, token: str, name: str, path: Path, sha256: str) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as source:
                while block := source.read(CHUNK):
                    yield block

        await self._call(
            "PUT", f"{API}/jobs/{token}/artifacts/{name}", content=chunks(),
            headers={"X-Checksum-SHA256": sha256, "Content-Length": str(path.stat().st_size)},
        )  # fmt: skip

    async def download(self, token: str, name: str, sha256: str, directory: Path) -> Path:
        """Stream an artifact of the job's compose into ``directory``, verified against ``sha256``.

        It is written under a temporary name and renamed only once its checksum
        matched, so a partial or corrupted download is never taken for the image.
        """
        path = f"{API}/jobs/{token}/artifacts/{name}"
        await self._ensure_token("GET", path)
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".partial")
        digest = hashlib.sha256()
        try:
            with os.fdopen(handle, "wb") as out:
                async with self._http.stream("GET", path) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        self._check("GET", path, response)
                    async for block in response.aiter_bytes(CHUNK):
                        digest.update(block)
                        out.write(block)
            if digest.hexdigest() != sha256.lower():
                raise ArtifactCorrupt(f"{name}: received sha256 {digest.hexdigest()}, the build recorded {sha256}")
            target = directory / name
            os.replace(temporary, target)
        except BaseException as error:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(error, httpx2.TransportError):
                raise ComposerUnreachable(f"GET {path}: {error}") from error
            raise
        return target

    async def _ensure_token(self, method: str, path: str) -> None:
        try:
            if self._http.token is None:
                await self._http.fetch_token()
        except (httpx2.TransportError, OSError) as error:
            raise ComposerUnreachable(f"{method} {path}: {error}") from error
        except Exception as error:  # authlib: the token endpoint refused or failed
            raise ComposerUnreachable(f"{method} {path}: cannot get a token: {error}") from error

    async def _call(self, method: str, path: str, **options: Any) -> Any:
        await self._ensure_token(method, path)
        try:
            response = await self._http.request(method, path, **options)
        except (httpx2.TransportError, OSError) as error:
            raise ComposerUnreachable(f"{method} {path}: {error}") from error
        except Exception as error:  # authlib: refreshing the token refused or failed
            raise ComposerUnreachable(f"{method} {path}: cannot get a token: {error}") from error
        self._check(method, path, response)
        return None if response.status_code == 204 else response.json()

    @staticmethod
    def _check(method: str, path: str, response: httpx2.Response) -> None:
        if response.status_code == 409:
            raise StaleJob(response.text)
        if response.status_code >= 500 or response.status_code in (401, 503):
            raise ComposerUnreachable(f"{method} {path}: {response.status_code} {response.text[:300]}")
        if response.status_code >= 400:
            raise Refused(f"{method} {path} was refused: {response.status_code} {response.text[:500]}")
