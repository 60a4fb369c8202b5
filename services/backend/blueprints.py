"""The backend's blueprint commands: create, add a version, delete, compose.

Each change is one unit of work on image-builder-db: load the blueprint (its
row locked), let the aggregate decide, record the event with its rows. A
compose from a blueprint is recorded by ``Composes.request``, exactly as
``POST /compose`` records one, with the blueprint's id and version on it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError

from domain.blueprint_body import (
    BlueprintBody,
    ComposeChoice,
    body_dict,
    compose_request_for,
)
from domain.blueprints import Blueprint
from domain.validation import validate_compose_request
from events.envelope import Actor
from events.store import EventStore
from services.backend.blueprint_records import (
    BlueprintNameTaken,
    check_name_free,
    load_blueprint,
    record,
)
from services.backend.blueprint_views import BlueprintViews
from services.backend.composes import Composes


class Blueprints:
    def __init__(
        self, store: EventStore, composes: Composes, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.store = store
        self.composes = composes
        self.views = BlueprintViews(store.engine)
        self.clock = clock

    async def create(self, org_id: str, body: BlueprintBody, actor: Actor) -> str:
        blueprint_id = str(uuid.uuid4())
        created = Blueprint.create(blueprint_id, org_id, body_dict(body))
        async with _name_guard(body.name), self.store.unit_of_work() as uow:
            await check_name_free(uow.connection, org_id, body.name)
            await record(uow, Blueprint(), created, actor, now=self.clock())
        return blueprint_id

    async def add_version(self, org_id: str, blueprint_id: str, body: BlueprintBody, actor: Actor) -> int:
        """Store ``body`` as the blueprint's next version; returns its number."""
        async with _name_guard(body.name), self.store.unit_of_work() as uow:
            blueprint = await load_blueprint(uow, blueprint_id, org_id)
            await check_name_free(uow.connection, org_id, body.name, blueprint_id)
            await record(uow, blueprint, blueprint.add_version(body_dict(body)), actor, now=self.clock())
        return blueprint.latest_version

    async def delete(self, org_id: str, blueprint_id: str, actor: Actor) -> None:
        """The blueprint is gone for its org (404 everywhere); its events and composes remain."""
        async with self.store.unit_of_work() as uow:
            blueprint = await load_blueprint(uow, blueprint_id, org_id)
            await record(uow, blueprint, blueprint.delete(), actor, now=self.clock())

    async def compose(self, org_id: str, blueprint_id: str, choice: ComposeChoice, actor: Actor) -> tuple[str, int]:
        """Record a compose of the chosen version's chosen images; returns the compose id and the version.

        Versions never change once stored, so reading one and recording the
        compose need not share a transaction.
        """
        version = await self.views.version(org_id, blueprint_id, choice.version)
        request = validate_compose_request(compose_request_for(version.body, choice))
        built: dict[str, Any] = msgspec.to_builtins(request)
        compose_id = await self.composes.request(org_id, built, actor, blueprint=(blueprint_id, version.version))
        return compose_id, version.version


@asynccontextmanager
async def _name_guard(name: str) -> AsyncIterator[None]:
    """A concurrent blueprint took the name after our check: the unique index refuses, and so do we."""
    try:
        yield
    except IntegrityError as error:
        # PostgreSQL names the index, SQLite the columns.
        if any(mark in str(error.orig) for mark in ("ix_backend_blueprints_name", "backend_blueprints.name")):
            raise BlueprintNameTaken(name) from error
        raise
