"""The composer's job queue on top of the event store.

Claiming is atomic: PostgreSQL locks the chosen job row with ``FOR UPDATE SKIP
LOCKED`` so racing claimers take different jobs; SQLite's single write lock
serializes claims. On top of that every job change appends to the job's stream
at its expected version, so a job can never be claimed twice.

Fairness: the ready job whose tenant (channel) was served longest ago goes
first, then the oldest job; each claim marks its channel served. One tenant's
thousand queued builds therefore alternate with another tenant's single one.

Waiting workers are woken as soon as a job becomes ready: by an in-process
broadcast, and across composer replicas by ``NOTIFY composer_jobs_ready``
(services/composer/notifications.py).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa

from domain.composes import (
    ComposeCanceled,
    ComposeDeleted,
    ComposeRequested,
    JobView,
    PlannedJob,
    derive_status,
)
from domain.jobs import FINISHED, Job, JobError, JobStatus, JobType, StaleToken
from events.envelope import Actor, as_utc
from events.statements import Statement
from events.store import EventStore, UnitOfWork
from events.wakeup import Baton
from services.composer.queue_reads import QueueReads
from services.composer.records import (
    composer_actor,
    refresh_compose,
    worker_actor,
    compose_version,
    from_json,
    job_from_row,
    load_job,
    record_compose,
    record_job,
    to_json,
)
from services.composer.retrying import run_retrying
from services.composer.tables import artifacts, channels, composes, job_dependencies, job_logs, jobs

log = logging.getLogger(__name__)

READY_CHANNEL = "composer_jobs_ready"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# The next ready job's row, locked, with what a claim needs to know beside it.
# Tenants in fairness order, and per tenant only its oldest lockable ready job
# (an index walk): sorting every ready job of every tenant on each claim grows
# with the queue. The tenant goes to the back of the line in the same round
# trip (skipped when a concurrent claim holds the tenant's row: that claim is
# doing just the same).
_CLAIM_NEXT_POSTGRES = Statement(sa.text("""
    WITH job AS (
        SELECT job.*
        FROM (SELECT channel FROM composer_channels ORDER BY last_served_at, channel) AS tenant
        CROSS JOIN LATERAL (
            SELECT * FROM composer_jobs
            WHERE channel = tenant.channel AND status = 'pending' AND unfinished_dependencies = 0
              AND job_type = ANY(CAST(:types AS text[]))
            ORDER BY enqueued_at, job_id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ) AS job
        LIMIT 1
    ), served AS (
        UPDATE composer_channels SET last_served_at = :now
        WHERE channel IN (
            SELECT channel FROM composer_channels WHERE channel IN (SELECT channel FROM job) FOR UPDATE SKIP LOCKED
        )
    )
    SELECT job.*,
           (SELECT count(*) FROM composer_job_dependencies AS d WHERE d.job_id = job.job_id) AS dependency_count,
           (SELECT status FROM composer_composes AS c WHERE c.compose_id = job.compose_id) AS compose_status
    FROM job
