"""Keeping the build history current from the composer's events, never by asking it.

Runs as the handler of a ConsumerRunner on ``composer.events.v1``: the inbox
row and everything written here commit in one transaction of image-builder-db,
so each composer event takes effect once however often it is delivered.

- ``ComposeRequested`` from our own service client, whose Idempotency-Key is
  one of our compose ids in the same org: the composer took that compose, so
  ComposeSubmitted is recorded (if the submitter has not already). This also
  covers a submitter that crashed before it heard the composer's answer.
- ``ComposeStatusChanged`` of a composer compose we know: recorded in our
  compose's own stream as ComposeStatusRecorded, and the history row moves.
- ``UploadStatusChanged`` of a composer compose we know: recorded as
  ComposeUploadRecorded, with the upload's result (download URL, or AMI and
  region), which ``GET /composes/{id}`` shows.

Everything else on the topic (jobs, other clients' composes) is not ours.
The composer keys messages by stream id, so one compose's events arrive in
order: its ComposeRequested before any of its status changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from domain.composes import ComposeRequested, ComposeStatusChanged, UploadStatusChanged
from domain.compose_history import HistoryEvent
from domain.events import event_from
from events.envelope import EventEnvelope
from events.statements import Transaction
from events.store import EventStore, UnitOfWork
from services.backend.records import ComposeNotFound, backend_actor, load_compose, record
from services.backend.tables import composes

log = logging.getLogger(__name__)

CONSUMER_NAME = "backend-compose-history"
FOLLOWED = ("ComposeRequested", "ComposeStatusChanged", "UploadStatusChanged")


class ComposerEvents:
    def __init__(
        self, store: EventStore, composer_client_id: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.store = store
        # Only composes this client submitted can be ours.
        self.composer_client_id = composer_client_id
        self.clock = clock

    async def __call__(self, envelope: EventEnvelope, tx: Transaction) -> None:
        if envelope.stream_type != "compose" or envelope.event_type not in FOLLOWED:
            return
        uow = UnitOfWork(self.store, tx.connection, driver=tx.driver)
        event = event_from(envelope.event_type, envelope.payload)
        if isinstance(event, ComposeRequested):
            await self._submitted(uow, envelope, event)
        elif isinstance(event, ComposeStatusChanged | UploadStatusChanged):
            await self._reported(uow, envelope, event)

    async def _submitted(self, uow: UnitOfWork, envelope: EventEnvelope, event: ComposeRequested) -> None:
        if event.idempotency_key is None or envelope.actor.client != self.composer_client_id:
            return
        try:
            compose = await load_compose(uow, event.idempotency_key, event.org_id)
        except ComposeNotFound:
            return
        accepted = compose.accept(envelope.stream_id)
        if accepted is not None:
            await record(uow, compose, accepted, backend_actor(compose.org_id), causation_id=str(envelope.event_id), now=self.clock())
            log.info("compose %s accepted as composer compose %s", compose.compose_id, envelope.stream_id,
                     extra={"compose_id": compose.compose_id, "org_id": compose.org_id})  # fmt: skip

    async def _reported(
        self, uow: UnitOfWork, envelope: EventEnvelope, event: ComposeStatusChanged | UploadStatusChanged
    ) -> None:
        query = sa.select(composes.c.compose_id).where(composes.c.composer_id == envelope.stream_id)
        compose_id = await uow.connection.scalar(query)
        if compose_id is None:
            return
        compose = await load_compose(uow, compose_id)
        if isinstance(event, ComposeStatusChanged):
            recorded: HistoryEvent = compose.record_status(event.status, event.upload_status, event.error)
        else:
            recorded = compose.record_upload(event.image_index, event.target_index, event.type, event.status, event.options)
        await record(uow, compose, recorded, backend_actor(compose.org_id), causation_id=str(envelope.event_id), now=self.clock())
