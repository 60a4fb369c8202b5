"""The worker fleet: which workers registered, and when each was last seen."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.composer.tables import workers


class UnknownWorker(LookupError):
    def __init__(self, worker_id: str) -> None:
        super().__init__(f"worker {worker_id} is not registered by this client")
        self.worker_id = worker_id


class Fleet:
    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    async def register(self, name: str, arch: str, registered_by: str) -> str:
        worker_id = str(uuid.uuid4())
        now = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(
                workers.insert().values(
                    worker_id=worker_id, name=name, arch=arch, registered_by=registered_by,
                    registered_at=now, last_seen_at=now,
                )
            )  # fmt: skip
        return worker_id

    async def seen(self, worker_id: str, registered_by: str) -> str:
        """Record a sign of life; returns the worker's architecture."""
        async with self.engine.begin() as conn:
            arch = await conn.scalar(
                sa.select(workers.c.arch).where(workers.c.worker_id == worker_id, workers.c.registered_by == registered_by)
            )
            if arch is None:
                raise UnknownWorker(worker_id)
            await conn.execute(workers.update().where(workers.c.worker_id == worker_id).values(last_seen_at=self.clock()))
        return arch
