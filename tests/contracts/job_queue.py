"""The composer's job queue: same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from domain.composes import ComposeStatus, PlannedJob, plan_jobs
from domain.jobs import ERROR_BUILD_FAILED, ERROR_DEPENDENCY_FAILED, JobError, JobStatus, JobType, StaleToken
from events.engine import create_engine
from events.envelope import Actor
from events.migrations import upgrade_async
from events.store import EventStore
from services.composer.queue import JobQueue
from services.composer.records import compose_stream, job_stream
from tests.random_refs import random_org

ALL_TYPES = (JobType.DEPSOLVE, JobType.BUILD, JobType.UPLOAD)
IMAGE = {"architecture": "x86_64", "image_type": "tar", "upload_targets": [{"type": "local", "upload_options": {}}]}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def user(org: str) -> Actor:
    return Actor(subject="user-1", org_id=org, client="tests")


def independent_jobs(compose_id: str, count: int) -> list[PlannedJob]:
    return [
        PlannedJob(job_id=str(uuid.uuid4()), job_type=JobType.DEPSOLVE, args={"n": n}, dependencies=[])
        for n in range(count)
    ]


class JobQueueContract:
    @pytest.fixture
    async def store(self, database_url: str) -> AsyncIterator[EventStore]:
        await upgrade_async(database_url, "composer")
        engine = create_engine(database_url)
        store = EventStore(engine, outbox_topic="composer.events.v1")
        yield store
        await store.close()
        await engine.dispose()

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def queue(self, store: EventStore, clock: Clock) -> JobQueue:
        return JobQueue(store, lease=timedelta(seconds=60), max_attempts=2, clock=clock)

    async def submit(self, queue: JobQueue, org: str | None = None, images: int = 1, **kwargs: object) -> str:
        compose_id = str(uuid.uuid4())
        org = org or random_org()
        planned = plan_jobs(compose_id, [IMAGE] * images, {"distribution": "debian-12"})
        return await queue.submit(compose_id, org, {"distribution": "debian-12"}, planned, user(org), **kwargs)

    async def test_a_compose_offers_its_depsolve_first_and_its_build_only_after(self, queue: JobQueue) -> None:
        await self.submit(queue)

        depsolve = await queue.claim("worker-1", ALL_TYPES)
        assert depsolve is not None and depsolve.job_type is JobType.DEPSOLVE
        assert await queue.claim("worker-2", ALL_TYPES) is None

        await queue.finish(depsolve.token, {"packages": [{"name": "bash", "version": "5.2"}]})
        build = await queue.claim("worker-2", ALL_TYPES)

        assert build is not None and build.job_type is JobType.BUILD
        assert build.dependency_results == {"depsolve": {"packages": [{"name": "bash", "version": "5.2"}]}}

    async def test_a_claimer_only_gets_the_job_types_it_asked_for(self, queue: JobQueue) -> None:
        await self.submit(queue)

        assert await queue.claim("builder", [JobType.BUILD]) is None
        assert (await queue.claim("solver", [JobType.DEPSOLVE])) is not None

    async def test_a_compose_moves_through_building_and_uploading_to_success(
        self, queue: JobQueue, store: EventStore
    ) -> None:
        compose_id = await self.submit(queue)
        for job_type in ALL_TYPES:
            claim = await queue.claim("worker", [job_type])
            assert claim is not None
            await queue.finish(claim.token, {"done": job_type.value})

        statuses = [
            e.payload["status"] for e in await store.read_stream(compose_stream(compose_id))
            if e.event_type == "ComposeStatusChanged"
        ]  # fmt: skip
        assert statuses == [ComposeStatus.BUILDING, ComposeStatus.UPLOADING, ComposeStatus.SUCCESS]

    async def test_each_upload_records_its_state_and_result_in_the_compose_stream_before_the_success(
        self, queue: JobQueue, store: EventStore
    ) -> None:
        compose_id = await self.submit(queue)
        for job_type in ALL_TYPES:
            claim = await queue.claim("worker", [job_type])
            assert claim is not None
            await queue.finish(claim.token, {"options": {"url": "/artifacts/image.tar"}} if job_type is JobType.UPLOAD else {})

        stream = await store.read_stream(compose_stream(compose_id))
        uploads = [(e.payload["status"], e.payload["options"]) for e in stream if e.event_type == "UploadStatusChanged"]
        assert uploads == [("running", {}), ("success", {"url": "/artifacts/image.tar"})]
        assert [e.event_type for e in stream][-2:] == ["UploadStatusChanged", "ComposeStatusChanged"]
        assert {e.actor.org_id for e in stream} == {stream[0].payload["org_id"]}

    async def test_every_job_change_is_an_event_on_the_jobs_stream(self, queue: JobQueue, store: EventStore) -> None:
        await self.submit(queue)
        claim = await queue.claim("worker-1", ALL_TYPES)
        assert claim is not None
        await queue.finish(claim.token, {"ok": True})

        history = await store.read_stream(job_stream(claim.job_id))

        assert [e.event_type for e in history] == ["JobEnqueued", "JobClaimed", "JobFinished"]
        assert {e.correlation_id for e in history} == {claim.compose_id}
        assert history[1].actor.subject == "worker-1"

    async def test_a_result_posted_with_a_stale_token_is_refused(self, queue: JobQueue, clock: Clock) -> None:
        await self.submit(queue)
        first = await queue.claim("worker-1", ALL_TYPES)
        assert first is not None
        clock.advance(61)
        await queue.expire_leases()
        second = await queue.claim("worker-2", ALL_TYPES)
        assert second is not None and second.job_id == first.job_id

        with pytest.raises(StaleToken):
            await queue.finish(first.token, {"late": True})
        with pytest.raises(StaleToken):
            await queue.heartbeat(first.token)

        await queue.finish(second.token, {"ok": True})
        assert await queue.reads.job_status(first.job_id) is JobStatus.SUCCESS

    async def test_a_lapsed_lease_requeues_then_fails_with_a_clear_reason(self, queue: JobQueue, clock: Clock) -> None:
        compose_id = await self.submit(queue)
        for attempt in (1, 2):
            claim = await queue.claim(f"worker-{attempt}", ALL_TYPES)
            assert claim is not None, f"attempt {attempt} found no job"
            clock.advance(61)
            assert await queue.expire_leases() == 1

        assert await queue.claim("worker-3", ALL_TYPES) is None
        status = await queue.reads.compose_status(compose_id)
        assert status.status is ComposeStatus.FAILURE
        assert status.error is not None and status.error.reason == "worker stopped responding"

    async def test_a_heartbeat_keeps_the_lease_alive(self, queue: JobQueue, clock: Clock) -> None:
        await self.submit(queue)
        claim = await queue.claim("worker-1", ALL_TYPES)
        assert claim is not None

        for _ in range(3):
            clock.advance(45)
            assert await queue.heartbeat(claim.token) is JobStatus.RUNNING
            assert await queue.expire_leases() == 0

        await queue.finish(claim.token, {"ok": True})

    async def test_a_progress_report_does_not_undo_the_lease_renewals(self, queue: JobQueue, clock: Clock) -> None:
        await self.submit(queue)
        claim = await queue.claim("worker-1", ALL_TYPES)
        assert claim is not None

        for stage in range(3):
            clock.advance(45)
            await queue.heartbeat(claim.token)
            await queue.report_progress(claim.token, f"stage {stage}", stage, 3)
            assert await queue.expire_leases() == 0

        await queue.finish(claim.token, {"ok": True})

    async def test_a_failed_dependency_fails_its_dependents_with_its_error_in_details(self, queue: JobQueue) -> None:
        compose_id = await self.submit(queue)
        depsolve = await queue.claim("worker-1", ALL_TYPES)
        assert depsolve is not None
        error = JobError(id=ERROR_BUILD_FAILED, reason="package nope not found", details={"package": "nope"})

        await queue.fail(depsolve.token, error)

        status = await queue.reads.compose_status(compose_id)
        assert status.status is ComposeStatus.FAILURE
        jobs = await queue.reads.compose_jobs(compose_id)
        dependents = [job for job in jobs if job.job_type is not JobType.DEPSOLVE]
        assert dependents and all(job.status is JobStatus.FAILURE for job in dependents)
        build = next(job for job in dependents if job.job_type is JobType.BUILD)
        assert build.error is not None and build.error.id == ERROR_DEPENDENCY_FAILED
        assert build.error.details["error"]["reason"] == "package nope not found"
        assert await queue.claim("worker-2", ALL_TYPES) is None

    async def test_one_tenants_thousand_jobs_do_not_starve_anothers_single_job(self, queue: JobQueue) -> None:
        busy, quiet = random_org(), random_org()
        compose_id = str(uuid.uuid4())
        await queue.submit(compose_id, busy, {}, independent_jobs(compose_id, 1000), user(busy))
        await queue.claim("worker-1", ALL_TYPES)
        lonely = str(uuid.uuid4())
        await queue.submit(lonely, quiet, {}, independent_jobs(lonely, 1), user(quiet))

        served = [await queue.claim(f"worker-{n}", ALL_TYPES) for n in range(2)]

        assert lonely in {claim.compose_id for claim in served if claim is not None}

    async def test_canceling_a_compose_stops_its_running_job_and_fails_it_as_canceled(self, queue: JobQueue) -> None:
        org = random_org()
        compose_id = await self.submit(queue, org)
        running = await queue.claim("worker-1", ALL_TYPES)
        assert running is not None

        await queue.cancel_compose(compose_id, user(org))

        assert await queue.heartbeat(running.token) is JobStatus.CANCELED
        with pytest.raises(StaleToken):
            await queue.finish(running.token, {"too": "late"})
        status = await queue.reads.compose_status(compose_id)
        assert status.status is ComposeStatus.FAILURE and status.error is not None
        assert status.error.reason == "canceled"
        assert await queue.claim("worker-2", ALL_TYPES) is None

    async def test_a_retried_submission_with_the_same_idempotency_key_is_one_compose(self, queue: JobQueue) -> None:
        org = random_org()
        first = await self.submit(queue, org, idempotency_key="abc")
        second = await self.submit(queue, org, idempotency_key="abc")
        other_org = await self.submit(queue, random_org(), idempotency_key="abc")

        assert first == second != other_org
        assert len(await queue.reads.compose_jobs(first)) == 3

    async def test_each_of_1000_jobs_is_claimed_once_by_50_racing_claimers(self, queue: JobQueue) -> None:
        for _ in range(10):
            compose_id = str(uuid.uuid4())
            org = random_org()
            await queue.submit(compose_id, org, {}, independent_jobs(compose_id, 100), user(org))
        claimed: list[str] = []

        async def claimer(name: str) -> None:
            while (claim := await queue.claim(name, ALL_TYPES)) is not None:
                claimed.append(claim.job_id)

        await asyncio.gather(*(claimer(f"worker-{n}") for n in range(50)))

        assert len(claimed) == 1000
        assert len(set(claimed)) == 1000

    async def test_jobs_of_one_compose_finishing_at_once_leave_it_in_success(self, queue: JobQueue) -> None:
        # Each conclusion derives the compose's status from all its jobs; two
        # concurrent last conclusions must not both miss the other's.
        composes = []
        for _ in range(20):
            compose_id = str(uuid.uuid4())
            org = random_org()
            await queue.submit(compose_id, org, {}, independent_jobs(compose_id, 4), user(org))
            composes.append(compose_id)
        claims = []
        while (claim := await queue.claim("worker-1", ALL_TYPES)) is not None:
            claims.append(claim)

        await asyncio.gather(*(queue.finish(claim.token, {}) for claim in claims))

        statuses = [(await queue.reads.compose_status(c)).status for c in composes]
        assert statuses == [ComposeStatus.SUCCESS] * len(composes)

    async def test_a_waiting_claimer_wakes_as_soon_as_a_job_is_ready(self, queue: JobQueue) -> None:
        waiting = asyncio.create_task(queue.wait_and_claim("worker-1", ALL_TYPES, timeout=120))
        await asyncio.sleep(0.2)
        assert not waiting.done()

        await self.submit(queue)

        claim = await asyncio.wait_for(waiting, 10)
        assert claim is not None and claim.job_type is JobType.DEPSOLVE

    async def test_a_long_poll_returns_nothing_after_its_timeout(self, queue: JobQueue) -> None:
        assert await queue.wait_and_claim("worker-1", ALL_TYPES, timeout=0.3) is None

    async def test_a_restarted_composer_has_every_job_in_the_state_it_left(
        self, queue: JobQueue, database_url: str, clock: Clock
    ) -> None:
        composes = [await self.submit(queue, org) for org in (random_org() for _ in range(5))]
        done = await queue.claim("w", [JobType.DEPSOLVE])
        broken = await queue.claim("w", [JobType.DEPSOLVE])
        held = await queue.claim("w", [JobType.DEPSOLVE])
        doomed = await queue.claim("w", [JobType.DEPSOLVE])
        assert done and broken and held and doomed
        await queue.finish(done.token, {"ok": 1})
        await queue.fail(broken.token, JobError(id=ERROR_BUILD_FAILED, reason="boom"))
        await queue.cancel_compose(doomed.compose_id, Actor(subject="u", org_id="o"))
        before = {cid: await queue.reads.compose_jobs(cid) for cid in composes}
        states = {job.status for jobs in before.values() for job in jobs}
        assert states == {JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.CANCELED}

        engine = create_engine(database_url)
        try:
            restarted = JobQueue(EventStore(engine), clock=clock)
            after = {cid: await restarted.reads.compose_jobs(cid) for cid in composes}
            assert after == before
            await restarted.finish(held.token, {"after": "restart"})
            assert await restarted.reads.job_status(held.job_id) is JobStatus.SUCCESS
            assert (await restarted.claim("w", [JobType.BUILD])) is not None
        finally:
            await engine.dispose()
