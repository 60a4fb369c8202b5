"""Handing recorded composes to the composer until it has taken each of them.

A compose is recorded first (ComposeRequested) and submitted afterwards, from
here: at start (composes a crashed replica recorded but never handed over),
whenever a new compose commits, and every ``poll_interval`` seconds. Each call
carries the backend's compose id as the Idempotency-Key, so a call whose
answer was lost, or two replicas submitting the same compose, still make one
composer compose. While the composer cannot be reached the submitter backs
off (0.5 s doubling up to ``max_backoff``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.compose_history import ComposeRuleBroken
from events.engine import reading
from services.backend.composer_client import Accepted, ComposerUnavailable, ComposerUnreachable, Refused
from services.backend.composes import Composes
from services.backend.tables import UNSUBMITTED, composes

log = logging.getLogger(__name__)


class Composer(Protocol):
    async def submit(self, compose_id: str, org_id: str, request: dict[str, Any]) -> Accepted | Refused: ...


class SubmitReport(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int = 0
    refused: int = 0
    failed: int = 0


class Submitter:
    def __init__(
        self, engine: AsyncEngine, composes: Composes, composer: Composer, *,
        poll_interval: float = 30.0, max_backoff: float = 30.0, batch_size: int = 100,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.composes = composes
        self.composer = composer
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            # The flag as well as the cancel: code the loop awaits (a client
            # library's retries, Python 3.11's wait_for) may swallow a
            # cancellation, and then the next turn of the loop still ends it.
            self._stopping = True
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit_pending(self) -> SubmitReport:
        """One pass over the composes not yet handed over, oldest first."""
        accepted = refused = failed = 0
        for compose_id, org_id, request in await self._pending():
            try:
                outcome = await self.composer.submit(compose_id, org_id, msgspec.json.decode(request))
            except ComposerUnreachable as error:
                log.warning("composer unreachable, compose %s waits: %s", compose_id, error, extra=_ids(compose_id, org_id))
                return SubmitReport(accepted=accepted, refused=refused, failed=failed + 1)
            except ComposerUnavailable as error:
                log.warning("composer did not take compose %s yet: %s", compose_id, error, extra=_ids(compose_id, org_id))
                failed += 1
                continue
            try:
                if isinstance(outcome, Accepted):
                    await self.composes.accepted(compose_id, outcome.composer_id)
                    accepted += 1
                else:
                    await self.composes.refused(compose_id, outcome.reason, outcome.details)
                    refused += 1
                    log.warning("composer refused compose %s: %s", compose_id, outcome.reason, extra=_ids(compose_id, org_id))
            except ComposeRuleBroken as error:
                # The consumer of the composer's events may have recorded it first; anything else is a bug to see.
                log.error("compose %s: %s", compose_id, error, extra=_ids(compose_id, org_id))
        return SubmitReport(accepted=accepted, refused=refused, failed=failed)

    async def _pending(self) -> list[tuple[str, str, str]]:
        query = (
            sa.select(composes.c.compose_id, composes.c.org_id, composes.c.request)
            .where(sa.text(UNSUBMITTED))  # verbatim, so the partial index applies
            .order_by(composes.c.created_at)
            .limit(self.batch_size)
        )
        async with reading(self.engine) as conn:
            return [tuple(row) for row in await conn.execute(query)]

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            self._wake.clear()
            try:
                report = await self.submit_pending()
            except Exception:  # noqa: BLE001 - the database may be away; keep trying
                log.exception("submitting composes failed")
                report = SubmitReport(failed=1)
            if report.failed:
                delay, backoff = backoff, min(backoff * 2, self.max_backoff)
            elif report.accepted + report.refused == self.batch_size:
                continue  # a full batch: more may be waiting
            else:
                delay, backoff = self.poll_interval, 0.5
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a
            # cancellation that arrives as the wake-up does, and the stopping
            # service then waits for this loop for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()


def _ids(compose_id: str, org_id: str) -> dict[str, str]:
    return {"compose_id": compose_id, "org_id": org_id}
