"""The backend's compose commands: a user requests or deletes, the submitter reports.

Each is one unit of work on image-builder-db: load the compose (its history
row locked), let the aggregate decide, record the event with its row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from domain.compose_history import Compose
from events.envelope import Actor
from events.store import EventStore
from services.backend.quotas import QuotaPolicy, admit
from services.backend.records import ComposeNotFound, backend_actor, load_compose, record


class Composes:
    def __init__(
        self,
        store: EventStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_requested: Callable[[], None] = lambda: None,
        quota: QuotaPolicy | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.quota = quota or QuotaPolicy()
        # Wakes the submitter once a new compose has committed.
        self.on_requested = on_requested

    async def request(
        self, org_id: str, request: dict[str, Any], actor: Actor, blueprint: tuple[str, int] | None = None
    ) -> str:
        """Record a validated compose request (made from ``blueprint``, an (id, version), if given);
        the submitter hands it to the composer."""
        compose_id = str(uuid.uuid4())
        requested = Compose.request(compose_id, org_id, request, blueprint)
        async with self.store.unit_of_work() as uow:
            now = self.clock()
            # Counted and recorded in one unit of work, under the org's quota lock.
            await admit(uow.connection, self.quota, org_id, now)
            await record(uow, Compose(), requested, actor, now=now)
            uow.after_commit(self.on_requested)
        return compose_id

    async def delete(self, org_id: str, compose_id: str, actor: Actor) -> None:
        """Hide the compose from the history; its events stay."""
        async with self.store.unit_of_work() as uow:
            compose = await load_compose(uow, compose_id, org_id)
            if compose.deleted:
                raise ComposeNotFound(compose_id)
            await record(uow, compose, compose.delete(), actor, now=self.clock())

    async def accepted(self, compose_id: str, composer_id: str) -> bool:
        """The composer took the compose; False if that was already recorded."""
        async with self.store.unit_of_work() as uow:
            compose = await load_compose(uow, compose_id)
            event = compose.accept(composer_id)
            if event is None:
                return False
            await record(uow, compose, event, backend_actor(compose.org_id), now=self.clock())
            return True

    async def refused(self, compose_id: str, reason: str, details: Any) -> None:
        """The composer will never build it: the compose fails with the composer's reason."""
        async with self.store.unit_of_work() as uow:
            compose = await load_compose(uow, compose_id)
            await record(uow, compose, compose.refuse(reason, details), backend_actor(compose.org_id), now=self.clock())
