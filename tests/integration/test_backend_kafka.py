"""`image-builder serve backend` as its own process: PostgreSQL, Kafka, a real composer.

A composer event travels its outbox -> relay -> Kafka -> the backend's
consumer -> the build history, with no call from the backend to the composer
for status.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from events.consumer import DEAD_LETTER_SUFFIX
from events.kafka import KafkaTransport, ensure_topics
from services.settings import SERVICE_TOPICS
from tests.backend_service import API, BACKEND_CLIENT, relaying
from tests.cli import IMAGE_BUILDER, run_cli
from tests.composer_service import COMPOSE, WORKER, running_composer
from tests.contracts.backend_api import REQUEST
from tests.contracts.composer_api import claim, register
from tests.contracts.pipeline import eventually
from tests.servers._util import free_port

pytestmark = pytest.mark.integration


async def test_a_backend_process_follows_the_composers_events_through_kafka(
    postgres_url: str, postgres_url_factory: Callable[..., str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = SERVICE_TOPICS["composer"]
    await ensure_topics(kafka_bootstrap, [topic, topic + DEAD_LETTER_SUFFIX], 3)
    backend_url = postgres_url_factory("backend")
    port = free_port()
    async with running_composer(postgres_url, tmp_path) as composer, relaying(postgres_url, KafkaTransport(kafka_bootstrap)):
        env = {
            "IMAGE_BUILDER_BACKEND_DATABASE_URL": backend_url,
            "IMAGE_BUILDER_OIDC_ISSUER": composer.issuer_url,
            "IMAGE_BUILDER_BACKEND_COMPOSER_URL": composer.url,
            "IMAGE_BUILDER_BACKEND_CLIENT_ID": BACKEND_CLIENT,
            "IMAGE_BUILDER_BACKEND_CLIENT_SECRET": composer.secrets[BACKEND_CLIENT],
            "IMAGE_BUILDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "IMAGE_BUILDER_DATA_DIR": str(tmp_path / "data"),
        }
        migrated = await asyncio.to_thread(run_cli, "migrate", "--service", "backend", env=env)
        assert migrated.returncode == 0, migrated.stderr
        # Its output goes to a file: a pipe nobody reads while the test polls
        # fills up with access-log lines, and the backend blocks on a write.
        output = tmp_path / "backend.log"
        with output.open("w") as log:
            process = subprocess.Popen(
                [str(IMAGE_BUILDER), "serve", "backend", "--port", str(port)],
                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        try:
            user = {"Authorization": f"Bearer {await composer.token('alice-cli')}"}
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=user, timeout=30) as backend:

                async def ready() -> bool:
                    try:
                        return (await backend.get("/ready")).status_code == 200
                    except httpx2.TransportError:
                        return process.poll() is not None

                await eventually(ready, "the backend process is ready", timeout=30)
                assert process.poll() is None
                created = await backend.post(f"{API}/compose", json=REQUEST)
                assert created.status_code == 201, created.text
                compose_id = created.json()["id"]

                async def status_is(wanted: str) -> bool:
                    return (await backend.get(f"{API}/composes/{compose_id}")).json()["status"] == wanted

                async with composer.client("worker") as worker:
                    worker_id = await register(worker)
                    job = await claim(worker, worker_id, ["depsolve"], timeout=30)
                    await eventually(lambda: status_is("building"), "building, by way of Kafka", timeout=60)
                    canceled = await worker.patch(f"{WORKER}/jobs/{job['token']}", json={"error": {"reason": "no mirror"}})
                    assert canceled.status_code == 200, canceled.text
                await eventually(lambda: status_is("failure"), "failure, by way of Kafka", timeout=60)
                compose = (await backend.get(f"{API}/composes/{compose_id}")).json()
                timeline = (await backend.get(f"{API}/composes/{compose_id}/events")).json()["data"]
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, timeout=30)
            stderr = output.read_text()
        async with composer.client("alice-cli") as alice:
            on_composer = (await alice.get(f"{COMPOSE}/composes")).json()["items"]

    assert "no mirror" in json.dumps(compose["image_status"]["error"])
    # The failed depsolve fails the upload behind it too, and the composer says so before the compose's failure.
    assert [event["type"] for event in timeline] == [
        "ComposeRequested", "ComposeSubmitted", "ComposeStatusRecorded", "ComposeUploadRecorded", "ComposeStatusRecorded",
    ]  # fmt: skip
    assert [event["payload"]["status"] for event in timeline[2:]] == ["building", "failure", "failure"]
    assert [item["id"] for item in on_composer] == [timeline[1]["payload"]["composer_id"]]
    assert "Traceback" not in stderr, stderr[-3000:]


def test_serve_backend_names_each_missing_setting(tmp_path: Path) -> None:
    refused = run_cli("serve", "backend", env={"IMAGE_BUILDER_OIDC_ISSUER": "", "IMAGE_BUILDER_DATA_DIR": str(tmp_path)})

    assert refused.returncode == 2
    for name in ("IMAGE_BUILDER_OIDC_ISSUER", "IMAGE_BUILDER_BACKEND_COMPOSER_URL", "IMAGE_BUILDER_BACKEND_CLIENT_ID",
                 "IMAGE_BUILDER_KAFKA_BOOTSTRAP"):  # fmt: skip
        assert name in refused.stderr
