"""The job queue on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from domain.jobs import JobType
from events.engine import create_engine
from events.migrations import upgrade_async
from events.store import EventStore
from services.composer.background import QueueBackground
from services.composer.queue import JobQueue
from tests.contracts.job_queue import JobQueueContract, independent_jobs, user
from tests.random_refs import random_org

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestJobQueueOnPostgreSQL(JobQueueContract):
    pass


async def test_a_ready_job_wakes_a_worker_waiting_on_another_composer_replica(postgres_url: str) -> None:
    await upgrade_async(postgres_url, "composer")
    engines = [create_engine(postgres_url) for _ in range(2)]
    waiting_replica, submitting_replica = (JobQueue(EventStore(engine)) for engine in engines)
    background = QueueBackground(waiting_replica)
    await background.start()
    try:
        waiting = asyncio.create_task(waiting_replica.wait_and_claim("worker-1", [JobType.DEPSOLVE], timeout=120))
        await asyncio.sleep(0.3)
        compose_id = str(uuid.uuid4())
        org = random_org()
        await submitting_replica.submit(compose_id, org, {}, independent_jobs(compose_id, 1), user(org))

        claim = await asyncio.wait_for(waiting, 10)

        assert claim is not None and claim.compose_id == compose_id
    finally:
        await background.stop()
        for engine in engines:
            await engine.dispose()
