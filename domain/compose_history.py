"""The backend's Compose: a user's compose as the image-builder remembers it.

The composer builds; the backend keeps the history. This aggregate's stream
(in image-builder-db) holds what the user asked for, when the composer
accepted it (or refused it), each status the composer reported, and its
deletion. Statuses arrive as the composer's events; they are recorded here,
never fetched by asking the composer.

    created = Compose.request(compose_id, org_id, request[, blueprint])  # ComposeRequested
    compose.accept(composer_id)        # ComposeSubmitted, or None if already known
    compose.record_status(...)         # ComposeStatusRecorded
    compose.record_upload(...)         # ComposeUploadRecorded
    compose.delete()                   # ComposeDeleted
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, ClassVar

import msgspec

from domain.composes import ComposeStatus, UploadStatus
from domain.events import DomainEvent
from domain.jobs import JobError

# Error id of a compose the composer refused outright (the job errors are 10-13).
ERROR_REFUSED = 20


class HistoryEvent(DomainEvent, frozen=True, kw_only=True):
    """An event of the backend's compose stream (its own family: names repeat the composer's)."""

    registry: ClassVar[dict[str, type[DomainEvent]]] = {}


class ComposeRequested(HistoryEvent, frozen=True, kw_only=True):
    compose_id: str
    org_id: str
    request: dict[str, Any]
    # Set when the compose was made from a blueprint (POST /blueprints/{id}/compose).
    blueprint_id: str | None = None
    blueprint_version: int | None = None


class ComposeSubmitted(HistoryEvent, frozen=True, kw_only=True):
    """The composer accepted the compose under its own id."""

    composer_id: str


class ComposeRefused(HistoryEvent, frozen=True, kw_only=True):
    """The composer refused the request (it will never build it)."""

    reason: str
    details: Any = None


class ComposeStatusRecorded(HistoryEvent, frozen=True, kw_only=True):
    """The composer reported a new status (its ComposeStatusChanged)."""

    status: ComposeStatus
    upload_status: UploadStatus | None = None
    error: JobError | None = None


class ComposeUploadRecorded(HistoryEvent, frozen=True, kw_only=True):
    """The composer reported an upload target's state (its UploadStatusChanged), with its result."""

    image_index: int
    target_index: int
    type: str
    status: UploadStatus
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class ComposeDeleted(HistoryEvent, frozen=True, kw_only=True):
    pass


class UploadReport(msgspec.Struct, frozen=True, kw_only=True):
    """One upload target as the user sees it: upstream's ``upload_status``."""

    type: str
    status: UploadStatus
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class Submission(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


class ComposeRuleBroken(Exception):
    """A command that this compose's history does not allow."""


class Compose:
    def __init__(self) -> None:
        self.compose_id = ""
        self.org_id = ""
        self.compose_request: dict[str, Any] = {}
        self.blueprint_id: str | None = None
        self.blueprint_version: int | None = None
        self.submission = Submission.PENDING
        self.composer_id: str | None = None
        self.status = ComposeStatus.PENDING
        self.upload_status = UploadStatus.PENDING
        self.error: JobError | None = None
        # (image index, target index) -> the target's latest report.
        self.uploads: dict[tuple[int, int], UploadReport] = {}
        self.deleted = False
        self.version = 0

    @classmethod
    def replay(cls, history: Iterable[DomainEvent]) -> Compose:
        compose = cls()
        for event in history:
            compose.apply(event)
        return compose

    @staticmethod
    def request(
        compose_id: str, org_id: str, request: dict[str, Any], blueprint: tuple[str, int] | None = None
    ) -> ComposeRequested:
        """``blueprint``: the (id, version) of the blueprint it was made from, if any."""
        if not request.get("image_requests"):
            raise ComposeRuleBroken("a compose needs at least one image request")
        blueprint_id, blueprint_version = blueprint or (None, None)
        return ComposeRequested(
            compose_id=compose_id, org_id=org_id, request=request,
            blueprint_id=blueprint_id, blueprint_version=blueprint_version,
        )  # fmt: skip

    def accept(self, composer_id: str) -> ComposeSubmitted | None:
        """The composer took it as ``composer_id``; None when that is known already.

        Submitting is retried, and the consumer of the composer's events learns
        the same fact, so hearing it twice is normal; hearing of a second,
        different composer compose is not.
        """
        if self.submission is Submission.ACCEPTED:
            if composer_id != self.composer_id:
                raise ComposeRuleBroken(
                    f"compose {self.compose_id} is already composer compose {self.composer_id}, not {composer_id}"
                )
            return None
        if self.submission is Submission.REFUSED:
            raise ComposeRuleBroken(f"compose {self.compose_id} was refused by the composer")
        return ComposeSubmitted(composer_id=composer_id)

    def refuse(self, reason: str, details: Any = None) -> ComposeRefused:
        if self.submission is not Submission.PENDING:
            raise ComposeRuleBroken(f"compose {self.compose_id} is already {self.submission.value}")
        return ComposeRefused(reason=reason, details=details)

    def record_status(
        self, status: ComposeStatus, upload_status: UploadStatus | None, error: JobError | None
    ) -> ComposeStatusRecorded:
        if self.submission is not Submission.ACCEPTED:
            raise ComposeRuleBroken(f"compose {self.compose_id} has no composer compose to report on")
        return ComposeStatusRecorded(status=status, upload_status=upload_status, error=error)

    def record_upload(
        self, image_index: int, target_index: int, kind: str, status: UploadStatus, options: dict[str, Any]
    ) -> ComposeUploadRecorded:
        if self.submission is not Submission.ACCEPTED:
            raise ComposeRuleBroken(f"compose {self.compose_id} has no composer compose to report on")
        return ComposeUploadRecorded(
            image_index=image_index, target_index=target_index, type=kind, status=status, options=options
        )

    def upload_reports(self) -> list[UploadReport]:
        """Every target reported so far, first image's first target first."""
        return [self.uploads[key] for key in sorted(self.uploads)]

    def delete(self) -> ComposeDeleted:
        if self.deleted:
            raise ComposeRuleBroken(f"compose {self.compose_id} is already deleted")
        return ComposeDeleted()

    def apply(self, event: DomainEvent) -> None:
        match event:
            case ComposeRequested():
                self.compose_id, self.org_id, self.compose_request = event.compose_id, event.org_id, event.request
                self.blueprint_id, self.blueprint_version = event.blueprint_id, event.blueprint_version
            case ComposeSubmitted():
                self.submission, self.composer_id = Submission.ACCEPTED, event.composer_id
            case ComposeRefused():
                self.submission, self.status = Submission.REFUSED, ComposeStatus.FAILURE
                self.error = JobError(id=ERROR_REFUSED, reason=event.reason, details=event.details)
            case ComposeStatusRecorded():
                self.status, self.error = event.status, event.error
                if event.upload_status is not None:
                    self.upload_status = event.upload_status
            case ComposeUploadRecorded():
                report = UploadReport(type=event.type, status=event.status, options=event.options)
                self.uploads[(event.image_index, event.target_index)] = report
            case ComposeDeleted():
                self.deleted = True
            case _:
                raise TypeError(f"a compose does not apply {type(event).__name__}")
        self.version += 1
