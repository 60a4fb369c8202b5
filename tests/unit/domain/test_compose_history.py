"""The backend's Compose aggregate, and event families that share names."""

from __future__ import annotations

import pytest

from domain import compose_history as history
from domain import composes as composer
from domain.compose_history import Compose, ComposeRuleBroken, HistoryEvent, Submission
from domain.composes import ComposeStatus, UploadStatus
from domain.events import DomainEvent, event_from
from domain.jobs import JobError, JobStatus

REQUEST = {"distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}


def requested() -> Compose:
    compose = Compose()
    compose.apply(Compose.request("c-1", "org-a", REQUEST))
    return compose


def accepted() -> Compose:
    compose = requested()
    event = compose.accept("composer-1")
    assert event is not None
    compose.apply(event)
    return compose


def test_a_new_compose_waits_for_the_composer_as_pending() -> None:
    compose = requested()

    assert (compose.compose_id, compose.org_id, compose.version) == ("c-1", "org-a", 1)
    assert compose.submission is Submission.PENDING and compose.status is ComposeStatus.PENDING


def test_hearing_twice_that_the_composer_took_it_records_it_once() -> None:
    compose = accepted()

    assert compose.accept("composer-1") is None
    with pytest.raises(ComposeRuleBroken, match="already composer compose composer-1"):
        compose.accept("composer-2")


def test_a_refused_compose_fails_with_the_reason_and_cannot_be_taken_later() -> None:
    compose = requested()
    compose.apply(compose.refuse("the composer refused the request: image_type", {"errors": []}))

    assert compose.status is ComposeStatus.FAILURE and compose.error is not None
    assert compose.error.id == history.ERROR_REFUSED and "image_type" in compose.error.reason
    with pytest.raises(ComposeRuleBroken):
        compose.accept("composer-1")


def test_statuses_are_recorded_only_for_a_compose_the_composer_took() -> None:
    with pytest.raises(ComposeRuleBroken):
        requested().record_status(ComposeStatus.BUILDING, UploadStatus.PENDING, None)

    compose = accepted()
    compose.apply(compose.record_status(ComposeStatus.UPLOADING, UploadStatus.RUNNING, None))
    failed = JobError(id=10, reason="build failed")
    compose.apply(compose.record_status(ComposeStatus.FAILURE, None, failed))

    # An event without an upload status (an older composer) keeps the last one known.
    assert (compose.status, compose.upload_status, compose.error) == (ComposeStatus.FAILURE, UploadStatus.RUNNING, failed)


def test_each_upload_target_keeps_its_latest_report_in_target_order() -> None:
    with pytest.raises(ComposeRuleBroken):
        requested().record_upload(0, 0, "aws", UploadStatus.RUNNING, {})

    compose = accepted()
    compose.apply(compose.record_upload(0, 1, "local", UploadStatus.RUNNING, {}))
    compose.apply(compose.record_upload(0, 0, "aws", UploadStatus.RUNNING, {"region": "eu-central-1"}))
    compose.apply(compose.record_upload(0, 0, "aws", UploadStatus.SUCCESS, {"region": "eu-central-1", "ami": "ami-1"}))

    first, second = compose.upload_reports()
    assert (first.type, first.status, first.options) == ("aws", UploadStatus.SUCCESS, {"region": "eu-central-1", "ami": "ami-1"})
    assert (second.type, second.status) == ("local", UploadStatus.RUNNING)


def test_an_upload_job_state_reads_as_upstreams_upload_status() -> None:
    words = {status: composer.upload_status_of(status).value for status in JobStatus}

    assert words == {"pending": "pending", "running": "running", "success": "success", "failure": "failure",
                     "canceled": "failure"}  # fmt: skip


def test_a_compose_is_deleted_once() -> None:
    compose = accepted()
    compose.apply(compose.delete())

    assert compose.deleted
    with pytest.raises(ComposeRuleBroken):
        compose.delete()


def test_replaying_the_stored_events_gives_the_same_compose() -> None:
    live = accepted()
    events = [Compose.request("c-1", "org-a", REQUEST), history.ComposeSubmitted(composer_id="composer-1")]
    stored = [(event.event_type, event.payload()) for event in events]

    replayed = Compose.replay(event_from(kind, payload, HistoryEvent) for kind, payload in stored)

    assert vars(replayed) == vars(live)


def test_the_backends_and_the_composers_events_of_one_name_do_not_shadow_each_other() -> None:
    payload = {"compose_id": "c-1", "org_id": "org-a", "request": REQUEST}

    assert type(event_from("ComposeRequested", payload, HistoryEvent)) is history.ComposeRequested
    assert type(event_from("ComposeRequested", {**payload, "job_ids": []})) is composer.ComposeRequested


def test_a_second_event_class_of_a_taken_name_is_refused() -> None:
    with pytest.raises(TypeError, match="two event classes are named ComposeDeleted"):

        class ComposeDeleted(HistoryEvent, frozen=True, kw_only=True):
            pass

    assert DomainEvent.registry["ComposeDeleted"] is composer.ComposeDeleted
