"""Read side of the compose API: a tenant's composes, their jobs, logs and artifacts.

Everything is scoped to one org: a compose of another org, or a deleted one,
is simply not found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.composes import ComposeStatus, UploadStatus
from domain.jobs import JobError, JobStatus, JobType
from events.engine import reading
from services.composer.records import from_json
from services.composer.tables import artifacts, composes, job_logs, jobs


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    job_type: JobType
    status: JobStatus
    args: dict[str, Any]
    result: dict[str, Any] | None
    error: JobError | None
    progress: dict[str, Any] | None


class ComposeRow(msgspec.Struct, frozen=True, kw_only=True):
    compose_id: str
    org_id: str
    request: dict[str, Any]
    status: ComposeStatus
    upload_status: UploadStatus
    error: JobError | None
    jobs_done: int
    jobs_total: int
    created_at: datetime


class ArtifactRow(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    sha256: str
    size: int


class ComposeNotFound(LookupError):
    def __init__(self, compose_id: str) -> None:
        super().__init__(f"compose {compose_id} not found")
        self.compose_id = compose_id


class ComposeViews:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def compose(self, org_id: str, compose_id: str) -> ComposeRow:
        query = sa.select(composes).where(
            composes.c.compose_id == compose_id, composes.c.org_id == org_id, composes.c.deleted.is_(False)
        )
        async with reading(self.engine) as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise ComposeNotFound(compose_id)
        return _compose_row(row)

    async def composes(self, org_id: str, limit: int, offset: int) -> list[ComposeRow]:
        query = (
            sa.select(composes)
            .where(composes.c.org_id == org_id, composes.c.deleted.is_(False))
            .order_by(composes.c.created_at.desc(), composes.c.compose_id)
            .limit(limit)
            .offset(offset)
        )
        async with reading(self.engine) as conn:
            return [_compose_row(row) for row in await conn.execute(query)]

    async def jobs(self, org_id: str, compose_id: str) -> list[JobRow]:
        await self.compose(org_id, compose_id)
        query = sa.select(jobs).where(jobs.c.compose_id == compose_id).order_by(jobs.c.enqueued_at, jobs.c.job_id)
        async with reading(self.engine) as conn:
            return [
                JobRow(
                    job_id=r.job_id, job_type=JobType(r.job_type), status=JobStatus(r.status),
                    args=from_json(r.args), result=from_json(r.result),
                    error=None if r.error is None else msgspec.json.decode(r.error, type=JobError),
                    progress=from_json(r.progress),
                )
                for r in await conn.execute(query)
            ]  # fmt: skip

    async def logs(self, org_id: str, compose_id: str) -> dict[str, list[str]]:
        """Log lines per job so far, in the order they were written."""
        found = {job.job_id: [] for job in await self.jobs(org_id, compose_id)}
        query = (
            sa.select(job_logs.c.job_id, job_logs.c.line)
            .where(job_logs.c.job_id.in_(list(found)))
            .order_by(job_logs.c.line_id)
        )
        async with reading(self.engine) as conn:
            for job_id, line in await conn.execute(query):
                found[job_id].append(line)
        return found

    async def artifacts(self, org_id: str, compose_id: str) -> list[ArtifactRow]:
        await self.compose(org_id, compose_id)
        query = sa.select(artifacts).where(artifacts.c.compose_id == compose_id).order_by(artifacts.c.name)
        async with reading(self.engine) as conn:
            return [ArtifactRow(name=r.name, sha256=r.sha256, size=r.size) for r in await conn.execute(query)]


def _compose_row(row: sa.Row) -> ComposeRow:
    return ComposeRow(
        compose_id=row.compose_id, org_id=row.org_id, request=from_json(row.request),
        status=ComposeStatus(row.status), upload_status=UploadStatus(row.upload_status),
        error=None if row.error is None else msgspec.json.decode(row.error, type=JobError),
        jobs_done=row.jobs_done, jobs_total=row.jobs_total, created_at=row.created_at,
    )  # fmt: skip
