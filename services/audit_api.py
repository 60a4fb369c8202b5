"""The audit log over HTTP: ``GET {prefix}/audit/events`` and ``GET {prefix}/audit/verify``.

Both services serve it for their own event store: the backend at
``/api/image-builder/v1/audit`` (image-builder-db), the composer at
``/api/image-builder-composer/v2/audit`` (composer-db).

Who reads what:

- role ``auditor``: the events of the caller's org, i.e. whose actor is of
  that org (both services record a compose's events, including the ones the
  service itself causes, under the compose's org);
- a service-wide auditor, holding roles ``auditor`` and ``admin`` in the
  operator org (``IMAGE_BUILDER_OPERATOR_ORG``; unset, there is none): every
  org's events, narrowed with ``org_id=`` if wanted;
- anyone else: 403. These routes only read, and ``auditor`` is none of the
  roles a writing route accepts, so an auditor's token can read, never write.

Events come in global order, a page at a time, cursor = the position of the
last event shown. ``/verify`` walks the whole store's hash chain (it links
every org's events, so it is checked as one) and reports it intact or names
the first broken position, like ``image-builder audit verify``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromQuery, Parameter

from events.envelope import EventEnvelope, as_utc
from events.filters import EventFilter
from events.store import EventStore
from services.identity.guards import MissingRole, require_roles
from services.identity.principal import Principal

PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[EventEnvelope]
    # None on the last page.
    next_cursor: int | None


class AuditLog:
    def __init__(self, store: EventStore, operator_org: str | None = None) -> None:
        self.store = store
        self.operator_org = operator_org

    def sees_every_org(self, principal: Principal) -> bool:
        return (
            self.operator_org is not None
            and principal.org_id == self.operator_org
            and principal.has_role("auditor")
            and principal.has_role("admin")
        )

    def scoped(self, principal: Principal, where: EventFilter) -> EventFilter:
        """The filter narrowed to what the caller may read."""
        if self.sees_every_org(principal):
            return where
        if where.org_id is not None and where.org_id != principal.org_id:
            raise MissingRole("only a service-wide auditor reads another org's events")
        return msgspec.structs.replace(where, org_id=principal.org_id)

    async def page(self, principal: Principal, where: EventFilter, after: int, limit: int) -> AuditPage:
        # One more than asked: whether a next page exists, without counting.
        found = await self.store.read_all(after, limit + 1, self.scoped(principal, where))
        shown = found[:limit]
        return AuditPage(events=shown, next_cursor=shown[-1].position if len(found) > limit else None)


def audit_controller(prefix: str, audit_log: Callable[[State], AuditLog]) -> type[Controller]:
    """The audit routes under ``prefix``, reading the AuditLog that ``audit_log`` finds in the app's state."""

    class AuditController(Controller):
        path = f"{prefix}/audit"
        guards = [require_roles("auditor")]
        tags = ["audit"]

        @get("/events")
        async def events(
            self, request: Request[Principal, str, State], state: State,
            limit: int = Parameter(default=PAGE_LIMIT, ge=1, le=MAX_PAGE_LIMIT),
            cursor: int = Parameter(default=0, ge=0, description="meta.next_cursor of the page before"),
            stream_type: FromQuery[str | None] = None, stream_id: FromQuery[str | None] = None,
            event_type: FromQuery[str | None] = None,
            actor: str | None = Parameter(default=None, description="the actor's subject"),
            correlation_id: FromQuery[str | None] = None,
            occurred_after: FromQuery[datetime | None] = None, occurred_before: FromQuery[datetime | None] = None,
            org_id: str | None = Parameter(default=None, description="service-wide auditors: one org only"),
        ) -> dict[str, Any]:  # fmt: skip
            """The event log, oldest first: the caller's org (a service-wide auditor: every org)."""
            where = EventFilter(
                event_types=(event_type,) if event_type else (), stream_types=(stream_type,) if stream_type else (),
                stream_id=stream_id, org_id=org_id, actor_subject=actor, correlation_id=correlation_id,
                occurred_after=None if occurred_after is None else as_utc(occurred_after),
                occurred_before=None if occurred_before is None else as_utc(occurred_before),
            )  # fmt: skip
            page = await audit_log(state).page(request.user, where, cursor, limit)
            query = {key: value for key, value in request.query_params.items() if key != "cursor"}
            links = {"first": _link(request, query)}
            if page.next_cursor is not None:
                links["next"] = _link(request, {**query, "cursor": str(page.next_cursor)})
            return {
                "meta": {"count": len(page.events), "next_cursor": page.next_cursor},
                "links": links,
                "data": [audit_item(event) for event in page.events],
            }

        @get("/verify")
        async def verify(self, state: State) -> dict[str, Any]:
            """Walk the hash chain: intact, or the first position where it breaks and why."""
            return msgspec.to_builtins(await audit_log(state).store.verify())

    return AuditController


def audit_item(event: EventEnvelope) -> dict[str, Any]:
    return {
        "position": event.position,
        "event_id": str(event.event_id),
        "stream": {"type": event.stream_type, "id": event.stream_id},
        "version": event.stream_version,
        "type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": msgspec.to_builtins(event.actor),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": event.payload,
        "hash": event.hash,
    }


def _link(request: Request[Any, Any, Any], query: dict[str, str]) -> str:
    return request.url.path + (f"?{urlencode(query)}" if query else "")
