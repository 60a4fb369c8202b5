"""The images page (build history): filters, search, paging, and live status.

Rows come from ``GET /composes`` with the API's own filters and cursors; a
finished row's action (download, S3 link, AMI, error reason) needs the
compose's ``image_status``, so those rows are read one by one, at once.

Live status: the page opens an EventSource on ``/images/updates``, which
relays the backend's ``/composes/updates`` with the user's token, turning
each changed compose into its rendered row. On ``ready`` (after every
(re)connect) the page reads its rows again, so nothing that changed while it
was not listening is missed; after that only events arrive, no polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import (
    Redirect,
    ServerSentEvent,
    ServerSentEventMessage,
    Template,
)

from services.frontend.backend_api import (
    ApiError,
    BackendUnavailable,
    SignInAgain,
    UserApi,
)
from services.frontend.pages import page
from services.frontend.presenters import (
    FINISHED,
    STATUS_LABELS,
    ComposeView,
    compose_view,
)
from services.frontend.session import signed_in, user_api

PAGE_SIZE = 20
FILTERS = ("status", "distribution", "image_type", "q")


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    distribution: str | None = None
    image_type: str | None = None
    q: str | None = None

    def api_params(self) -> dict[str, str | None]:
        return {"status": self.status, "distribution": self.distribution, "image_type": self.image_type, "image_name": self.q}

    def query(self, **extra: str | None) -> str:
        values = {**msgspec.structs.asdict(self), **extra}
        return urlencode({name: value for name, value in values.items() if value})

    @property
    def any(self) -> bool:
        return any(msgspec.structs.astuple(self))


def _filters(status: str | None, distribution: str | None, image_type: str | None, q: str | None) -> Filters:
    return Filters(status=status or None, distribution=distribution or None, image_type=image_type or None, q=(q or "").strip() or None)


class ImagesController(Controller):
    @get("/")
    async def home(self) -> Redirect:
        return Redirect("/images")

    @get("/images")
    async def images(
        self, request: Request[Any, Any, State], state: State,
        status: FromQuery[str | None] = None, distribution: FromQuery[str | None] = None,
        image_type: FromQuery[str | None] = None, q: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None,
    ) -> Template:  # fmt: skip
        api = user_api(request)
        filters = _filters(status, distribution, image_type, q)
        catalog = await state.frontend.catalog.view(api)
        try:
            rows, next_cursor = await history_page(api, filters, cursor)
            error = None
        except ApiError as failed:
            rows, next_cursor, error = [], None, failed.reason
        return page(
            request, "images.html", section="images", rows=rows, filters=filters, error=error, cursor=cursor,
            next_query=filters.query(cursor=next_cursor) if next_cursor else None, first_query=filters.query(),
            rows_query=filters.query(cursor=cursor), catalog=catalog, statuses=list(STATUS_LABELS.items()),
        )  # fmt: skip

    @get("/images/rows")
    async def rows(
        self, request: Request[Any, Any, State],
        status: FromQuery[str | None] = None, distribution: FromQuery[str | None] = None,
        image_type: FromQuery[str | None] = None, q: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None,
    ) -> Template | Response[str]:  # fmt: skip
        """The table's rows alone, read afresh: what the live page swaps in after (re)connecting."""
        if signed_in(request) is None:
            return Response("sign in again", status_code=401, media_type="text/plain")
        rows, _ = await history_page(user_api(request), _filters(status, distribution, image_type, q), cursor)
        return page(request, "_rows.html", rows=rows)

    @get("/images/updates")
    async def updates(self, request: Request[Any, Any, State]) -> ServerSentEvent | Response[str]:
        """The backend's live history changes, relayed with each changed compose rendered as its row."""
        if signed_in(request) is None:
            return Response("sign in again", status_code=401, media_type="text/plain")
        engine = request.app.template_engine
        assert engine is not None  # the app has the frontend's template config
        render = engine.get_template("_row.html").render
        return ServerSentEvent(relay(user_api(request), render), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def history_page(api: UserApi, filters: Filters, cursor: str | None) -> tuple[list[ComposeView], str | None]:
    found = await api.get("/composes", limit=PAGE_SIZE, cursor=cursor, **filters.api_params())
    items: list[dict[str, Any]] = found["data"]
    rows = await asyncio.gather(*(_with_status(api, item) for item in items))
    return list(rows), found["meta"].get("next_cursor")


async def _with_status(api: UserApi, item: dict[str, Any]) -> ComposeView:
    """A finished compose's action needs its image_status: read it (the history item lacks it)."""
    if item.get("status") in FINISHED and "image_status" not in item:
        try:
            item = await api.get(f"/composes/{item['id']}")
        except ApiError:  # deleted meanwhile: show what the page read
            pass
    return compose_view(item)


async def relay(api: UserApi, render: Any) -> AsyncIterator[ServerSentEventMessage]:
    try:
        async with api.updates() as stream:
            async for message in stream:
                if message.event == "comment":
                    yield ServerSentEventMessage(comment=message.data or "keep-alive", data=None)
                elif message.event == "compose":
                    yield await _changed_row(api, render, msgspec.json.decode(message.data)["id"])
                elif message.event in ("ready", "reset", "removed"):
                    yield ServerSentEventMessage(event=message.event, data=message.data, retry=2000)
    except SignInAgain:
        yield ServerSentEventMessage(event="signed-out", data="{}")
    except (BackendUnavailable, ApiError):
        # The stream ends; the browser reconnects after ``retry`` and reads its rows again.
        return


async def _changed_row(api: UserApi, render: Any, compose_id: str) -> ServerSentEventMessage:
    try:
        item = await api.get(f"/composes/{compose_id}")
    except ApiError:
        return ServerSentEventMessage(event="removed", data=msgspec.json.encode({"id": compose_id}).decode())
    view = compose_view(item)
    body = {"id": view.id, "status": view.status, "status_label": view.status_label, "row": render(view=view)}
    return ServerSentEventMessage(event="compose", data=msgspec.json.encode(body).decode())
