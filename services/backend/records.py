"""Storing the backend's compose events together with their history rows.

Every change goes through ``record``: apply the event to the aggregate, append
it to the compose's stream at the version it was loaded at, and write the
history row from the aggregate's new state, all in one unit of work.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
    state = {
        "submission": compose.submission.value,
        "composer_id": compose.composer_id,
        "status": compose.status.value,
        "upload_status": compose.upload_status.value,
        "error": None if compose.error is None else msgspec.json.encode(compose.error).decode(),
        "deleted": compose.deleted,
        "version": compose.version,
        "updated_at": moment,
    }
    if isinstance(event, ComposeRequested):
        request = compose.compose_request
        await uow.connection.execute(
            composes.insert().values(
                compose_id=compose.compose_id, org_id=compose.org_id, image_name=request.get("image_name"),
                distribution=request["distribution"], request=msgspec.json.encode(request).decode(),
                blueprint_id=compose.blueprint_id, blueprint_version=compose.blueprint_version,
                created_at=moment, **state,
            )
        )  # fmt: skip
        await uow.connection.execute(
            compose_images.insert(),
            [
                {"compose_id": compose.compose_id, "image_index": index, "image_type": image["image_type"],
                 "architecture": image["architecture"]}
                for index, image in enumerate(request["image_requests"])
            ],
        )  # fmt: skip
    else:
        await uow.connection.execute(composes.update().where(composes.c.compose_id == compose.compose_id).values(**state))
