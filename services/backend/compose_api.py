"""Composes and the build history: ``POST /compose``, ``GET /composes`` and one compose.

Paths and fields follow the public Image Builder API where they overlap.
Controllers parse, call one function and shape the answer; every read and
write is scoped to the caller's org, so another org's compose is a 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, Parameter

from domain.compose_history import UploadReport
from domain.composes import ComposeStatus
from domain.validation import validate_compose_request
from events.envelope import Actor, EventEnvelope
from services.backend.history import HistoryEntry, HistoryFilter, HistoryPage
from services.backend.paths import PREFIX
from services.identity.guards import require_roles
from services.identity.principal import Principal
from services.passwords import sealed

MAX_BODY = 4 * 1024 * 1024
PAGE_LIMIT = 100


class ComposeController(Controller):
    path = PREFIX
    guards = [require_roles("user", "admin")]
    tags = ["composes"]

    @post("/compose", status_code=201, request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Principal, str, State], state: State) -> dict[str, str]:
        """Validate the whole request, record it; it is handed to the composer in the background."""
        compose = await sealed(validate_compose_request(await request.body()))
        principal = request.user
        compose_id = await state.backend.composes.request(principal.org_id, msgspec.to_builtins(compose), _actor(principal))
        return {"id": compose_id}

    @get("/composes")
    async def history(
        self, request: Request[Principal, str, State], state: State,
        limit: int = Parameter(default=PAGE_LIMIT, ge=1, le=PAGE_LIMIT),
        cursor: str | None = Parameter(default=None, description="next_cursor of the page before"),
        status: FromQuery[ComposeStatus | None] = None,
        distribution: FromQuery[str | None] = None,
        image_type: FromQuery[str | None] = None,
        image_name: str | None = Parameter(default=None, description="part of the image name, any case"),
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        blueprint_id: str | None = Parameter(default=None, description="only composes made from this blueprint"),
    ) -> dict[str, Any]:  # fmt: skip
        """The caller's composes, newest first, a page at a time (keyset: follow ``links.next``)."""
        where = HistoryFilter(
            status=status, distribution=distribution, image_type=image_type, image_name=image_name,
            created_after=created_after, created_before=created_before, blueprint_id=blueprint_id,
        )  # fmt: skip
        page = await state.backend.history.page(request.user.org_id, where, limit, cursor)
        return history_page(page, f"{PREFIX}/composes", request.query_params.items())

    @get("/composes/{compose_id:str}")
    async def status(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        entry, uploads = await state.backend.history.detail(request.user.org_id, compose_id)
        return {**_history_item(entry), "image_status": _image_status(entry, uploads)}

    @get("/composes/{compose_id:str}/metadata")
    async def metadata(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """The packages of each image, as the composer knows them."""
        return await state.backend.documents.fetch(request.user.org_id, compose_id, "metadata")

    @get("/composes/{compose_id:str}/logs")
    async def logs(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """The build log of each of the compose's jobs, from the composer."""
        return await state.backend.documents.fetch(request.user.org_id, compose_id, "logs")

    @get("/composes/{compose_id:str}/sboms")
    async def sboms(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """The SPDX document of each image, from the composer."""
        return await state.backend.documents.fetch(request.user.org_id, compose_id, "sboms")

    @get("/composes/{compose_id:str}/events")
    async def events(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """The compose's own timeline, as recorded in the backend's event store."""
        timeline = await state.backend.history.timeline(request.user.org_id, compose_id)
        return {"data": [_event_item(event) for event in timeline]}

    @delete("/composes/{compose_id:str}", status_code=200)
    async def remove(self, compose_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, str]:
        """Take the compose out of the history; its events remain."""
        principal = request.user
        await state.backend.composes.delete(principal.org_id, compose_id, _actor(principal))
        return {"id": compose_id}


def _actor(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, org_id=principal.org_id, client=principal.client_id)


def history_page(page: HistoryPage, path: str, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A page of history entries with links to the first and the next page of ``path``."""
    kept = [(key, value) for key, value in query if key != "cursor"]
    links = {"first": _link(path, kept)}
    if page.next_cursor is not None:
        links["next"] = _link(path, [*kept, ("cursor", page.next_cursor)])
    return {
        "meta": {"count": len(page.entries), "next_cursor": page.next_cursor},
        "links": links,
        "data": [_history_item(entry) for entry in page.entries],
    }


def _link(path: str, query: list[tuple[str, str]]) -> str:
    return path + (f"?{urlencode(query)}" if query else "")


def _history_item(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.compose_id,
        "created_at": entry.created_at.isoformat(),
        "image_name": entry.image_name,
        "status": entry.status.value,
        "request": entry.request,
        "blueprint_id": entry.blueprint_id,
        "blueprint_version": entry.blueprint_version,
    }


def _image_status(entry: HistoryEntry, uploads: dict[tuple[int, int], UploadReport]) -> dict[str, Any]:
    """Upstream's shape: the first image's first upload target, with its result once the composer reported it."""
    report = uploads.get((0, 0))
    if report is None:
        images = entry.request.get("image_requests") or [{}]
        targets = images[0].get("upload_targets") or [{"type": "local"}]
        report = UploadReport(type=targets[0]["type"], status=entry.upload_status)
    return {
        "status": entry.status.value,
        "upload_status": msgspec.to_builtins(report),
        "error": None if entry.error is None else msgspec.to_builtins(entry.error),
    }


def _event_item(event: EventEnvelope) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "type": event.event_type,
        "version": event.stream_version,
        "position": event.position,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": {"subject": event.actor.subject, "client": event.actor.client},
        "causation_id": event.causation_id,
        "payload": event.payload,
    }
