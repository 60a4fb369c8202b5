"""``/images/new``: the create-image form, one step per page, posted to ``POST /compose``.

Every step posts the whole form (see compose_form.py), so the server keeps
nothing between steps. "Create image" on the review step posts the compose
request; "Save blueprint" posts it as a blueprint (``POST /blueprints``, or
``PUT /blueprints/{id}`` for the next version of one being edited). A 400
from the API sends the user back to the first step with a problem, each
error next to its field and all of them in a summary on top.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template

from services.frontend.backend_api import ApiError, BackendUnavailable, UserApi
from services.frontend.compose_form import STEP_KEYS, STEPS, TARGETS, ComposeForm, words
from services.frontend.form_errors import input_for, step_of
from services.frontend.pages import page
from services.frontend.presenters import IMAGE_TYPE_LABELS
from services.frontend.session import user_api

MAX_FORM = 2 * 1024 * 1024
PACKAGE_RESULTS = 20


class CreateImageController(Controller):
    path = "/images/new"

    @get("/")
    async def first_step(self, request: Request[Any, Any, State], state: State) -> Template:
        api = user_api(request)
        return await wizard_step(request, state, api, ComposeForm(), "image")

    @post("/", request_max_body_size=MAX_FORM)
    async def next_step(self, request: Request[Any, Any, State], state: State) -> Template | Redirect:
        """Move between steps ("go"), add a row ("add"), create the image (go=create) or save a blueprint (go=save)."""
        api = user_api(request)
        posted = await request.form()
        form = ComposeForm.from_form(posted)
        if (kind := posted.get("add")) in ("users", "files"):
            form.add_row(kind)
            focus = f"{kind}-{len(getattr(form, kind)) - 1}-{'name' if kind == 'users' else 'path'}"
            return await wizard_step(request, state, api, form, kind, focus=focus)
        query = str(posted.get("package_search") or "").strip()
        if (package := posted.get("add_package")) and isinstance(package, str):
            form.packages = f"{form.packages.rstrip()}\n{package}".strip()
        if "find" in posted or package:
            return await wizard_step(request, state, api, form, "packages", packages=await _find_packages(api, form, query))
        go = posted.get("go")
        if go == "save":
            return await _save_blueprint(request, state, api, form)
        if go != "create":
            return await wizard_step(request, state, api, form, go if go in STEP_KEYS else "image")
        try:
            created = await api.post("/compose", form.compose_request())
        except ApiError as refused:
            return await _refused(request, state, api, form, refused)
        return Redirect(f"/images/{created['id']}?created=1", status_code=303)


class PackageSearch(msgspec.Struct, frozen=True, kw_only=True):
    """What the packages step shows of a search: the matches, or why there are none."""

    query: str
    found: list[dict[str, Any]] = msgspec.field(default_factory=list)
    count: int = 0
    message: str | None = None


async def _find_packages(api: UserApi, form: ComposeForm, query: str) -> PackageSearch:
    if not query:
        return PackageSearch(query=query, message="Type part of a package name to search for.")
    try:
        found = await api.get("/packages", distribution=form.distribution, architecture=form.architecture,
                              search=query, limit=PACKAGE_RESULTS)  # fmt: skip
    except (ApiError, BackendUnavailable) as error:
        return PackageSearch(query=query, message=f"Package search is unavailable: {error}")
    count = found["meta"]["count"]
    message = None if count else f"No package of {form.distribution} has {query!r} in its name."
    return PackageSearch(query=query, found=found["data"], count=count, message=message)


async def _save_blueprint(request: Request[Any, Any, State], state: State, api: UserApi, form: ComposeForm) -> Template | Redirect:
    try:
        if form.blueprint_id:
            saved = await api.put(f"/blueprints/{form.blueprint_id}", form.blueprint_body())
        else:
            saved = await api.post("/blueprints", form.blueprint_body())
    except ApiError as refused:
        return await _refused(request, state, api, form, refused)
    return Redirect(f"/blueprints/{saved['id']}?saved={saved['version']}", status_code=303)


async def _refused(request: Request[Any, Any, State], state: State, api: UserApi, form: ComposeForm, refused: ApiError) -> Template:
    errors: dict[str, str] = {}
    general: list[str] = []
    for field, reason in refused.field_errors().items():
        name = input_for(form, field)
        if name:
            errors.setdefault(name, reason)
        else:
            general.append(reason)
    if not refused.field_errors():
        general.append(refused.reason)
    steps = [step_of(name) for name in errors] or ["review"]
    first = min(steps, key=STEP_KEYS.index)
    return await wizard_step(request, state, api, form, first, errors=errors, general=general, status_code=refused.status)


async def wizard_step(
    request: Request[Any, Any, State], state: State, api: UserApi, form: ComposeForm, step: str, *,
    errors: dict[str, str] | None = None, general: list[str] | None = None, focus: str | None = None,
    status_code: int = 200, packages: PackageSearch | None = None,
) -> Template:  # fmt: skip
    index = STEP_KEYS.index(step)
    catalog = await state.frontend.catalog.view(api)
    preview = form.compose_request()
    options = preview["image_requests"][0]["upload_targets"][0].get("upload_options") or {}
    return page(
        request, "create.html", section="blueprints" if form.purpose == "blueprint" else "create", form=form, step=step, steps=STEPS, index=index,
        previous=STEP_KEYS[index - 1] if index > 0 else None,
        next=STEP_KEYS[index + 1] if index + 1 < len(STEP_KEYS) else None,
        errors=errors or {}, general=general or [], step_of=step_of, targets=TARGETS, image_type_labels=IMAGE_TYPE_LABELS,
        distribution_options=[(d.name, d.description) for d in catalog.distributions],
        architecture_options=[(a, a) for a in catalog.architectures],
        image_type_options=[(t, IMAGE_TYPE_LABELS.get(t, t)) for t in catalog.image_types],
        target_options=[f"{name}: {_shown(value)}" for name, value in options.items()],
        request_preview=preview, focus=focus, package_search=packages, chosen=set(words(form.packages)),
        status_code=status_code,
    )  # fmt: skip


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
