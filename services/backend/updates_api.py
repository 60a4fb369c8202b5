"""``GET /composes/updates``: the caller's build history as it changes, as server-sent events.

Events (``data`` is JSON):

- ``ready`` once subscribed: whatever the client read before may be stale,
  so a page reads its rows again now, and hears of every later change.
- ``compose``: a compose of the caller's org changed; ``data`` is its row
  (``id, image_name, status, upload_status, error``), read from the history.
- ``removed``: the compose was deleted (``{"id"}``).
- ``reset``: the client fell behind and changes were dropped; read afresh.

A comment every ``HEARTBEAT`` seconds keeps proxies from cutting an idle
stream and lets the server notice a client that left. The stream ends after
``LIFETIME`` seconds: the browser's EventSource reconnects by itself (after
``retry`` ms), and the bearer token is checked again then, so a stream never
outlives its token by long.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.response import ServerSentEvent, ServerSentEventMessage

from services.backend.history import HistoryEntry, HistoryViews
from services.backend.history_updates import HistoryUpdates
from services.backend.paths import PREFIX
from services.backend.records import ComposeNotFound
from services.identity.guards import require_roles
from services.identity.principal import Principal

HEARTBEAT = 15.0
LIFETIME = 300.0
RETRY_MS = 2000


class HistoryUpdatesController(Controller):
    path = PREFIX
    guards = [require_roles("user", "admin")]
    tags = ["composes"]

    @get("/composes/updates")
    async def updates(self, request: Request[Principal, str, State], state: State) -> ServerSentEvent:
        """Server-sent events naming each compose of the caller's org as it changes (see the module's doc)."""
        changes = history_changes(state.backend.updates, state.backend.history, request.user.org_id)
        # No caching, and no buffering by nginx-like proxies: each event must go out at once.
        return ServerSentEvent(changes, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def history_changes(
    updates: HistoryUpdates, history: HistoryViews, org_id: str, *,
    heartbeat: float = HEARTBEAT, lifetime: float = LIFETIME,
) -> AsyncIterator[ServerSentEventMessage]:  # fmt: skip
    ends_at = time.monotonic() + lifetime
    with updates.subscribe(org_id) as subscription:
        yield ServerSentEventMessage(event="ready", data="{}", retry=RETRY_MS)
        while (left := ends_at - time.monotonic()) > 0:
            compose_id = await subscription.next(min(heartbeat, left))
            if subscription.take_lost():
                yield ServerSentEventMessage(event="reset", data="{}")
            elif compose_id is None:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
            else:
                yield await _change(history, org_id, compose_id)


async def _change(history: HistoryViews, org_id: str, compose_id: str) -> ServerSentEventMessage:
    try:
        entry = await history.compose(org_id, compose_id)
    except ComposeNotFound:
        return ServerSentEventMessage(event="removed", data=_json({"id": compose_id}))
    return ServerSentEventMessage(event="compose", data=_json(_row(entry)))


def _row(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.compose_id,
        "image_name": entry.image_name,
        "status": entry.status.value,
        "upload_status": entry.upload_status.value,
        "error": None if entry.error is None else msgspec.to_builtins(entry.error),
    }


def _json(value: dict[str, Any]) -> str:
    return msgspec.json.encode(value).decode()
