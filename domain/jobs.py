"""A job in the composer's queue, as an event-sourced aggregate.

States: pending -> running (claimed with a lease and a token) -> success |
failure, or canceled. A running job whose lease lapsed goes back to pending
until it has been tried ``max_attempts`` times, then fails with a clear reason.
Each command method checks the command and returns the event; state changes
only in ``apply``, so replaying stored events and live behaviour are one code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from domain.events import DomainEvent


class JobType(StrEnum):
    DEPSOLVE = "depsolve"
    BUILD = "build"
    UPLOAD = "upload"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"


FINISHED = frozenset({JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.CANCELED})


class JobError(msgspec.Struct, frozen=True, kw_only=True):
    """What went wrong, in the shape of the upstream API's ``error``."""

    id: int
    reason: str
    details: Any = None


# Error ids, stable for API clients (upstream uses numeric ids too).
ERROR_BUILD_FAILED = 10
ERROR_DEPENDENCY_FAILED = 11
ERROR_WORKER_STOPPED = 12
ERROR_CANCELED = 13


class JobEnqueued(DomainEvent, frozen=True, kw_only=True):
    job_id: str
    compose_id: str
    job_type: JobType
    args: dict[str, Any]
    dependencies: list[str]
    channel: str


class JobClaimed(DomainEvent, frozen=True, kw_only=True):
    worker_id: str
    token: str
    claimed_at: datetime
    lease_expires_at: datetime
    attempt: int


class JobProgressed(DomainEvent, frozen=True, kw_only=True):
    """The worker reached a new stage: "stage i of n" with its name."""

    stage: str
    done: int
    total: int


class JobRequeued(DomainEvent, frozen=True, kw_only=True):
    reason: str
    attempt: int


class JobFinished(DomainEvent, frozen=True, kw_only=True):
    result: dict[str, Any]


class JobFailed(DomainEvent, frozen=True, kw_only=True):
    error: JobError


class JobCanceled(DomainEvent, frozen=True, kw_only=True):
    reason: str


class JobRuleBroken(Exception):
    """A command that the job's state does not allow."""


class StaleToken(JobRuleBroken):
    """A result or renewal from a worker that no longer holds the job."""


