"""Storing job and compose events together with their projection rows.

Every change goes through here: append the event to the aggregate's stream
(optimistic concurrency on its version), apply it, and write the projection
row in the same unit of work. The statements a job claim or result runs are
``Statement`` objects: on PostgreSQL they skip SQLAlchemy's per-statement work,
which was most of the CPU a claim cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from domain.composes import (
    ComposeRequested,
    ComposeStatusChanged,
    JobView,
    UploadStatusChanged,
    derive_status,
    upload_status_of,
)
from domain.events import DomainEvent, event_from
from domain.jobs import Job, JobClaimed, JobEnqueued, JobError, JobProgressed, JobStatus, JobType
from events.envelope import Actor, NewEvent, Stream, as_utc
from events.statements import Statement
from events.store import UnitOfWork
from services.composer.tables import composes, jobs


def job_stream(job_id: str) -> Stream:
    return Stream("job", job_id)


def compose_stream(compose_id: str) -> Stream:
    return Stream("compose", compose_id)


def to_json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def from_json(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


def job_error(text: str | None) -> JobError | None:
    return None if text is None else msgspec.json.decode(text, type=JobError)


async def append(uow: UnitOfWork, stream: Stream, version: int, event: DomainEvent, actor: Actor, compose_id: str) -> None:
    await uow.append(
        stream,
        version,
        [NewEvent(event_type=event.event_type, payload=event.payload(), actor=actor, correlation_id=compose_id)],
    )


async def load_job(uow: UnitOfWork, job_id: str) -> Job:
    """The job replayed from its events (with its dependencies, which its row does not hold)."""
    history = await uow.read_stream(job_stream(job_id))
    if not history:
        raise LookupError(f"no job {job_id}")
    return Job.replay(event_from(e.event_type, e.payload) for e in history)


def job_from_row(row: Mapping[str, Any]) -> Job:
    """The job restored from its row, which is written with every event of the job.

    Its ``dependencies`` stay empty: they live in composer_job_dependencies,
    and only a claim needs them (their results), which it reads from there.
    """
    return Job.restore(
        version=row["version"], job_id=row["job_id"], compose_id=row["compose_id"],
        job_type=JobType(row["job_type"]), args=from_json(row["args"]), channel=row["channel"],
        status=JobStatus(row["status"]), token=row["token"], worker_id=row["worker_id"],
        lease_expires_at=_moment(row["lease_expires_at"]), claimed_at=_moment(row["claimed_at"]),
        attempts=row["attempts"], result=from_json(row["result"]), error=job_error(row["error"]),
        progress=None if row["progress"] is None else msgspec.json.decode(row["progress"], type=JobProgressed),
    )  # fmt: skip


def _moment(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


# What every event may change on a job's row; the lease only where record_job says.
_JOB_STATE = ("status", "result", "error", "worker_id", "token", "attempts", "progress", "version", "claimed_at")


def _job_update(columns: tuple[str, ...]) -> Statement:
    values = {name: sa.bindparam(f"new_{name}") for name in columns}
    return Statement(jobs.update().where(jobs.c.job_id == sa.bindparam("of_job")).values(**values))


_UPDATE_JOB = {False: _job_update(_JOB_STATE), True: _job_update((*_JOB_STATE, "lease_expires_at"))}


async def record_job(uow: UnitOfWork, job: Job, event: DomainEvent, actor: Actor, now: datetime) -> None:
    version = job.version
    upload_before = upload_status_of(job.status)
    job.apply(event)
    await append(uow, job_stream(job.job_id), version, event, actor, job.compose_id)
    values = {
        "status": job.status.value,
        "result": to_json(job.result),
        "error": to_json(job.error),
        "worker_id": job.worker_id,
        "token": job.token,
        "attempts": job.attempts,
        "progress": to_json(job.progress),
        "version": job.version,
        "claimed_at": job.claimed_at,
    }
    # While a job runs, its lease end is this row's: heartbeats move it without an event
    # (JobQueue.heartbeat). The aggregate knows only the claim's, and writing that back on
    # a progress report would undo every renewal since the claim.
    with_lease = isinstance(event, JobClaimed) or job.status is not JobStatus.RUNNING
    if with_lease:
        values["lease_expires_at"] = job.lease_expires_at
    if isinstance(event, JobEnqueued):
        await uow.connection.execute(
            jobs.insert().values(
                job_id=job.job_id,
                compose_id=job.compose_id,
                job_type=job.job_type.value,
                channel=job.channel,
                unfinished_dependencies=len(job.dependencies),
                args=to_json(job.args),
                enqueued_at=now,
                **values,
            )
        )
    else:
        await _UPDATE_JOB[with_lease].execute(uow, of_job=job.job_id, **{f"new_{k}": v for k, v in values.items()})
    if job.job_type is JobType.UPLOAD and upload_status_of(job.status) is not upload_before:
        await record_upload(uow, job)


def upload_options(target: dict[str, Any], result: dict[str, Any] | None) -> dict[str, Any]:
    """What a user reads of one upload: the target's options, and the upload's result over them."""
    options = dict(target.get("upload_options") or {})
    options.update((result or {}).get("options", {}))
    return options


async def record_upload(uow: UnitOfWork, job: Job) -> None:
    """Record in the compose's stream that one of its uploads moved, with the upload's result.

    The compose's stream is keyed like its status changes, so a consumer
    learns a target's URL or AMI no later than the success it belongs to.
    """
    target = job.args.get("target", {})
    changed = UploadStatusChanged(
        job_id=job.job_id, image_index=int(job.args.get("image_index", 0)),
        target_index=int(job.args.get("target_index", 0)), type=target.get("type", "local"),
        status=upload_status_of(job.status), options=upload_options(target, job.result),
    )  # fmt: skip
    # Locked: two uploads of one compose concluding at once append one after the other.
    version = await compose_version(uow, job.compose_id, lock=True)
    await record_compose(uow, job.compose_id, version, changed, composer_actor(job.channel))


async def compose_version(uow: UnitOfWork, compose_id: str, *, lock: bool = False) -> int:
    query = sa.select(composes.c.version).where(composes.c.compose_id == compose_id)
    version = await uow.connection.scalar(query.with_for_update() if lock else query)
    if version is None:
        raise LookupError(f"no compose {compose_id}")
    return version


async def record_compose(
    uow: UnitOfWork, compose_id: str, version: int, event: DomainEvent, actor: Actor, **row: Any
) -> None:
    await append(uow, compose_stream(compose_id), version, event, actor, compose_id)
    if isinstance(event, ComposeRequested):
        await uow.connection.execute(composes.insert().values(compose_id=compose_id, version=version + 1, **row))
    else:
        await uow.connection.execute(
            composes.update().where(composes.c.compose_id == compose_id).values(version=version + 1, **row)
        )


_LOCK_COMPOSE = Statement(
    sa.select(composes.c.org_id, composes.c.status, composes.c.upload_status, composes.c.error,
              composes.c.jobs_done, composes.c.jobs_total, composes.c.version)
    .where(composes.c.compose_id == sa.bindparam("compose_id"))
    .with_for_update()
)  # fmt: skip
_COMPOSE_JOBS = Statement(
    sa.select(jobs.c.job_type, jobs.c.status, jobs.c.error).where(jobs.c.compose_id == sa.bindparam("compose_id"))
)
_PROGRESS = ("upload_status", "error", "jobs_done", "jobs_total")


def _compose_update(columns: tuple[str, ...]) -> Statement:
    values = {name: sa.bindparam(f"new_{name}") for name in columns}
    return Statement(composes.update().where(composes.c.compose_id == sa.bindparam("of_compose")).values(**values))


_UPDATE_COMPOSE_PROGRESS = _compose_update(_PROGRESS)
_UPDATE_COMPOSE_STATUS = _compose_update((*_PROGRESS, "status", "version"))


async def refresh_compose(uow: UnitOfWork, compose_id: str) -> None:
    """Derive the compose's status from its jobs; record ComposeStatusChanged when it moved."""
    # Lock the compose first, then read its jobs: under READ COMMITTED the read
    # then sees every job change committed before we got the lock. Reading
    # first, two last jobs concluding at once would each miss the other's
    # conclusion and the compose would stay "building" for ever.
    current = await _LOCK_COMPOSE.row(uow, compose_id=compose_id)
    if current is None:
        raise LookupError(f"no compose {compose_id}")
    rows = await _COMPOSE_JOBS.rows(uow, compose_id=compose_id)
    derived = derive_status(
        [
            JobView(job_type=JobType(r["job_type"]), status=JobStatus(r["status"]), error=job_error(r["error"]))
            for r in rows
        ]
    )
    progress = {
        "upload_status": derived.upload_status.value,
        "error": to_json(derived.error),
        "jobs_done": derived.done,
        "jobs_total": derived.total,
    }
    changes = {f"new_{name}": value for name, value in progress.items()}
    if current["status"] == derived.status.value:
        if any(current[name] != value for name, value in progress.items()):
            await _UPDATE_COMPOSE_PROGRESS.execute(uow, of_compose=compose_id, **changes)
        return
    changed = ComposeStatusChanged(status=derived.status, error=derived.error, upload_status=derived.upload_status)
    # Under the compose's org, so the org's auditors find it in the composer's event log.
    actor = composer_actor(current["org_id"])
    version = current["version"]
    await append(uow, compose_stream(compose_id), version, changed, actor, compose_id)
    await _UPDATE_COMPOSE_STATUS.execute(
        uow, of_compose=compose_id, new_status=derived.status.value, new_version=version + 1, **changes
    )


def worker_actor(worker_id: str, channel: str) -> Actor:
    return Actor(subject=worker_id, org_id=channel, client="worker")


def composer_actor(channel: str) -> Actor:
    return Actor(subject="composer", org_id=channel, client="composer")
