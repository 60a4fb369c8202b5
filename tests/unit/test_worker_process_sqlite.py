"""The worker process against a real composer and issuer (job runners are the port under test's plug)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.composer_service import COMPOSE, Composer, running_composer, sha256
from tests.contracts.composer_api import REQUEST
from workers.client import Assignment, ComposerClient
from workers.process import JobFailure, Reporter, Worker


@pytest.fixture
async def composer(tmp_path: Path) -> AsyncIterator[Composer]:
    async with running_composer(f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}", tmp_path) as composer:
        yield composer


def worker_for(composer: Composer, runners: dict[str, Any]) -> tuple[Worker, ComposerClient]:
    client = ComposerClient(composer.url, composer.token_url, "worker", composer.secrets["worker"])
    return Worker(client, runners, name="test-worker", poll_timeout=2, watch_interval=0.2, log_interval=0.1), client


@asynccontextmanager
async def running(worker: Worker, client: ComposerClient) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 60)
        await client.close()


async def submit(composer: Composer) -> str:
    async with composer.client("alice-cli") as http:
        return (await http.post(f"{COMPOSE}/compose", json=REQUEST)).json()["id"]


async def status(composer: Composer, compose_id: str) -> dict[str, Any]:
    async with composer.client("alice-cli") as http:
        return (await http.get(f"{COMPOSE}/composes/{compose_id}")).json()


async def until(condition, what: str, timeout: float = 30) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.1)


def simple_runners(tmp_path: Path, client_holder: list[ComposerClient]) -> dict[str, Any]:
    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        reporter.log("resolved 1 package")
        return {"packages": [{"name": "nginx", "version": "1.22", "arch": "amd64"}]}

    async def build(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        await reporter.stage("bootstrap", 1, 2)
        image = tmp_path / "image.tar"
        image.write_bytes(b"tree" * 1000)
        await client_holder[0].upload(job.token, "image.tar", image, sha256(image.read_bytes()))
        return {"packages": job.dynamic_args["depsolve"]["packages"]}

    async def upload(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        return {"options": {"artifact": "image.tar"}}

    return {"depsolve": depsolve, "build": build, "upload": upload}


async def test_a_worker_takes_a_compose_through_all_its_jobs(composer: Composer, tmp_path: Path) -> None:
    holder: list[ComposerClient] = []
    worker, client = worker_for(composer, simple_runners(tmp_path, holder))
    holder.append(client)
    async with running(worker, client):
        compose_id = await submit(composer)
        await until(lambda: _is(composer, compose_id, "success"), "compose success")
        async with composer.client("alice-cli") as http:
            logs = (await http.get(f"{COMPOSE}/composes/{compose_id}/logs")).json()
            download = await http.get(f"{COMPOSE}/composes/{compose_id}/artifacts/image.tar")
        assert ["resolved 1 package"] in [build["log"] for build in logs["image_builds"]]
        assert download.content == b"tree" * 1000


async def test_a_failing_job_is_reported_with_its_reason(composer: Composer, tmp_path: Path) -> None:
    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        raise JobFailure("package nope not found", {"package": "nope"})

    worker, client = worker_for(composer, {"depsolve": depsolve})
    async with running(worker, client):
        compose_id = await submit(composer)
        await until(lambda: _is(composer, compose_id, "failure"), "compose failure")
        failed = await status(composer, compose_id)
        assert failed["error"]["reason"] == "package nope not found"
        assert failed["error"]["details"] == {"package": "nope"}


async def test_a_canceled_compose_stops_its_running_job(composer: Composer) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        started.set()
        await cancel.wait()
        stopped.set()
        raise asyncio.CancelledError

    worker, client = worker_for(composer, {"depsolve": depsolve})
    async with running(worker, client):
        compose_id = await submit(composer)
        await asyncio.wait_for(started.wait(), 30)
        async with composer.client("alice-cli") as http:
            await http.post(f"{COMPOSE}/composes/{compose_id}/cancel")
        await asyncio.wait_for(stopped.wait(), 10)
        assert (await status(composer, compose_id))["error"]["reason"] == "canceled"


async def test_a_canceled_job_busy_logging_is_stopped_by_the_refused_log_lines(composer: Composer) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        started.set()
        while not cancel.is_set():
            reporter.log("still resolving")
            await asyncio.sleep(0.05)
        stopped.set()
        raise asyncio.CancelledError

    worker, client = worker_for(composer, {"depsolve": depsolve})
    worker.watch_interval = 3600  # only the log lines can bring the news
    async with running(worker, client):
        compose_id = await submit(composer)
        await asyncio.wait_for(started.wait(), 30)
        async with composer.client("alice-cli") as http:
            await http.post(f"{COMPOSE}/composes/{compose_id}/cancel")
        await asyncio.wait_for(stopped.wait(), 5)


async def test_a_worker_keeps_a_short_lease_through_a_job_that_reports_its_stages(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}"
    async with running_composer(database, tmp_path, lease_seconds=1.2) as composer:
        async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
            for stage in range(8):  # over three leases long, a new stage now and then
                await reporter.stage(f"stage {stage}", stage, 8)
                await asyncio.sleep(0.5)
            return {"packages": []}

        client = ComposerClient(composer.url, composer.token_url, "worker", composer.secrets["worker"])
        worker = Worker(client, {"depsolve": depsolve}, name="test-worker", poll_timeout=2)
        async with running(worker, client):
            compose_id = await submit(composer)
            await until(lambda: _job_done(composer, compose_id), "depsolve finished", 30)
            async with composer.client("alice-cli") as http:
                logs = (await http.get(f"{COMPOSE}/composes/{compose_id}/logs")).json()
        assert (await status(composer, compose_id))["status"] != "failure", logs


async def test_a_result_finished_while_the_composer_is_down_is_delivered_when_it_is_back(composer: Composer) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"packages": [{"name": "bash", "version": "5.2", "arch": "amd64"}]}

    worker, client = worker_for(composer, {"depsolve": depsolve})
    worker.watch_interval = 3600  # no lease renewals in the way of this test
    async with running(worker, client):
        compose_id = await submit(composer)
        await asyncio.wait_for(started.wait(), 30)
        async with composer.outage():
            release.set()
            await asyncio.sleep(2)  # the worker tries, fails and keeps the result
        await until(lambda: _job_done(composer, compose_id), "result delivered after the outage", 60)


async def _is(composer: Composer, compose_id: str, wanted: str) -> bool:
    return (await status(composer, compose_id))["status"] == wanted


async def _job_done(composer: Composer, compose_id: str) -> bool:
    return (await status(composer, compose_id))["image_status"]["progress"]["done"] >= 1


async def test_a_stop_ends_an_idle_workers_long_poll_at_once(composer: Composer) -> None:
    client = ComposerClient(composer.url, composer.token_url, "worker", composer.secrets["worker"])
    # A poll far longer than the wait below: only a stop that ends the poll can pass.
    worker = Worker(client, {"depsolve": None}, name="idle-worker", poll_timeout=50)
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: _registered(worker), "registered")
        await asyncio.sleep(0.5)  # well into its first long poll
        worker.request_stop()
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
        await client.close()


async def _registered(worker: Worker) -> bool:
    return worker.worker_id is not None
