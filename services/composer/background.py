"""The composer's background duties: cross-replica wake-ups and lease expiry."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from events.engine import is_postgres
from events.postgres import Listener
from services.composer.queue import READY_CHANNEL, JobQueue

log = logging.getLogger(__name__)


class QueueBackground:
    """Runs while a composer replica serves: LISTEN for ready jobs, expire lapsed leases.

    Another replica's ``NOTIFY composer_jobs_ready`` wakes this replica's
    long-polling workers; the sweep requeues jobs of workers that stopped
    heartbeating (the SQL picks lapsed rows with SKIP LOCKED, so replicas
    sweeping together do not collide).
    """

    def __init__(self, queue: JobQueue, sweep_interval: float = 5.0) -> None:
        self.queue = queue
        self.sweep_interval = sweep_interval
        postgres = is_postgres(queue.store.engine)
        self._listener = Listener(queue.store.engine, READY_CHANNEL, queue.ready.notify) if postgres else None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._listener is not None:
            await self._listener.start()
        self._task = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.stop()

    async def _sweep_forever(self) -> None:
        while True:
            try:
                if self._listener is not None and not self._listener.alive:
                    await self._listener.start()
                expired = await self.queue.expire_leases()
                if expired:
                    log.warning("requeued or failed %d jobs whose worker stopped responding", expired)
            except Exception:  # noqa: BLE001 - keep sweeping; the next pass retries
                log.exception("lease sweep failed")
            await asyncio.sleep(self.sweep_interval)
