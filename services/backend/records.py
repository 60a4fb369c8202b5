"""Storing the backend's compose events together with their history rows.

Every change goes through ``record``: apply the event to the aggregate, append
it to the compose's stream at the version it was loaded at, and write the
history row from the aggregate's new state, all in one unit of work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from domain.compose_history import Compose, ComposeRequested, HistoryEvent
from domain.events import event_from
from events.envelope import Actor, NewEvent, Stream
from events.store import UnitOfWork
from services.backend.tables import compose_images, composes


class ComposeNotFound(LookupError):
    def __init__(self, compose_id: str) -> None:
        super().__init__(f"compose {compose_id} not found")
        self.compose_id = compose_id


def compose_stream(compose_id: str) -> Stream:
    return Stream("compose", compose_id)


def backend_actor(org_id: str) -> Actor:
    """The backend itself, acting for an org (submitting, recording the composer's reports)."""
    return Actor(subject="image-builder-backend", org_id=org_id, client="backend")


async def load_compose(uow: UnitOfWork, compose_id: str, org_id: str | None = None) -> Compose:
    """The compose, its history row locked for this unit of work; another org's is not found.

    Locking the row first serializes the API, the submitter and the consumer
    on one compose, so the version read below is the one appended at.
    """
    query = sa.select(composes.c.org_id).where(composes.c.compose_id == compose_id).with_for_update()
    owner = await uow.connection.scalar(query)
    if owner is None or (org_id is not None and owner != org_id):
        raise ComposeNotFound(compose_id)
    history = await uow.read_stream(compose_stream(compose_id))
    return Compose.replay(event_from(e.event_type, e.payload, HistoryEvent) for e in history)


async def record(
    uow: UnitOfWork, compose: Compose, event: HistoryEvent, actor: Actor, *,
    causation_id: str | None = None, now: datetime | None = None,
) -> None:  # fmt: skip
    version = compose.version
    compose.apply(event)
    moment = now or datetime.now(UTC)
    await uow.append(
        compose_stream(compose.compose_id),
        version,
        [
            NewEvent(
                event_type=event.event_type, payload=event.payload(), actor=actor, occurred_at=moment,
                correlation_id=compose.compose_id, causation_id=causation_id,
            )
        ],
    )  # fmt: skip
    if isinstance(event, ComposeRequested):
        await uow.connection.execute(composes.insert().values(**history_row(compose, created_at=moment, updated_at=moment)))
        await uow.connection.execute(compose_images.insert(), image_rows(compose))
    else:
        update = composes.update().where(composes.c.compose_id == compose.compose_id)
        await uow.connection.execute(update.values(**history_state(compose, updated_at=moment)))


def history_state(compose: Compose, *, updated_at: datetime) -> dict[str, Any]:
    """The history row's columns that follow the compose's events."""
    return {
        "submission": compose.submission.value,
        "composer_id": compose.composer_id,
        "status": compose.status.value,
        "upload_status": compose.upload_status.value,
        "error": None if compose.error is None else msgspec.json.encode(compose.error, order="sorted").decode(),
        "deleted": compose.deleted,
        "version": compose.version,
        "updated_at": updated_at,
    }


def history_row(compose: Compose, *, created_at: datetime, updated_at: datetime) -> dict[str, Any]:
    """The whole history row: created when the compose was requested (its first event's time).

    Request and error are stored as canonical JSON, as events hold them, so a replay writes the same bytes.
    """
    request = compose.compose_request
    return {
        "compose_id": compose.compose_id, "org_id": compose.org_id, "image_name": request.get("image_name"),
        "distribution": request["distribution"], "request": msgspec.json.encode(request, order="sorted").decode(),
        "blueprint_id": compose.blueprint_id, "blueprint_version": compose.blueprint_version,
        "created_at": created_at, **history_state(compose, updated_at=updated_at),
    }  # fmt: skip


def image_rows(compose: Compose) -> list[dict[str, Any]]:
    return [
        {"compose_id": compose.compose_id, "image_index": index, "image_type": image["image_type"],
         "architecture": image["architecture"]}
        for index, image in enumerate(compose.compose_request["image_requests"])
    ]  # fmt: skip
