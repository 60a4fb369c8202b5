"""A compose's build as the composer sees it: ``/composes/{id}/progress`` and the
images it built, ``/composes/{id}/artifacts/{name}`` (read through, see
services/backend/build_reads.py).

An image is streamed as the composer sends it, never held in memory, with
its ``Content-Length`` and its sha256 in ``X-Checksum-SHA256`` (hex), so a
client can check what it saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from services.backend.build_reads import Artifact
from services.backend.paths import PREFIX
from services.identity.guards import require_roles
from services.identity.principal import Principal


class BuildController(Controller):
    path = f"{PREFIX}/composes/{{compose_id:str}}"
    guards = [require_roles("user", "admin")]
    tags = ["composes"]

    @get("/progress")
    async def progress(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """Each image's progress: the build step running and steps done of all, or jobs done of all."""
        images = await state.backend.builds.progress(request.user.org_id, compose_id)
        return {"images": msgspec.to_builtins(images)}

    @get("/artifacts/{name:str}", media_type="application/octet-stream")
    async def artifact(self, compose_id: FromPath[str], name: FromPath[str], request: Request[Principal, str, State], state: State) -> Stream:
        """An image of the ``local`` upload target, streamed from the composer."""
        # Opened before answering, so a missing image is a 404 and not a broken download.
        opened = AsyncExitStack()
        found = await opened.enter_async_context(state.backend.builds.artifact(request.user.org_id, compose_id, name))
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
        if found.size is not None:
            headers["Content-Length"] = str(found.size)
        if found.sha256 is not None:
            headers["X-Checksum-SHA256"] = found.sha256
        return Stream(_chunks(found, opened), media_type="application/octet-stream", headers=headers,
                      background=BackgroundTask(opened.aclose))  # fmt: skip


async def _chunks(found: Artifact, opened: AsyncExitStack) -> AsyncIterator[bytes]:
    try:
        async for chunk in found.chunks:
            yield chunk
    finally:
        await opened.aclose()
