"""Storing job and compose events together with their projection rows.

Every change goes through here: append the event to the aggregate's stream
(optimistic concurrency on its version), apply it, and write the projection
row in the same unit of work.
"""

from __future__ import annotations

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
from domain.jobs import Job, JobClaimed, JobError, JobStatus, JobType
from events.envelope import Actor, NewEvent, Stream
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
    history = await uow.read_stream(job_stream(job_id))
    if not history:
        raise LookupError(f"no job {job_id}")
    return Job.replay(event_from(e.event_type, e.payload) for e in history)


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
    }
    # While a job runs, its lease end is this row's: heartbeats move it without an event
    # (JobQueue.heartbeat). The aggregate knows only the claim's, and writing that back on
    # a progress report would undo every renewal since the claim.
    if isinstance(event, JobClaimed) or job.status is not JobStatus.RUNNING:
        values["lease_expires_at"] = job.lease_expires_at
    updated = await uow.connection.execute(jobs.update().where(jobs.c.job_id == job.job_id).values(**values))
    if updated.rowcount == 0:
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


async def refresh_compose(uow: UnitOfWork, compose_id: str) -> None:
    """Derive the compose's status from its jobs; record ComposeStatusChanged when it moved."""
    # Lock the compose first, then read its jobs: under READ COMMITTED the read
    # then sees every job change committed before we got the lock. Reading
    # first, two last jobs concluding at once would each miss the other's
    # conclusion and the compose would stay "building" for ever.
    current = (
        await uow.connection.execute(
            sa.select(composes.c.org_id, composes.c.status, composes.c.upload_status, composes.c.error,
                      composes.c.jobs_done, composes.c.jobs_total, composes.c.version)
            .where(composes.c.compose_id == compose_id)
            .with_for_update()
        )
    ).one()  # fmt: skip
    rows = (
        await uow.connection.execute(
            sa.select(jobs.c.job_type, jobs.c.status, jobs.c.error).where(jobs.c.compose_id == compose_id)
        )
    ).all()
    derived = derive_status(
        [
            JobView(job_type=JobType(r.job_type), status=JobStatus(r.status), error=job_error(r.error))
            for r in rows
        ]
    )
    progress = {
        "upload_status": derived.upload_status.value,
        "error": to_json(derived.error),
        "jobs_done": derived.done,
        "jobs_total": derived.total,
    }
    if current.status == derived.status.value:
        if any(getattr(current, name) != value for name, value in progress.items()):
            await uow.connection.execute(composes.update().where(composes.c.compose_id == compose_id).values(**progress))
        return
    changed = ComposeStatusChanged(status=derived.status, error=derived.error, upload_status=derived.upload_status)
    # Under the compose's org, so the org's auditors find it in the composer's event log.
    actor = composer_actor(current.org_id)
    await record_compose(uow, compose_id, current.version, changed, actor, status=derived.status.value, **progress)


def worker_actor(worker_id: str, channel: str) -> Actor:
    return Actor(subject=worker_id, org_id=channel, client="worker")


def composer_actor(channel: str) -> Actor:
    return Actor(subject="composer", org_id=channel, client="composer")
