"""Blueprints: ``/blueprints`` and each blueprint's versions, export, import and composes.

Controllers parse, call one function and shape the answer. Every read and
write is scoped to the caller's org, so another org's blueprint is a 404.

Import reads the Content-Type: ``application/toml`` or ``text/x-toml`` is an
osbuild blueprint, whose image types come from the ``image_type`` query
parameters (default guest-image, on ``architecture`` x86_64), since the
format has none; anything else is this API's JSON body, as ``POST
/blueprints`` takes it and ``/export`` gives it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

import tomli_w
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, Parameter, QueryParameter

from domain.blueprint_body import body_dict, parse_compose_choice, validate_blueprint
from domain.blueprint_toml import body_from_toml, toml_document
from events.envelope import Actor
from services.backend.blueprint_views import BlueprintSummary, BlueprintVersion
from services.backend.compose_api import MAX_BODY, PAGE_LIMIT, history_page
from services.backend.history import HistoryFilter
from services.backend.paths import PREFIX
from services.identity.guards import require_roles
from services.identity.principal import Principal
from services.passwords import sealed

TOML_TYPES = ("application/toml", "text/x-toml")
DEFAULT_IMAGE_TYPE = "guest-image"


class ExportFormat(StrEnum):
    JSON = "json"
    TOML = "toml"


class BlueprintController(Controller):
    path = f"{PREFIX}/blueprints"
    guards = [require_roles("user", "admin")]
    tags = ["blueprints"]

    @post("", status_code=201, request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """Validate the body as a compose from it would be, and store it as version 1."""
        body = await sealed(validate_blueprint(await request.body()))
        blueprint_id = await state.backend.blueprints.create(request.user.org_id, body, _actor(request.user))
        return {"id": blueprint_id, "version": 1}

    @get("")
    async def listing(
        self, request: Request[Principal, str, State], state: State,
        name: str | None = Parameter(default=None, description="part of the name, any case"),
        limit: int = Parameter(default=PAGE_LIMIT, ge=1, le=PAGE_LIMIT),
        offset: int = Parameter(default=0, ge=0),
    ) -> dict[str, Any]:  # fmt: skip
        """The org's blueprints, newest first; ``meta.count`` counts every match."""
        found = await state.backend.blueprints.views.list(request.user.org_id, name, limit, offset)
        query = {"name": name} if name else {}
        last = max(0, (found.count - 1) // limit * limit)
        return {
            "meta": {"count": found.count},
            "links": {"first": _link(query, limit, 0), "last": _link(query, limit, last)},
            "data": [_summary(item) for item in found.items],
        }

    @get("/{blueprint_id:str}")
    async def show(
        self, blueprint_id: FromPath[str], request: Request[Principal, str, State], state: State,
        version: int | None = Parameter(default=None, ge=1, description="a version; the latest when left out"),
    ) -> dict[str, Any]:  # fmt: skip
        found = await state.backend.blueprints.views.version(request.user.org_id, blueprint_id, version)
        return _version(found)

    @put("/{blueprint_id:str}", request_max_body_size=MAX_BODY)
    async def update(self, blueprint_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """Store the whole body as the next version; earlier versions stay readable."""
        body = await sealed(validate_blueprint(await request.body()))
        principal = request.user
        version = await state.backend.blueprints.add_version(principal.org_id, blueprint_id, body, _actor(principal))
        return {"id": blueprint_id, "version": version}

    @delete("/{blueprint_id:str}", status_code=200)
    async def remove(self, blueprint_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, str]:
        """The blueprint is gone (404 after this); its events, and composes made from it, remain."""
        principal = request.user
        await state.backend.blueprints.delete(principal.org_id, blueprint_id, _actor(principal))
        return {"id": blueprint_id}

    @get("/{blueprint_id:str}/export")
    async def export(
        self, blueprint_id: FromPath[str], request: Request[Principal, str, State], state: State,
        version: int | None = Parameter(default=None, ge=1),
        export_format: Annotated[ExportFormat, QueryParameter(name="format")] = ExportFormat.JSON,
    ) -> Response[Any]:  # fmt: skip
        """The body as ``POST /blueprints/import`` takes it back: JSON, or an osbuild blueprint
        (without image requests, which that format has no place for)."""
        found = await state.backend.blueprints.views.version(request.user.org_id, blueprint_id, version)
        if export_format is ExportFormat.TOML:
            return Response(tomli_w.dumps(toml_document(found.body, found.version)), media_type=TOML_TYPES[0])
        return Response(found.body)

    @post("/import", status_code=201, request_max_body_size=MAX_BODY)
    async def import_(
        self, request: Request[Principal, str, State], state: State,
        image_type: list[str] | None = Parameter(default=None, description="for TOML: the image types to build"),
        architecture: str = Parameter(default="x86_64", description="for TOML: their architecture"),
    ) -> dict[str, Any]:  # fmt: skip
        """JSON as ``POST /blueprints``, or an osbuild blueprint (Content-Type application/toml or text/x-toml)."""
        raw = await request.body()
        if request.content_type[0] in TOML_TYPES:
            images = [{"architecture": architecture, "image_type": kind} for kind in image_type or [DEFAULT_IMAGE_TYPE]]
            body = validate_blueprint(body_from_toml(raw, images))
        else:
            body = validate_blueprint(raw)
        body = await sealed(body)
        blueprint_id = await state.backend.blueprints.create(request.user.org_id, body, _actor(request.user))
        return {"id": blueprint_id, "version": 1, "blueprint": body_dict(body)}

    @post("/{blueprint_id:str}/compose", status_code=201, request_max_body_size=MAX_BODY)
    async def compose(self, blueprint_id: FromPath[str], request: Request[Principal, str, State], state: State) -> dict[str, Any]:
        """Compose a version (the latest unless ``version`` is given) with all its images, or
        the chosen ``image_types`` and ``upload_targets``; recorded as ``POST /compose`` records."""
        choice = parse_compose_choice(await request.body())
        principal = request.user
        compose_id, version = await state.backend.blueprints.compose(principal.org_id, blueprint_id, choice, _actor(principal))
        return {"id": compose_id, "blueprint_id": blueprint_id, "blueprint_version": version}

    @get("/{blueprint_id:str}/composes")
    async def composes(
        self, blueprint_id: FromPath[str], request: Request[Principal, str, State], state: State,
        limit: int = Parameter(default=PAGE_LIMIT, ge=1, le=PAGE_LIMIT),
        cursor: str | None = Parameter(default=None, description="next_cursor of the page before"),
        blueprint_version: int | None = Parameter(default=None, ge=1),
    ) -> dict[str, Any]:  # fmt: skip
        """The composes made from this blueprint, newest first, paged as the history is."""
        org_id = request.user.org_id
        await state.backend.blueprints.views.require(org_id, blueprint_id)
        where = HistoryFilter(blueprint_id=blueprint_id, blueprint_version=blueprint_version)
        page = await state.backend.history.page(org_id, where, limit, cursor)
        return history_page(page, f"{PREFIX}/blueprints/{blueprint_id}/composes", request.query_params.items())


def _actor(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, org_id=principal.org_id, client=principal.client_id)


def _link(query: dict[str, str], limit: int, offset: int) -> str:
    return f"{PREFIX}/blueprints?{urlencode({**query, 'limit': limit, 'offset': offset})}"


def _summary(item: BlueprintSummary) -> dict[str, Any]:
    return {
        "id": item.blueprint_id,
        "name": item.name,
        "description": item.description,
        "version": item.latest_version,
        "created_at": item.created_at.isoformat(),
        "last_modified_at": item.updated_at.isoformat(),
    }


def _version(found: BlueprintVersion) -> dict[str, Any]:
    return {
        "id": found.blueprint_id,
        "version": found.version,
        "latest_version": found.latest_version,
        "created_at": found.created_at.isoformat(),
        "last_modified_at": found.version_created_at.isoformat(),
        **found.body,
    }

