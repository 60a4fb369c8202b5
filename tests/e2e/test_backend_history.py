"""The backend's promise, with every piece a real process: the history follows the build without asking.

PostgreSQL (a database per service) and a Kafka broker come from the test
fixtures, the OpenID Connect issuer is served by the test; everything else is
an `image-builder` process as an operator runs it: `serve composer`, `relay
--service composer`, `serve backend` and a `worker` that really builds.

An osbuild blueprint is imported as TOML, a `tar` is composed from it, and
the compose's history entry on the backend moves pending -> building ->
success while the backend never asks the composer for a status: the
composer's own access log shows that its compose API heard nothing from
anyone but `POST /compose` until the image was downloaded through the
backend. (The test itself never calls the composer, and the worker speaks
only the worker API, so every compose-API line in that log is the backend's.)

One warm-cache `tar` build, ~40 s; the package cache is the one other build
tests use when IMAGE_BUILDER_TEST_CACHE names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from events.consumer import DEAD_LETTER_SUFFIX
from events.kafka import ensure_topics
from services.identity.config import IssuerConfig, new_client
from services.identity.issuer import create_issuer_app
from services.settings import SERVICE_TOPICS
from tests.cli import IMAGE_BUILDER, run_cli
from tests.servers._util import free_port
from tests.servers.asgi import reserve_socket, serving

pytestmark = pytest.mark.e2e

API = "/api/image-builder/v1"
COMPOSE_API = "/api/image-builder-composer/v2"
BUILD_TIMEOUT = 900.0
CLIENTS = {"alice-cli": ("org-a", ("user",)), "backend": ("org-services", ("service",)), "worker": ("org-workers", ("worker",))}
BLUEPRINT = """\
name = "history-e2e"
description = "A small image, as osbuild's composer-cli would push it"
version = "0.0.1"
distro = "debian-12"

[[packages]]
name = "curl"
version = "*"

[customizations]
hostname = "history-e2e"

[[customizations.user]]
name = "alice"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv1Tj1K2X0DqTQ3S3l9rJ5O7n0b4xD7PZ3cJw9b2xYz alice@example.com"

