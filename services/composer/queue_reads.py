"""Reading the queue's projections: a compose's status, its jobs, a token's job and its artifacts."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.composes import ComposeStatus, DerivedStatus, UploadStatus
from domain.jobs import JobError, JobStatus, JobType, StaleToken
from events.engine import reading
from services.composer.artifacts import ArtifactNotFound
from services.composer.records import from_json, job_error
from services.composer.tables import artifacts, channels, composes, jobs


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    job_type: JobType
    status: JobStatus
    attempts: int
    worker_id: str | None
    result: dict[str, Any] | None
    error: JobError | None


class StoredArtifact(msgspec.Struct, frozen=True, kw_only=True):
    compose_id: str
    name: str
    sha256: str
    size: int


class QueueReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def compose_status(self, compose_id: str) -> DerivedStatus:
        async with reading(self.engine) as conn:
            row = (await conn.execute(sa.select(composes).where(composes.c.compose_id == compose_id))).first()
        if row is None:
            raise LookupError(f"no compose {compose_id}")
        return DerivedStatus(
            status=ComposeStatus(row.status), upload_status=UploadStatus(row.upload_status),
            error=job_error(row.error), done=row.jobs_done, total=row.jobs_total,
        )  # fmt: skip

    async def compose_jobs(self, compose_id: str) -> list[JobRecord]:
        async with reading(self.engine) as conn:
            rows = (
                await conn.execute(sa.select(jobs).where(jobs.c.compose_id == compose_id).order_by(jobs.c.job_id))
            ).all()
        return [
            JobRecord(
                job_id=r.job_id, job_type=JobType(r.job_type), status=JobStatus(r.status), attempts=r.attempts,
                worker_id=r.worker_id, result=from_json(r.result), error=job_error(r.error),
            )
            for r in rows
        ]  # fmt: skip

    async def compose_of(self, token: str) -> str:
        async with reading(self.engine) as conn:
            compose_id = await conn.scalar(
                sa.select(jobs.c.compose_id).where(jobs.c.token == token, jobs.c.status == JobStatus.RUNNING)
            )
        if compose_id is None:
            raise StaleToken("no job is held with this token")
        return compose_id

    async def artifact_for(self, token: str, name: str) -> StoredArtifact:
        """An artifact of the compose whose job is held with ``token``: an upload job fetches the build's image."""
        compose_id = await self.compose_of(token)
        query = sa.select(artifacts).where(artifacts.c.compose_id == compose_id, artifacts.c.name == name)
        async with reading(self.engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise ArtifactNotFound(compose_id, name)
        return StoredArtifact(compose_id=compose_id, name=name, sha256=row.sha256, size=row.size)

    async def job_status_probe(self) -> None:
        """Fails unless the queue's tables can be read (readiness)."""
        async with reading(self.engine) as conn:
            await conn.scalar(sa.select(sa.func.count()).select_from(channels))

    async def job_status(self, job_id: str) -> JobStatus:
        async with reading(self.engine) as conn:
            status = await conn.scalar(sa.select(jobs.c.status).where(jobs.c.job_id == job_id))
        if status is None:
            raise LookupError(f"no job {job_id}")
        return JobStatus(status)