class Job:
    def __init__(self) -> None:
        self.job_id = ""
        self.compose_id = ""
        self.job_type = JobType.DEPSOLVE
        self.args: dict[str, Any] = {}
        self.dependencies: list[str] = []
        self.channel = ""
        self.status = JobStatus.PENDING
        self.token: str | None = None
        self.worker_id: str | None = None
        self.lease_expires_at: datetime | None = None
        self.claimed_at: datetime | None = None
        self.attempts = 0
        self.result: dict[str, Any] | None = None
        self.error: JobError | None = None
        self.progress: JobProgressed | None = None
        self.version = 0

    @classmethod
    def replay(cls, history: Iterable[DomainEvent]) -> Job:
        job = cls()
        for event in history:
            job.apply(event)
        return job

    @classmethod
    def restore(cls, *, version: int, **state: Any) -> Job:
        """The job as it stands after ``version`` events, from a snapshot of its state.

        What replaying those events would give, taken from somewhere cheaper
        (the composer keeps it on the job's row). The next event is appended
        at ``version``, so a stale snapshot cannot be acted on: its append
        meets a stream that moved on.
        """
        job = cls()
        for name, value in state.items():
            if not hasattr(job, name):
                raise TypeError(f"a job has no {name!r}")
            setattr(job, name, value)
        job.version = version
        return job

    @staticmethod
    def enqueue(
        job_id: str, compose_id: str, job_type: JobType, args: dict[str, Any], dependencies: list[str], channel: str
    ) -> JobEnqueued:
        if job_id in dependencies:
            raise JobRuleBroken(f"job {job_id} cannot depend on itself")
        return JobEnqueued(
            job_id=job_id, compose_id=compose_id, job_type=job_type, args=args, dependencies=dependencies, channel=channel
        )

    def claim(self, worker_id: str, token: str, now: datetime, lease: timedelta) -> JobClaimed:
        if self.status is not JobStatus.PENDING:
            raise JobRuleBroken(f"job {self.job_id} is {self.status}, not pending")
        return JobClaimed(
            worker_id=worker_id, token=token, claimed_at=now, lease_expires_at=now + lease, attempt=self.attempts + 1
        )

    def check_token(self, token: str) -> None:
        if self.status is not JobStatus.RUNNING or token != self.token:
            raise StaleToken(f"job {self.job_id} is not held with this token (it is {self.status})")

    def report_progress(self, token: str, stage: str, done: int, total: int) -> JobProgressed:
        self.check_token(token)
        if not 0 <= done <= total:
            raise JobRuleBroken(f"progress {done} of {total} is not possible")
        return JobProgressed(stage=stage, done=done, total=total)

    def finish(self, token: str, result: dict[str, Any]) -> JobFinished:
        self.check_token(token)
        return JobFinished(result=result)

    def fail(self, token: str, error: JobError) -> JobFailed:
        self.check_token(token)
        return JobFailed(error=error)

    def lapse(self, now: datetime, max_attempts: int) -> JobRequeued | JobFailed:
        """The worker stopped heartbeating: try again, or give up after ``max_attempts``."""
        if self.status is not JobStatus.RUNNING or self.lease_expires_at is None or self.lease_expires_at > now:
            raise JobRuleBroken(f"job {self.job_id} has no lapsed lease")
        if self.attempts >= max_attempts:
            return JobFailed(
                error=JobError(
                    id=ERROR_WORKER_STOPPED,
                    reason="worker stopped responding",
                    details={"attempts": self.attempts, "last_worker": self.worker_id},
                )
            )
        return JobRequeued(reason=f"lease of worker {self.worker_id} lapsed", attempt=self.attempts)

    def fail_for_dependency(self, dependency_id: str, error: JobError) -> JobFailed:
        if self.status in FINISHED:
            raise JobRuleBroken(f"job {self.job_id} is already {self.status}")
        return JobFailed(
            error=JobError(
                id=ERROR_DEPENDENCY_FAILED,
                reason=f"dependency {dependency_id} failed",
                details={"dependency": dependency_id, "error": msgspec.to_builtins(error)},
            )
        )

    def cancel(self, reason: str = "canceled") -> JobCanceled:
        if self.status in FINISHED:
            raise JobRuleBroken(f"job {self.job_id} is already {self.status}")
        return JobCanceled(reason=reason)

    def apply(self, event: DomainEvent) -> None:
        match event:
            case JobEnqueued():
                self.job_id, self.compose_id, self.job_type = event.job_id, event.compose_id, event.job_type
                self.args, self.dependencies, self.channel = event.args, list(event.dependencies), event.channel
                self.status = JobStatus.PENDING
            case JobClaimed():
                self.status, self.worker_id, self.token = JobStatus.RUNNING, event.worker_id, event.token
                self.lease_expires_at, self.attempts = event.lease_expires_at, event.attempt
                self.claimed_at = event.claimed_at
            case JobProgressed():
                self.progress = event
            case JobRequeued():
                self.status, self.token, self.worker_id, self.lease_expires_at = JobStatus.PENDING, None, None, None
                self.progress = None
            case JobFinished():
                self.status, self.result, self.token = JobStatus.SUCCESS, event.result, None
            case JobFailed():
                self.status, self.error, self.token = JobStatus.FAILURE, event.error, None
            case JobCanceled():
                # The token stays known, so a worker still holding it learns of the cancellation.
                self.status = JobStatus.CANCELED
                self.error = JobError(id=ERROR_CANCELED, reason="canceled", details={"reason": event.reason})
            case _:
                raise TypeError(f"a job does not apply {type(event).__name__}")
        self.version += 1