"""))
_NEXT_READY_PORTABLE = Statement(
    sa.select(
        jobs,
        sa.select(sa.func.count()).where(job_dependencies.c.job_id == jobs.c.job_id)
        .scalar_subquery().label("dependency_count"),
        sa.select(composes.c.status).where(composes.c.compose_id == jobs.c.compose_id)
        .scalar_subquery().label("compose_status"),
    )
    .join(channels, channels.c.channel == jobs.c.channel)
    .where(
        jobs.c.status == JobStatus.PENDING, jobs.c.unfinished_dependencies == 0,
        jobs.c.job_type.in_(sa.bindparam("types", expanding=True)),
    )
    .order_by(channels.c.last_served_at, jobs.c.enqueued_at, jobs.c.job_id)
    .limit(1)
)  # fmt: skip
_MARK_SERVED_PORTABLE = Statement(
    channels.update().values(last_served_at=sa.bindparam("now")).where(channels.c.channel == sa.bindparam("of_channel"))
)
_HELD = Statement(
    sa.select(
        jobs,
        sa.select(sa.func.count()).where(job_dependencies.c.dependency_id == jobs.c.job_id)
        .scalar_subquery().label("dependent_count"),
    )
    .where(jobs.c.token == sa.bindparam("token"))
    .with_for_update(of=jobs)
)  # fmt: skip
_DEPENDENCY_RESULTS = Statement(
    sa.select(jobs.c.job_type, jobs.c.result)
    .join(job_dependencies, job_dependencies.c.dependency_id == jobs.c.job_id)
    .where(job_dependencies.c.job_id == sa.bindparam("job_id"))
)
_DEPENDENTS = sa.select(job_dependencies.c.job_id).where(job_dependencies.c.dependency_id == sa.bindparam("of_job"))
_RELEASE_DEPENDENTS = Statement(
    jobs.update()
    .where(jobs.c.job_id.in_(_DEPENDENTS))
    .values(unfinished_dependencies=jobs.c.unfinished_dependencies - 1)
)
_NOTIFY_READY = Statement(sa.select(sa.func.pg_notify(READY_CHANNEL, "")))


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    compose_id: str
    job_type: JobType
    token: str
    args: dict[str, Any]
    dependency_results: dict[str, Any]
    lease_expires_at: datetime


class JobQueue:
    def __init__(
        self,
        store: EventStore,
        *,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_claim: Callable[[str, datetime], None] = lambda job_type, enqueued_at: None,
        on_lapse: Callable[[], None] = lambda: None,
        on_conclusion: Callable[[str, str, float], None] = lambda job_type, status, seconds: None,
    ) -> None:
        self.store = store
        self.reads = QueueReads(store.engine)
        self.on_claim = on_claim
        self.on_lapse = on_lapse
        self.on_conclusion = on_conclusion
        self.lease = lease
        self.max_attempts = max_attempts
        self.clock = clock
        self.ready = Baton()
        self._postgres = store.engine.dialect.name == "postgresql"

    async def submit(
        self, compose_id: str, org_id: str, request: dict[str, Any], planned: Sequence[PlannedJob], actor: Actor,
        idempotency_key: str | None = None,
    ) -> str:  # fmt: skip
        """Record a compose and enqueue its jobs; with a known idempotency key, the earlier compose's id."""

        async def submit(uow: UnitOfWork) -> str:
            if idempotency_key is not None and (known := await self._by_idempotency_key(uow, org_id, idempotency_key)):
                return known
            now = self.clock()
            requested = ComposeRequested(
                compose_id=compose_id, org_id=org_id, request=request, job_ids=[job.job_id for job in planned],
                idempotency_key=idempotency_key,
            )  # fmt: skip
            status = derive_status([JobView(job_type=job.job_type, status=JobStatus.PENDING) for job in planned])
            await record_compose(
                uow, compose_id, 0, requested, actor,
                org_id=org_id, request=to_json(request), status=status.status.value,
                upload_status=status.upload_status.value, error=None, jobs_done=0, jobs_total=len(planned),
                idempotency_key=idempotency_key, created_at=now, deleted=False,
            )  # fmt: skip
            await self._ensure_channel(uow, org_id)
            for planned_job in planned:
                enqueued = Job.enqueue(
                    planned_job.job_id, compose_id, planned_job.job_type, planned_job.args,
                    planned_job.dependencies, org_id,
                )  # fmt: skip
                await record_job(uow, Job(), enqueued, actor, now)
                for dependency in planned_job.dependencies:
                    await uow.connection.execute(job_dependencies.insert().values(job_id=planned_job.job_id, dependency_id=dependency))
            await self._announce_ready(uow)
            return compose_id

        return await run_retrying(self.store, submit)

    async def claim(self, worker_id: str, job_types: Sequence[JobType]) -> Claim | None:
        """Take the next ready job of these types, fairly across tenants; None if there is none."""

        async def claim(uow: UnitOfWork) -> Claim | None:
            now = self.clock()
            types = [t.value for t in job_types]
            if self._postgres:
                row = await _CLAIM_NEXT_POSTGRES.row(uow, types=types, now=now)
            else:
                row = await _NEXT_READY_PORTABLE.row(uow, types=types)
                if row is not None:
                    await _MARK_SERVED_PORTABLE.execute(uow, now=now, of_channel=row["channel"])
            if row is None:
                return None
            job = job_from_row(row)
            claimed = job.claim(worker_id, secrets.token_urlsafe(24), now, self.lease)
            await record_job(uow, job, claimed, worker_actor(worker_id, job.channel), now)
            # Only a compose's first claim changes its status (pending -> building).
            if row["compose_status"] == "pending":
                await refresh_compose(uow, job.compose_id)
            results = {}
            if row["dependency_count"]:
                results = {r["job_type"]: from_json(r["result"]) for r in await _DEPENDENCY_RESULTS.rows(uow, job_id=job.job_id)}
            enqueued_at = as_utc(row["enqueued_at"])
            uow.after_commit(lambda: self.on_claim(job.job_type.value, enqueued_at))
            uow.after_commit(lambda: _log_job("claimed", job))
            return Claim(
                job_id=job.job_id, compose_id=job.compose_id, job_type=job.job_type, token=claimed.token,
                args=job.args, dependency_results=results, lease_expires_at=claimed.lease_expires_at,
            )  # fmt: skip

        return await run_retrying(self.store, claim)

    async def wait_and_claim(self, worker_id: str, job_types: Sequence[JobType], timeout: float) -> Claim | None:
        """Long-poll: claim as soon as a job is ready, or None after ``timeout`` seconds."""
        # Real time, not the queue's clock: leases may run on a test clock, waits never do.
        deadline = time.monotonic() + timeout
        while True:
            ticket = self.ready.enroll()
            try:
                claim = await self.claim(worker_id, job_types)
            except BaseException:
                self.ready.leave(ticket, pass_on=True)
                raise
            if claim is not None:
                # More jobs may be ready: let the next waiter look.
                self.ready.leave(ticket, pass_on=True)
                self.ready.notify()
                return claim
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self.ready.wait(ticket, remaining):
                self.ready.leave(ticket, pass_on=True)
                if time.monotonic() >= deadline:
                    return None

    async def heartbeat(self, token: str) -> JobStatus:
        """Renew the lease of the job held with ``token``; its status tells a worker to stop.

        A renewal is not a state change of the job (no event): only the lease's
        end moves. A canceled job's token is still recognised so the worker
        learns of the cancellation.
        """
        async with self.store.unit_of_work() as uow:
            row = (
                await uow.connection.execute(
                    sa.select(jobs.c.job_id, jobs.c.status).where(jobs.c.token == token).with_for_update()
                )
            ).first()
            if row is None:
                raise StaleToken("no job is held with this token")
            if row.status == JobStatus.RUNNING:
                await uow.connection.execute(
                    jobs.update().where(jobs.c.job_id == row.job_id).values(lease_expires_at=self.clock() + self.lease)
                )
            return JobStatus(row.status)

    async def finish(self, token: str, result: dict[str, Any]) -> None:
        await self._conclude(token, lambda job: job.finish(token, result))

    async def fail(self, token: str, error: JobError) -> None:
        await self._conclude(token, lambda job: job.fail(token, error))

    async def report_progress(self, token: str, stage: str, done: int, total: int) -> None:
        async def progress(uow: UnitOfWork) -> None:
            job = await self._held(uow, token)
            await record_job(uow, job, job.report_progress(token, stage, done, total), worker_actor(job.worker_id or "", job.channel), self.clock())

        await run_retrying(self.store, progress)

    async def append_logs(self, token: str, lines: Sequence[str]) -> None:
        async with self.store.unit_of_work() as uow:
            job = await self._held(uow, token)
            now = self.clock()
            await uow.connection.execute(job_logs.insert(), [{"job_id": job.job_id, "line": line, "logged_at": now} for line in lines])

    async def record_artifact(self, token: str, name: str, sha256: str, size: int) -> str:
        """Note a stored artifact of the held job's compose; returns the compose id."""
        async with self.store.unit_of_work() as uow:
            job = await self._held(uow, token)
            row = {"job_id": job.job_id, "sha256": sha256, "size": size, "stored_at": self.clock()}
            updated = await uow.connection.execute(
                artifacts.update().where(artifacts.c.compose_id == job.compose_id, artifacts.c.name == name).values(**row)
            )
            if updated.rowcount == 0:
                await uow.connection.execute(artifacts.insert().values(compose_id=job.compose_id, name=name, **row))
            return job.compose_id

    async def delete_compose(self, compose_id: str, actor: Actor) -> None:
        """Cancel what still runs, then hide the compose; its events stay for the audit log."""
        await self.cancel_compose(compose_id, actor, reason="deleted")

        async def delete(uow: UnitOfWork) -> None:
            version = await compose_version(uow, compose_id)
            await record_compose(uow, compose_id, version, ComposeDeleted(), actor, deleted=True)

        await run_retrying(self.store, delete)

    async def cancel_compose(self, compose_id: str, actor: Actor, reason: str = "canceled") -> None:
        async def cancel(uow: UnitOfWork) -> None:
            unfinished = (
                await uow.connection.execute(
                    sa.select(jobs.c.job_id)
                    .where(jobs.c.compose_id == compose_id, jobs.c.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
                    .order_by(jobs.c.job_id)
                    .with_for_update()
                )
            ).scalars().all()
            if not unfinished:
                return
            for job_id in unfinished:
                job = await load_job(uow, job_id)
                await record_job(uow, job, job.cancel(reason), actor, self.clock())
            version = await compose_version(uow, compose_id)
            await record_compose(uow, compose_id, version, ComposeCanceled(reason=reason), actor)
            await refresh_compose(uow, compose_id)

        await run_retrying(self.store, cancel)

    async def expire_leases(self) -> int:
        """Requeue (or, after ``max_attempts``, fail) running jobs whose lease lapsed."""

        async def expire(uow: UnitOfWork) -> int:
            now = self.clock()
            lapsed = (
                await uow.connection.execute(
                    sa.select(jobs.c.job_id, jobs.c.lease_expires_at)
                    .where(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_expires_at < now)
                    .order_by(jobs.c.job_id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for job_id, _ in lapsed:
                job = await load_job(uow, job_id)
                outcome = job.lapse(now, self.max_attempts)
                await record_job(uow, job, outcome, composer_actor(job.channel), now)
                uow.after_commit(lambda: self.on_lapse())
                uow.after_commit(lambda job=job: _log_job(f"lease lapsed, {job.status.value}", job, logging.WARNING))
                await self._after_conclusion(uow, job)
            if lapsed:
                await self._announce_ready(uow)
            return len(lapsed)

        return await run_retrying(self.store, expire)

    # -- inside a unit of work --------------------------------------------------------

    async def _held(self, uow: UnitOfWork, token: str) -> Job:
        """The job held with ``token``, locked for this unit of work."""
        return (await self._held_row(uow, token))[0]

    async def _held_row(self, uow: UnitOfWork, token: str) -> tuple[Job, Mapping[str, Any]]:
        row = await _HELD.row(uow, token=token)
        if row is None:
            raise StaleToken("no job is held with this token")
        job = job_from_row(row)
        job.check_token(token)
        return job, row

    async def _conclude(self, token: str, decide: Callable[[Job], Any]) -> None:
        async def conclude(uow: UnitOfWork) -> None:
            job, row = await self._held_row(uow, token)
            await record_job(uow, job, decide(job), worker_actor(job.worker_id or "", job.channel), self.clock())
            await self._after_conclusion(uow, job, has_dependents=row["dependent_count"] > 0)
            uow.after_commit(lambda: _log_job(job.status.value, job))
            if job.claimed_at is not None:
                seconds = (self.clock() - job.claimed_at).total_seconds()
                uow.after_commit(lambda: self.on_conclusion(job.job_type.value, job.status.value, seconds))

        await run_retrying(self.store, conclude)

    async def _after_conclusion(self, uow: UnitOfWork, job: Job, *, has_dependents: bool = True) -> None:
        """Hand the outcome on: release dependents, or fail them with this job's error.

        ``has_dependents=False`` (the caller knows there are none) saves looking.
        """
        if job.status is JobStatus.SUCCESS:
            if has_dependents and await _RELEASE_DEPENDENTS.execute(uow, of_job=job.job_id):
                await self._announce_ready(uow)
        elif job.status in (JobStatus.FAILURE, JobStatus.CANCELED) and job.error is not None and has_dependents:
            dependents = (await uow.connection.execute(_DEPENDENTS, {"of_job": job.job_id})).scalars().all()
            for dependent_id in dependents:
                dependent = await load_job(uow, dependent_id)
                if dependent.status not in FINISHED:
                    failed = dependent.fail_for_dependency(job.job_id, job.error)
                    await record_job(uow, dependent, failed, composer_actor(dependent.channel), self.clock())
                    await self._after_conclusion(uow, dependent)
        elif job.status is JobStatus.PENDING:
            await self._announce_ready(uow)
        await refresh_compose(uow, job.compose_id)

    async def _by_idempotency_key(self, uow: UnitOfWork, org_id: str, key: str) -> str | None:
        return await uow.connection.scalar(
            sa.select(composes.c.compose_id).where(composes.c.org_id == org_id, composes.c.idempotency_key == key)
        )

    async def _ensure_channel(self, uow: UnitOfWork, channel: str) -> None:
        exists = await uow.connection.scalar(sa.select(channels.c.channel).where(channels.c.channel == channel))
        if exists is None:
            await uow.connection.execute(channels.insert().values(channel=channel, last_served_at=EPOCH))

    async def _announce_ready(self, uow: UnitOfWork) -> None:
        if self._postgres:
            # Delivered at commit, to every composer replica listening.
            await _NOTIFY_READY.execute(uow)
        uow.after_commit(self.ready.notify)

def _log_job(what: str, job: Job, level: int = logging.INFO) -> None:
    log.log(
        level, "job %s (%s) %s", job.job_id, job.job_type.value, what,
        extra={"compose_id": job.compose_id, "job_id": job.job_id, "worker_id": job.worker_id, "org_id": job.channel},
    )  # fmt: skip