[[customizations.files]]
path = "/etc/history-e2e"
mode = "0640"
data = "imported from TOML\\n"
"""


@dataclass
class System:
    backend: str
    composer: str
    logs: Path
    user_token: str

    def composer_api_calls(self) -> list[str]:
        """`METHOD path` of every request the composer's compose API answered, from its access log."""
        calls = []
        for line in (self.logs / "composer.log").read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("logger") == "uvicorn.access":
                    method, path = entry["message"].split('"', 2)[1].split()[:2]
                    if path.startswith(COMPOSE_API):
                        calls.append(f"{method} {path}")
        return calls


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with (logs / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [str(IMAGE_BUILDER), *args], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Last started, first stopped: the composer would wait for the worker's long poll to end.
    The worker is killed: its graceful stop waits out that 30 s poll, and its job is done."""
    for name, process in reversed(processes.items()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if name == "worker" else signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


async def until(check: Callable[[], Any], what: str, timeout: float, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited:\n{(logs / f'{name}.log').read_text()[-3000:]}"
        with contextlib.suppress(httpx2.TransportError):
            if found := await check():
                return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        await asyncio.sleep(0.2)


@pytest.fixture
async def system(
    postgres_url_factory: Callable[..., str], kafka_bootstrap: str, cache_dir: Path, tmp_path: Path
) -> AsyncIterator[System]:
    logs = tmp_path / "logs"
    logs.mkdir()
    registrations, secrets = [], {}
    for client_id, (org, roles) in CLIENTS.items():
        registration, secrets[client_id] = new_client(client_id, org, roles)
        registrations.append(registration)
    issuer_sock, issuer_url = reserve_socket()
    issuer = IssuerConfig(issuer=issuer_url, data_dir=tmp_path / "issuer", clients=tuple(registrations))
    composer_port, backend_port = free_port(), free_port()
    env = {
        "IMAGE_BUILDER_DATA_DIR": str(tmp_path / "data"),
        "IMAGE_BUILDER_OIDC_ISSUER": issuer_url,
        "IMAGE_BUILDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "IMAGE_BUILDER_COMPOSER_DATABASE_URL": postgres_url_factory("composer"),
        "IMAGE_BUILDER_BACKEND_DATABASE_URL": postgres_url_factory("backend"),
        "IMAGE_BUILDER_COMPOSER_TRUSTED_CLIENTS": "backend",
        "IMAGE_BUILDER_BACKEND_COMPOSER_URL": f"http://127.0.0.1:{composer_port}",
        "IMAGE_BUILDER_BACKEND_CLIENT_ID": "backend",
        "IMAGE_BUILDER_BACKEND_CLIENT_SECRET": secrets["backend"],
        "IMAGE_BUILDER_WORKER_CLIENT_ID": "worker",
        "IMAGE_BUILDER_WORKER_CLIENT_SECRET": secrets["worker"],
        "IMAGE_BUILDER_WORKER_CACHE_DIR": str(cache_dir),
        "IMAGE_BUILDER_WORKER_WORK_DIR": str(tmp_path / "work"),
    }
    for service in ("composer", "backend"):
        migrated = await asyncio.to_thread(run_cli, "migrate", "--service", service, env=env)
        assert migrated.returncode == 0, migrated.stderr
    topic = SERVICE_TOPICS["composer"]
    await ensure_topics(kafka_bootstrap, [topic, topic + DEAD_LETTER_SUFFIX], 3)

    processes: dict[str, subprocess.Popen[bytes]] = {}
    async with serving(create_issuer_app(issuer), issuer_sock):
        try:
            processes["composer"] = start("composer", ["serve", "composer", "--port", str(composer_port)], env, logs)
            processes["relay"] = start("relay", ["relay", "--service", "composer"], env, logs)
            processes["backend"] = start("backend", ["serve", "backend", "--port", str(backend_port)], env, logs)
            composer_url, backend_url = f"http://127.0.0.1:{composer_port}", f"http://127.0.0.1:{backend_port}"
            processes["worker"] = start(
                "worker", ["worker", "--composer", composer_url, "--token-url", f"{issuer_url}/token", "--name", "e2e"], env, logs
            )  # fmt: skip
            async with httpx2.AsyncClient(timeout=10) as http:
                for url in (f"{composer_url}/ready", f"{backend_url}/ready"):
                    await until(lambda url=url: _ok(http, url), f"{url} answers", 60, processes, logs)
                response = await http.post(
                    f"{issuer_url}/token", data={"grant_type": "client_credentials"}, auth=("alice-cli", secrets["alice-cli"])
                )  # fmt: skip
            yield System(backend_url, composer_url, logs, response.json()["access_token"])
        finally:
            stop(processes)


async def _ok(http: httpx2.AsyncClient, url: str) -> bool:
    return (await http.get(url)).status_code == 200


async def test_a_blueprint_imported_from_toml_is_built_and_followed_in_the_history_without_asking_the_composer(
    system: System, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {system.user_token}"}
    async with httpx2.AsyncClient(base_url=system.backend, headers=headers, timeout=60) as http:
        imported = await http.post(
            f"{API}/blueprints/import", params={"image_type": "tar"}, content=BLUEPRINT,
            headers={"Content-Type": "application/toml"},
        )  # fmt: skip
        assert imported.status_code == 201, imported.text
        blueprint_id = imported.json()["id"]
        composed = await http.post(f"{API}/blueprints/{blueprint_id}/compose", json={})
        assert composed.status_code == 201, composed.text
        compose_id = composed.json()["id"]

        seen: list[str] = []
        deadline = time.monotonic() + BUILD_TIMEOUT
        while not seen or seen[-1] not in ("success", "failure"):
            assert time.monotonic() < deadline, f"the compose did not finish within {BUILD_TIMEOUT:.0f} s: {seen}"
            status = (await http.get(f"{API}/composes/{compose_id}")).json()["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            await asyncio.sleep(0.2)
        compose = (await http.get(f"{API}/composes/{compose_id}")).json()
        timeline = (await http.get(f"{API}/composes/{compose_id}/events")).json()["data"]
        before_download = system.composer_api_calls()

        upload = compose["image_status"]["upload_status"]
        (name,) = upload["options"]["artifacts"]
        digest = hashlib.sha256()
        image = tmp_path / name
        async with http.stream("GET", f"{API}/composes/{compose_id}/artifacts/{name}") as download:
            assert download.status_code == 200
            with image.open("wb") as out:
                async for chunk in download.aiter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
        checksum = download.headers["X-Checksum-SHA256"]

    assert seen[0] == "pending" and seen[-1] == "success", seen
    assert "building" in seen and seen == [s for s in ("pending", "building", "uploading", "success") if s in seen], seen
    assert compose["blueprint_id"] == blueprint_id and compose["blueprint_version"] == 1
    assert upload["type"] == "local" and upload["status"] == "success"
    recorded = [e["payload"]["status"] for e in timeline if e["type"] == "ComposeStatusRecorded"]
    assert recorded == ["building", "uploading", "success"]
    assert all(e["causation_id"] for e in timeline if e["type"] == "ComposeStatusRecorded")  # each a composer event
    # The backend handed the compose over and asked nothing more until the download.
    assert before_download == [f"POST {COMPOSE_API}/compose"], before_download
    (composer_id,) = {e["payload"]["composer_id"] for e in timeline if e["type"] == "ComposeSubmitted"}
    assert system.composer_api_calls() == [*before_download, f"GET {COMPOSE_API}/composes/{composer_id}/artifacts/{name}"]

    assert digest.hexdigest() == checksum
    with tarfile.open(image) as tree:
        names = tree.getnames()
        hostname = tree.extractfile("./etc/hostname")
        assert hostname is not None and hostname.read().decode().strip() == "history-e2e"
        note = tree.getmember("./etc/history-e2e")
        written = tree.extractfile(note)
        assert written is not None and written.read() == b"imported from TOML\n" and note.mode == 0o640
        keys = tree.extractfile("./home/alice/.ssh/authorized_keys")
        assert keys is not None and b"alice@example.com" in keys.read()
    assert "./usr/bin/curl" in names
