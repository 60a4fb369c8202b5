"""Prometheus metrics of a composer replica.

Queue depth is read from the jobs projection when scraped, so every replica
reports the same numbers; counters and histograms count this replica's work.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from events.engine import reading
from services.composer.tables import jobs


class ComposerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge("composer_jobs", "Jobs by status, type and tenant", ["status", "type", "tenant"], registry=self.registry)
        self.claims = Counter("composer_claims", "Jobs claimed by workers", ["type"], registry=self.registry)
        self.requeues = Counter("composer_requeues", "Jobs requeued or failed after a lapsed lease", registry=self.registry)
        self.wait_seconds = Histogram(
            "composer_job_wait_seconds", "From enqueue to claim", ["type"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600),
        )  # fmt: skip
        self.run_seconds = Histogram(
            "composer_job_run_seconds", "From claim to result", ["type", "status"], registry=self.registry,
            buckets=(0.1, 1, 5, 30, 60, 300, 900, 1800, 3600, 7200),
        )  # fmt: skip

    def concluded(self, job_type: str, status: str, seconds: float) -> None:
        self.run_seconds.labels(type=job_type, status=status).observe(seconds)

    def claimed(self, job_type: str, enqueued_at: datetime) -> None:
        self.claims.labels(type=job_type).inc()
        self.wait_seconds.labels(type=job_type).observe((datetime.now(UTC) - enqueued_at).total_seconds())

    async def render(self, engine: AsyncEngine) -> bytes:
        query = (
            sa.select(jobs.c.status, jobs.c.job_type, jobs.c.channel, sa.func.count())
            .where(jobs.c.status.in_(("pending", "running")))
            .group_by(jobs.c.status, jobs.c.job_type, jobs.c.channel)
        )
        async with reading(engine) as conn:
            rows = (await conn.execute(query)).all()
        self.jobs.clear()
        for status, job_type, channel, count in rows:
            self.jobs.labels(status=status, type=job_type, tenant=channel).set(count)
        return generate_latest(self.registry)
