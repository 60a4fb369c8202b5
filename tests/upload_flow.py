"""A compose taken through a real composer by a real worker whose upload job is the real one.

Depsolve and build are stand-ins (a real build takes minutes): the build
streams a small image to the composer exactly as the real one does, then the
worker's real upload runner fetches it back and sends it on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.composer_service import COMPOSE, Composer, sha256
from workers.aws.config import AwsConfig
from workers.client import Assignment, ComposerClient
from workers.process import Reporter, Worker
from workers.uploads import upload_runner


def compose_request(image_type: str, target: dict[str, Any]) -> dict[str, Any]:
    return {
        "distribution": "debian-12",
        "image_requests": [{"architecture": "x86_64", "image_type": image_type, "upload_targets": [target]}],
    }


@asynccontextmanager
async def uploading_worker(
    composer: Composer, work_dir: Path, aws: AwsConfig, image_name: str, image: bytes, gate: asyncio.Event | None = None
) -> AsyncIterator[None]:
    """A worker whose build produces ``image`` as ``image_name``, running for the block;
    with a ``gate``, each depsolve waits until it is set (the compose stays building)."""
    client = ComposerClient(composer.url, composer.token_url, "worker", composer.secrets["worker"])

    async def depsolve(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        if gate is not None:
            await gate.wait()
        return {"packages": []}

    async def build(job: Assignment, reporter: Reporter, cancel: asyncio.Event) -> dict[str, Any]:
        built = work_dir / "build" / image_name
        built.parent.mkdir(parents=True, exist_ok=True)
        built.write_bytes(image)
        await client.upload(job.token, image_name, built, sha256(image))
        built.unlink()  # as the real build does: the upload job must fetch it from the composer
        return {"packages": [], "artifacts": [{"name": image_name, "sha256": sha256(image), "size": len(image)}]}

    runners = {"depsolve": depsolve, "build": build, "upload": upload_runner(client, work_dir / "uploads", aws)}
    worker = Worker(client, runners, name="upload-test-worker", poll_timeout=2, watch_interval=0.5, log_interval=0.1)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 60)
        await client.close()


async def compose_until_done(composer: Composer, request: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    """Submit ``request`` and wait for success or failure; the final status document."""
    async with composer.client("alice-cli") as http:
        response = await http.post(f"{COMPOSE}/compose", json=request)
        assert response.status_code == 201, response.text
        compose_id = response.json()["id"]
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status = (await http.get(f"{COMPOSE}/composes/{compose_id}")).json()
            if status["status"] in ("success", "failure"):
                return status
            assert asyncio.get_running_loop().time() < deadline, f"compose not done within {timeout}s: {status}"
            await asyncio.sleep(0.2)


async def compose_logs(composer: Composer, compose_id: str) -> list[str]:
    async with composer.client("alice-cli") as http:
        logs = (await http.get(f"{COMPOSE}/composes/{compose_id}/logs")).json()
    return [line for job in logs["image_builds"] for line in job["log"]]
