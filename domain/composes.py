"""Composes: the jobs a compose becomes, and its status derived from them.

A compose is ``depsolve -> build -> upload`` (one upload per target) for each
image it asks for. Its status is not stored on its own: it is a function of
its jobs, in the upstream compose API's vocabulary.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import msgspec

from domain.events import DomainEvent
from domain.jobs import FINISHED, JobError, JobStatus, JobType


class ComposeStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    UPLOADING = "uploading"
    REGISTERING = "registering"
    SUCCESS = "success"
    FAILURE = "failure"


class UploadStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"


class ComposeRequested(DomainEvent, frozen=True, kw_only=True):
    compose_id: str
    org_id: str
    request: dict[str, Any]
    job_ids: list[str]
    # The caller's Idempotency-Key: the backend sends its own compose id, and
    # learns from this event which composer compose is its own.
    idempotency_key: str | None = None


class ComposeStatusChanged(DomainEvent, frozen=True, kw_only=True):
    """Recorded whenever the derived status changes: the backend's build history follows it."""

    status: ComposeStatus
    error: JobError | None = None
    # None in events recorded before it was carried.
    upload_status: UploadStatus | None = None


class UploadStatusChanged(DomainEvent, frozen=True, kw_only=True):
    """One upload job of the compose moved: running, success with what the user
    needs (a download URL, or ``ami`` and ``region``), failure, or back to pending.

    The backend records it, so its history can show each target's result.
    """

    job_id: str
    image_index: int
    target_index: int
    type: str
    status: UploadStatus
    # The target's upload_options, with the upload job's result options over them.
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class ComposeCanceled(DomainEvent, frozen=True, kw_only=True):
    reason: str


class ComposeDeleted(DomainEvent, frozen=True, kw_only=True):
    pass


class PlannedJob(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    job_type: JobType
    args: dict[str, Any]
    dependencies: list[str]


def plan_jobs(compose_id: str, image_requests: Sequence[dict[str, Any]], common: dict[str, Any]) -> list[PlannedJob]:
    """The job graph of a compose; job ids derive from the compose id, so replanning is stable."""
    planned: list[PlannedJob] = []

    def job_id(role: str) -> str:
        return str(uuid.uuid5(uuid.UUID(compose_id), role))

    for index, image in enumerate(image_requests):
        depsolve = PlannedJob(
            job_id=job_id(f"{index}/depsolve"),
            job_type=JobType.DEPSOLVE,
            args={**common, "image": image, "image_index": index},
            dependencies=[],
        )
        build = PlannedJob(
            job_id=job_id(f"{index}/build"),
            job_type=JobType.BUILD,
            args={**common, "image": image, "image_index": index},
            dependencies=[depsolve.job_id],
        )
        planned += [depsolve, build]
        for number, target in enumerate(image.get("upload_targets") or [{"type": "local", "upload_options": {}}]):
            planned.append(
                PlannedJob(
                    job_id=job_id(f"{index}/upload/{number}"),
                    job_type=JobType.UPLOAD,
                    args={"target": target, "image_index": index, "target_index": number, "compose_id": compose_id},
                    dependencies=[build.job_id],
                )
            )
    return planned


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """What status derivation needs to know of one job."""

    job_type: JobType
    status: JobStatus
    error: JobError | None = None


class DerivedStatus(msgspec.Struct, frozen=True, kw_only=True):
    status: ComposeStatus
    upload_status: UploadStatus
    error: JobError | None
    done: int
    total: int


def derive_status(jobs: Sequence[JobView]) -> DerivedStatus:
    done = sum(1 for job in jobs if job.status in FINISHED)
    error = next((job.error for job in jobs if job.status in (JobStatus.FAILURE, JobStatus.CANCELED)), None)
    uploads = [job for job in jobs if job.job_type is JobType.UPLOAD]
    upload_status = _upload_status(uploads)
    if error is not None:
        status = ComposeStatus.FAILURE
    elif jobs and all(job.status is JobStatus.SUCCESS for job in jobs):
        status = ComposeStatus.SUCCESS
    elif all(job.status is JobStatus.PENDING for job in jobs):
        status = ComposeStatus.PENDING
    elif all(job.status is JobStatus.SUCCESS for job in jobs if job.job_type is not JobType.UPLOAD):
        status = ComposeStatus.UPLOADING
    else:
        status = ComposeStatus.BUILDING
    return DerivedStatus(status=status, upload_status=upload_status, error=error, done=done, total=len(jobs))


def upload_status_of(status: JobStatus) -> UploadStatus:
    """One upload job's state in the words of upstream's ``upload_status.status``."""
    if status in (JobStatus.FAILURE, JobStatus.CANCELED):
        return UploadStatus.FAILURE
    return UploadStatus(status.value)


def _upload_status(uploads: Sequence[JobView]) -> UploadStatus:
    states = {job.status for job in uploads}
    if states & {JobStatus.FAILURE, JobStatus.CANCELED}:
        return UploadStatus.FAILURE
    if uploads and states == {JobStatus.SUCCESS}:
        return UploadStatus.SUCCESS
    if JobStatus.RUNNING in states or JobStatus.SUCCESS in states:
        return UploadStatus.RUNNING
    return UploadStatus.PENDING
