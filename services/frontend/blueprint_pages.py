"""Blueprints: the list with search, one blueprint's versions, editing (a new version),
import of a JSON or osbuild TOML file, export, and building an image from one.

Creating and editing use the create-image form (create_pages.py), which
saves a blueprint instead of building when asked to; ``from_blueprint`` fills
it from the stored version.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from services.frontend.backend_api import ApiError
from services.frontend.compose_form import ComposeForm
from services.frontend.create_pages import wizard_step
from services.frontend.pages import page
from services.frontend.presenters import IMAGE_TYPE_LABELS, compose_view
from services.frontend.session import user_api

PAGE_SIZE = 20
MAX_FILE = 1024 * 1024
TOML_TYPE = "application/toml"


class BlueprintsController(Controller):
    path = "/blueprints"

    @get("/")
    async def listing(
        self, request: Request[Any, Any, State], q: FromQuery[str | None] = None, page_number: FromQuery[int] = 1
    ) -> Template:
        api = user_api(request)
        number = max(1, page_number)
        found = await api.get("/blueprints", name=(q or "").strip() or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        pages = max(1, -(-found["meta"]["count"] // PAGE_SIZE))
        query = {"q": q} if q else {}
        return page(
            request, "blueprints.html", section="blueprints", blueprints=found["data"], q=q or "",
            count=found["meta"]["count"], number=number, pages=pages,
            previous=urlencode({**query, "page_number": number - 1}) if number > 1 else None,
            next=urlencode({**query, "page_number": number + 1}) if number < pages else None,
        )  # fmt: skip

    @get("/new")
    async def new(self, request: Request[Any, Any, State], state: State) -> Template:
        return await wizard_step(request, state, user_api(request), ComposeForm(purpose="blueprint"), "image")

    @get("/import")
    async def import_form(self, request: Request[Any, Any, State]) -> Template:
        return _import_page(request)

    @post("/import", request_max_body_size=MAX_FILE + 64 * 1024)
    async def import_file(self, request: Request[Any, Any, State]) -> Template | Redirect:
        """A JSON body as the API exports it, or an osbuild blueprint (TOML) with the image type to build."""
        data = await request.form()
        upload = data.get("blueprint")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _import_page(request, errors=["Choose a blueprint file to import."], status_code=400)
        content = await upload.read(MAX_FILE + 1)
        if len(content) > MAX_FILE:
            return _import_page(request, errors=["The file is larger than 1 MiB."], status_code=400)
        image_type = str(data.get("image_type") or "guest-image")
        toml = upload.filename.endswith(".toml") or not content.lstrip().startswith(b"{")
        api = user_api(request)
        try:
            if toml:
                imported = await api.post_file("/blueprints/import", content, TOML_TYPE, image_type=image_type)
            else:
                imported = await api.post_file("/blueprints/import", content, "application/json")
        except ApiError as refused:
            reasons = [str(error.get("reason", "")) for error in refused.errors]
            return _import_page(request, errors=reasons, status_code=refused.status, filename=upload.filename)
        return Redirect(f"/blueprints/{imported['id']}?imported=1", status_code=303)

    @get("/{blueprint_id:str}")
    async def detail(
        self, blueprint_id: FromPath[str], request: Request[Any, Any, State], version: FromQuery[int | None] = None
    ) -> Template:
        api = user_api(request)
        shown, made = await asyncio.gather(
            api.get(f"/blueprints/{blueprint_id}", version=version),
            api.get(f"/blueprints/{blueprint_id}/composes", limit=PAGE_SIZE),
        )
        images = shown.get("image_requests") or []
        return page(
            request, "blueprint.html", section="blueprints", blueprint=shown, rows=[compose_view(i) for i in made["data"]],
            versions=list(range(shown["latest_version"], 0, -1)), image_types=[i.get("image_type") for i in images],
            image_type_labels=IMAGE_TYPE_LABELS, body_json=_pretty_body(shown),
            saved=request.query_params.get("saved"), imported=request.query_params.get("imported"),
        )  # fmt: skip

    @get("/{blueprint_id:str}/edit")
    async def edit(self, blueprint_id: FromPath[str], request: Request[Any, Any, State], state: State) -> Template:
        """The latest version in the create form: saving it stores the next version."""
        api = user_api(request)
        latest = await api.get(f"/blueprints/{blueprint_id}")
        form = ComposeForm.from_blueprint(blueprint_id, latest)
        form.purpose = "blueprint"
        return await wizard_step(request, state, api, form, "image")

    @get("/{blueprint_id:str}/export")
    async def export(
        self, blueprint_id: FromPath[str], request: Request[Any, Any, State],
        export_format: FromQuery[str] = "json", version: FromQuery[int | None] = None,
    ) -> Response[bytes]:  # fmt: skip
        fmt = "toml" if export_format == "toml" else "json"
        api = user_api(request)
        shown = await api.get(f"/blueprints/{blueprint_id}", version=version)
        media_type, content = await api.get_file(f"/blueprints/{blueprint_id}/export", format=fmt, version=version)
        name = f"{_file_name(shown['name'])}-v{shown['version']}.{fmt}"
        return Response(content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @post("/{blueprint_id:str}/build")
    async def build(self, blueprint_id: FromPath[str], request: Request[Any, Any, State]) -> Redirect:
        """An image from a version of the blueprint (the one shown), with all its image requests."""
        form = await request.form()
        version = str(form.get("version", ""))
        choice = {"version": int(version)} if version.isdigit() else {}
        made = await user_api(request).post(f"/blueprints/{blueprint_id}/compose", choice)
        return Redirect(f"/images/{made['id']}?created=1", status_code=303)

    @post("/{blueprint_id:str}/delete")
    async def remove(self, blueprint_id: FromPath[str], request: Request[Any, Any, State]) -> Redirect:
        await user_api(request).delete(f"/blueprints/{blueprint_id}")
        return Redirect("/blueprints?deleted=1", status_code=303)


def _import_page(
    request: Request[Any, Any, State], *, errors: list[str] | None = None, status_code: int = 200, filename: str = ""
) -> Template:
    return page(
        request, "blueprint_import.html", section="blueprints", errors=errors or [], status_code=status_code,
        filename=filename, image_types=list(IMAGE_TYPE_LABELS.items()),
    )  # fmt: skip


def _pretty_body(shown: dict[str, Any]) -> str:
    body = {key: shown[key] for key in ("name", "description", "distribution", "image_requests", "customizations") if key in shown}
    return json.dumps(body, indent=2)


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "blueprint"

