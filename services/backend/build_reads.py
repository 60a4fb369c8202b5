"""What only the composer knows of a compose, read from it when asked: how far
its build has got (stage i of n), and the images it built for the ``local``
upload target.

Neither is history the backend records: progress changes every few seconds
and is worth nothing once the build ends, and images are files the composer
keeps. So they are read through, like the compose's logs: with the backend's
service token and the compose's org in ``X-Image-Builder-Org``. The org check
comes first, here, so another org's compose is a 404 before any call is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import msgspec

from services.backend.composer_client import ComposerLost
from services.backend.history import HistoryViews
from services.backend.records import ComposeNotFound


class ComposerBuilds(Protocol):
    async def status_document(self, org_id: str, composer_id: str) -> dict[str, Any]: ...

    def artifact(self, org_id: str, composer_id: str, name: str) -> AbstractAsyncContextManager[httpx2.Response]: ...


class ArtifactNotFound(LookupError):
    def __init__(self, compose_id: str, name: str) -> None:
        super().__init__(f"compose {compose_id} has no image {name!r} here (yet)")
        self.compose_id = compose_id
        self.name = name


class ImageProgress(msgspec.Struct, frozen=True, kw_only=True):
    """One image of a compose: while its build runs, ``stage`` is the step running and
    ``done``/``total`` count the build's steps; otherwise ``stage`` is None and they count its jobs."""

    stage: str | None
    done: int
    total: int


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int | None
    sha256: str | None
    chunks: AsyncIterator[bytes]


class BuildReads:
    def __init__(self, history: HistoryViews, composer: ComposerBuilds) -> None:
        self.history = history
        self.composer = composer

    async def progress(self, org_id: str, compose_id: str) -> list[ImageProgress]:
        """Each image's progress; none before the composer has taken the compose."""
        entry = await self.history.compose(org_id, compose_id)
        if entry.composer_id is None:
            return []
        try:
            document = await self.composer.status_document(org_id, entry.composer_id)
        except ComposerLost:
            raise ComposeNotFound(compose_id) from None
        return [_image_progress(image.get("progress") or {}) for image in document.get("image_statuses") or []]

    @asynccontextmanager
    async def artifact(self, org_id: str, compose_id: str, name: str, chunk_size: int = 1 << 20) -> AsyncIterator[Artifact]:
        """The image ``name`` streamed from the composer while the block runs."""
        entry = await self.history.compose(org_id, compose_id)
        if entry.composer_id is None:
            raise ArtifactNotFound(compose_id, name)
        try:
            async with self.composer.artifact(org_id, entry.composer_id, name) as response:
                length = response.headers.get("content-length")
                yield Artifact(
                    name=name, size=int(length) if length and length.isdigit() else None,
                    sha256=_sha256(response.headers.get("digest")), chunks=response.aiter_bytes(chunk_size),
                )  # fmt: skip
        except ComposerLost:
            raise ArtifactNotFound(compose_id, name) from None


def _image_progress(progress: dict[str, Any]) -> ImageProgress:
    stage = progress.get("stage")
    return ImageProgress(
        stage=stage if isinstance(stage, str) else None, done=int(progress.get("done", 0)), total=int(progress.get("total", 0))
    )


def _sha256(digest: str | None) -> str | None:
    """The composer's ``Digest: sha-256=<hex>`` header, as hex."""
    for part in (digest or "").split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "sha-256" and value:
            return value.lower()
    return None
