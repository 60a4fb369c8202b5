"""One compose: its status and phase, timeline, error, download, build log, packages and SBOM.

Status and timeline are the backend's own (its history and its event
store); the log, the package list and the SBOM are the composer's documents,
which the backend fetches for the user. A compose the composer has not taken
yet has none of those, and a page says so rather than failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx2
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from services.frontend.backend_api import ApiError, BackendUnavailable, UserApi
from services.frontend.pages import page
from services.frontend.presenters import compose_view
from services.frontend.session import signed_in, user_api

EVENT_LABELS = {
    "ComposeRequested": "Requested",
    "ComposeSubmitted": "Handed to the build queue",
    "ComposeRefused": "Refused by the build queue",
    "ComposeStatusRecorded": "Status changed",
    "ComposeUploadRecorded": "Upload changed",
    "ComposeDeleted": "Deleted",
}
DOWNLOAD_CHUNK = 1 << 16


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A composer document as the page shows it: the content, or why there is none."""

    content: Any = None
    missing: str | None = None


class ComposeController(Controller):
    path = "/images/{compose_id:str}"

    @get("/")
    async def detail(self, compose_id: FromPath[str], request: Request[Any, Any, State], created: FromQuery[bool] = False) -> Template:
        api = user_api(request)
        context = await _detail(api, compose_id)
        logs, metadata = await asyncio.gather(_document(api, compose_id, "logs"), _document(api, compose_id, "metadata"))
        return page(request, "compose.html", section="images", created=created, logs=logs, metadata=metadata, **context)

    @get("/live")
    async def live(self, compose_id: FromPath[str], request: Request[Any, Any, State]) -> Template | Response[str]:
        """The status, action and timeline alone: what the live page swaps in when the compose changes."""
        if signed_in(request) is None:
            return Response("sign in again", status_code=401, media_type="text/plain")
        return page(request, "_compose_live.html", **await _detail(user_api(request), compose_id))

    @post("/delete")
    async def remove(self, compose_id: FromPath[str], request: Request[Any, Any, State]) -> Redirect:
        await user_api(request).delete(f"/composes/{compose_id}")
        return Redirect("/images?deleted=1", status_code=303)

    @get("/download")
    async def download(self, compose_id: FromPath[str], request: Request[Any, Any, State]) -> Stream:
        """A ``local`` image, streamed through with the user's token (the browser has none)."""
        api = user_api(request)
        view = compose_view(await api.get(f"/composes/{compose_id}"))
        if view.artifact is None:
            raise ApiError(404, [{"reason": "this image has no download here"}])
        # Opened here, so a refusal is an error page and not a broken download.
        opened = AsyncExitStack()
        upstream = await opened.enter_async_context(api.download(f"/composes/{compose_id}/artifacts/{quote(view.artifact)}"))
        headers = {"Content-Disposition": f'attachment; filename="{view.artifact}"', "Cache-Control": "no-store"}
        for passed in ("content-length", "x-checksum-sha256"):
            if passed in upstream.headers:
                headers[passed] = upstream.headers[passed]
        return Stream(_chunks(upstream, opened), media_type="application/octet-stream", headers=headers,
                      background=BackgroundTask(opened.aclose))  # fmt: skip

    @get("/sbom")
    async def sbom(self, compose_id: FromPath[str], request: Request[Any, Any, State]) -> Response[bytes]:
        """The SPDX documents of the compose's images, as a file to save."""
        sboms = await user_api(request).get(f"/composes/{compose_id}/sboms")
        body = msgspec.json.format(msgspec.json.encode(sboms), indent=2)
        return Response(body, media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{compose_id}-sbom.json"'})  # fmt: skip


async def _detail(api: UserApi, compose_id: str) -> dict[str, Any]:
    item, events, progress = await asyncio.gather(
        api.get(f"/composes/{compose_id}"), api.get(f"/composes/{compose_id}/events"), _document(api, compose_id, "progress")
    )
    view = compose_view(item)
    images = (progress.content or {}).get("images") or []
    return {
        "view": view, "timeline": [_event(event) for event in events["data"]], "request_json": _pretty(item.get("request")),
        # The build's own step ("stage i of n"), while it runs.
        "stage": images[0] if images and images[0].get("stage") and not view.finished else None,
    }  # fmt: skip


def _event(event: dict[str, Any]) -> dict[str, Any]:
    payload = event.get("payload") or {}
    detail = payload.get("status") or payload.get("reason") or ""
    if event["type"] == "ComposeSubmitted" and payload.get("composer_id"):
        detail = f"as {payload['composer_id']}"
    return {
        "label": EVENT_LABELS.get(event["type"], event["type"]),
        "type": event["type"],
        "at": datetime.fromisoformat(event["occurred_at"]),
        "detail": str(detail),
        "error": payload.get("error"),
    }


async def _document(api: UserApi, compose_id: str, name: str) -> Document:
    try:
        return Document(content=await api.get(f"/composes/{compose_id}/{name}"))
    except ApiError as error:
        return Document(missing=error.reason)
    except BackendUnavailable as error:
        return Document(missing=str(error))


async def _chunks(upstream: httpx2.Response, opened: AsyncExitStack) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_bytes(DOWNLOAD_CHUNK):
            yield chunk
    finally:
        await opened.aclose()


def _pretty(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
