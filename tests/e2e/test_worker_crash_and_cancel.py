"""Real `image-builder worker` processes building real images: one killed mid-build, one build canceled.

A composer (on PostgreSQL, with a short lease) serves two kinds of trouble:

- a worker is SIGKILLed while mmdebstrap runs: its commands die with it, the
  lease lapses, the job is requeued and a second worker on the same machine
  (same work root) finishes it, after removing what the first one left;
- a running build is canceled: within 10 s the worker has killed every process
  it started and removed the build's directory, and the compose failed with
  reason "canceled".

Both wait for mmdebstrap to have mounted /proc and /sys into the tree before
they strike, so "no mount left behind" is checked at the worst moment. The
module shares one package cache; set IMAGE_BUILDER_TEST_CACHE to keep it
between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from events.engine import create_engine
from events.store import EventStore
from services.composer.records import job_stream
from tests.cli import IMAGE_BUILDER
from tests.composer_service import COMPOSE, Composer, running_composer
from tests.processes import alive, command_line, descendants, mounts_under

pytestmark = pytest.mark.e2e

# Renewed every 2 s (a third of it): a worker's loop may stall 4 s on a busy machine before it loses a job.
LEASE_SECONDS = 6.0
CANCEL_BOUND = 10.0
BUILD_TIMEOUT = 900.0


def tar_request(hostname: str) -> dict[str, Any]:
    return {
        "distribution": "debian-12",
        "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
        "customizations": {"hostname": hostname},
    }


@pytest.fixture
async def composer(postgres_url: str, tmp_path: Path) -> AsyncIterator[Composer]:
    # A short shutdown grace: a worker's long poll would hold the composer's teardown for 30 s.
    async with running_composer(
        postgres_url, tmp_path / "composer", shutdown_grace=1, lease_seconds=LEASE_SECONDS
    ) as composer:
        yield composer


class WorkerProcess:
    """`image-builder worker` as an operator runs it, in its own session so a test can kill all of it."""

    def __init__(self, composer: Composer, cache_dir: Path, work_root: Path, name: str) -> None:
        self.log_path = work_root.parent / f"{name}.log"
        env = {
            **os.environ,
            "IMAGE_BUILDER_WORKER_CLIENT_ID": "worker",
            "IMAGE_BUILDER_WORKER_CLIENT_SECRET": composer.secrets["worker"],
            "IMAGE_BUILDER_WORKER_CACHE_DIR": str(cache_dir),
            "IMAGE_BUILDER_WORKER_WORK_DIR": str(work_root),
            "IMAGE_BUILDER_DATA_DIR": str(work_root.parent / "data"),
        }
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [str(IMAGE_BUILDER), "worker", "--composer", composer.url, "--token-url", composer.token_url, "--name", name],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text()[-5000:]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def workers(composer: Composer, cache_dir: Path, tmp_path: Path) -> Iterator[Callable[[str], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        worker = WorkerProcess(composer, cache_dir, tmp_path / "work", name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


async def submit(composer: Composer, request: dict[str, Any]) -> str:
    async with composer.client("alice-cli") as http:
        created = await http.post(f"{COMPOSE}/compose", json=request)
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def compose_status(composer: Composer, compose_id: str) -> dict[str, Any]:
    async with composer.client("alice-cli") as http:
        return (await http.get(f"{COMPOSE}/composes/{compose_id}")).json()


async def bootstrap_with_mounts(composer: Composer, compose_id: str, worker: WorkerProcess, work_root: Path) -> None:
    """Wait until the build is in its bootstrap stage and mmdebstrap has mounted into the tree."""
    deadline = time.monotonic() + BUILD_TIMEOUT
    while True:
        status = await compose_status(composer, compose_id)
        assert status["status"] not in ("success", "failure"), status
        if status["image_status"]["progress"].get("stage") == "bootstrap" and any(
            mounts_under(work_root, pid) for pid in descendants(worker.pid)
        ):
            return
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()}"
        assert time.monotonic() < deadline, f"no bootstrap with mounts within {BUILD_TIMEOUT:.0f}s:\n{worker.log()}"
        await asyncio.sleep(0.2)


async def finished(composer: Composer, compose_id: str, worker: WorkerProcess) -> dict[str, Any]:
    deadline = time.monotonic() + BUILD_TIMEOUT
    while (status := await compose_status(composer, compose_id))["status"] not in ("success", "failure"):
        assert time.monotonic() < deadline, f"compose not finished within {BUILD_TIMEOUT:.0f}s:\n{worker.log()}"
        await asyncio.sleep(1)
    return status


async def build_job_id(composer: Composer, compose_id: str) -> str:
    async with composer.client("alice-cli") as http:
        logs = (await http.get(f"{COMPOSE}/composes/{compose_id}/logs")).json()
    [build] = [job for job in logs["image_builds"] if job["job_type"] == "build"]
    return build["job_id"]


async def job_events(database_url: str, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    engine = create_engine(database_url, pool_size=1)
    try:
        stored = await EventStore(engine).read_stream(job_stream(job_id))
    finally:
        await engine.dispose()
    return [(event.event_type, event.payload) for event in stored]


def runs_mmdebstrap(argv: list[str]) -> bool:
    """mmdebstrap is a Perl script: its command line starts with the interpreter."""
    return any(Path(part).name == "mmdebstrap" for part in argv[:2])


def still_running(snapshot: dict[int, list[str]]) -> dict[int, list[str]]:
    """The processes of `snapshot` that still run (same pid, same command line)."""
    return {pid: argv for pid, argv in snapshot.items() if alive(pid) and command_line(pid) == argv}


async def test_a_build_whose_worker_is_killed_is_requeued_and_finished_by_another_worker(
    composer: Composer, workers: Callable[[str], WorkerProcess], postgres_url: str, tmp_path: Path
) -> None:
    work_root = tmp_path / "work"
    first = workers("first")
    compose_id = await submit(composer, tar_request("after-a-crash"))
    await bootstrap_with_mounts(composer, compose_id, first, work_root)
    [left_behind] = list(work_root.iterdir())
    orphans = descendants(first.pid)
    assert any(runs_mmdebstrap(argv) for argv in orphans.values()), orphans

    os.kill(first.pid, signal.SIGKILL)  # the worker alone, as the OOM killer would
    first.process.wait(30)
    deadline = time.monotonic() + 5
    while survivors := still_running(orphans):
        assert time.monotonic() < deadline, f"the killed worker's commands kept running: {survivors}"
        await asyncio.sleep(0.1)
    assert mounts_under(work_root) == []

    second = workers("second")
    status = await finished(composer, compose_id, second)
    assert status["status"] == "success", f"{status}\n{second.log()}"

    events = await job_events(postgres_url, await build_job_id(composer, compose_id))
    kinds = [kind for kind, _ in events]
    assert kinds.count("JobClaimed") == 2 and "JobRequeued" in kinds, kinds
    assert "JobClaimed" in kinds[kinds.index("JobRequeued") :], kinds
    claimers = [payload["worker_id"] for kind, payload in events if kind == "JobClaimed"]
    assert claimers[0] != claimers[1]

    async with composer.client("alice-cli") as http:
        image = await http.get(status["image_status"]["upload_status"]["options"]["url"])
    assert image.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(image.content)) as tree:
        hostname = tree.extractfile("./etc/hostname")
        assert hostname is not None and hostname.read().decode().strip() == "after-a-crash"

    # The second worker removed the first one's workspace when it started, and its own build's directory after it.
    assert not left_behind.exists()
    [workspace] = list(work_root.iterdir())
    assert list(workspace.iterdir()) == []


async def test_a_canceled_build_stops_its_processes_and_removes_its_tree_within_10_seconds(
    composer: Composer, workers: Callable[[str], WorkerProcess], tmp_path: Path
) -> None:
    work_root = tmp_path / "work"
    worker = workers("canceled")
    compose_id = await submit(composer, tar_request("never-built"))
    await bootstrap_with_mounts(composer, compose_id, worker, work_root)
    [workspace] = list(work_root.iterdir())
    [build_dir] = list(workspace.iterdir())
    assert any(runs_mmdebstrap(argv) for argv in descendants(worker.pid).values())

    async with composer.client("alice-cli") as http:
        canceled = await http.post(f"{COMPOSE}/composes/{compose_id}/cancel")
    started = time.monotonic()
    assert canceled.status_code < 300, canceled.text

    took: dict[str, float] = {}
    while len(took) < 3 and time.monotonic() - started < CANCEL_BOUND:
        elapsed = time.monotonic() - started
        if "processes" not in took and not descendants(worker.pid):
            took["processes"] = elapsed
        if "tree" not in took and not build_dir.exists():
            took["tree"] = elapsed
        if "status" not in took and (await compose_status(composer, compose_id))["status"] == "failure":
            took["status"] = elapsed
        await asyncio.sleep(0.1)
    assert len(took) == 3, f"after {CANCEL_BOUND:.0f}s only {took} were done: {descendants(worker.pid)}\n{worker.log()}"
    print(f"cancel: processes gone after {took['processes']:.1f}s, tree after {took['tree']:.1f}s")

    status = await compose_status(composer, compose_id)
    assert status["error"]["reason"] == "canceled"
    assert mounts_under(work_root) == []
    assert worker.process.poll() is None, "the worker itself keeps running"
    assert "stopped: canceled or no longer ours" in worker.log()
