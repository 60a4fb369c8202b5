"""The distributed topology as separate processes on this machine, losing a composer and a worker mid-way.

PostgreSQL (one database per service) and a Kafka broker come from the test
fixtures; everything else is an `image-builder` process as an operator runs
it: the built-in issuer (`serve issuer`), two composer replicas, one relay per
service, two backend replicas, the frontend and three workers. The composer
replicas sit behind a small TCP balancer (as DNS round robin or a load
balancer would in a deployment): workers and backends name one composer URL
and reach whichever replica still answers.

Twenty composes, ten per org, go in through both backends. Once some have
finished, one composer replica and one worker are SIGKILLed (the worker
mid-build). Then every compose must succeed in its org's history on either
backend, the composer must hold each backend compose exactly once (one
ComposeRequested per idempotency key), each job must have finished exactly
once, and each compose's statuses recorded by the backend must be the
composer's ComposeStatusChanged events, in order.

Builds are real: twenty `tar` builds of one small request. A warm-cache
`tar` build is mmdebstrap's minbase plus packing, CPU-bound; the first
compose runs alone, warming the shared package cache. The whole test took
10 minutes here while the machine's two cores were shared with other work
(each build 45-60 s instead of about 25 s); a `guest-image` (about a minute
each) would not fit. Set IMAGE_BUILDER_TEST_CACHE to keep the package cache
between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from events.engine import create_engine
from events.store import EventStore
from services.identity.config import IssuerConfig, new_client
from tests.cli import IMAGE_BUILDER, run_cli
from tests.processes import descendants
from tests.servers._util import free_port, port_open

pytestmark = pytest.mark.e2e

API = "/api/image-builder/v1"
COMPOSES = 20
LEASE_SECONDS = 6.0
TIMEOUT = 900.0
CLIENTS = {
    "alice-cli": ("org-a", ("user",)),
    "bob-cli": ("org-b", ("user",)),
    "backend": ("org-services", ("service",)),
    "worker": ("org-workers", ("worker",)),
}
REQUEST = {"distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}


class Processes:
    """`image-builder` processes, each in its own session with its log in a file."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.started = root, env, {}

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("w") as log:
            process = subprocess.Popen(
                [str(IMAGE_BUILDER), *args], env={**os.environ, **self.env, **env},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started[name] = process
        return process

    def kill(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.started[name].pid, signal.SIGKILL)
        self.started[name].wait(30)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()[-4000:]

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM to all, then one shared grace period (a worker's long poll may outlast it), then SIGKILL."""
        for name, process in self.started.items():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in self.started:
            try:
                self.started[name].wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(name)


@contextlib.asynccontextmanager
async def balancer(upstreams: list[int]) -> AsyncIterator[int]:
    """Each connection goes to the next upstream port that accepts it."""
    turn = itertools.cycle(range(len(upstreams)))

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = next(turn)
        for index in range(len(upstreams)):
            port = upstreams[(first + index) % len(upstreams)]
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            return
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path, {"IMAGE_BUILDER_DATA_DIR": str(tmp_path / "data")})
    yield running
    running.stop_all()


async def until(check: Callable[[], Any], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f}s"
        await asyncio.sleep(0.5)


async def serving(port: int, name: str, processes: Processes, timeout: float = 60) -> None:
    async def up() -> bool:
        assert processes.started[name].poll() is None, f"{name} exited:\n{processes.log(name)}"
        return port_open(port)

    await until(up, f"{name} listens on {port}", timeout)


async def token(issuer: str, client_id: str, secret: str) -> str:
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{issuer}/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    response.raise_for_status()
    return response.json()["access_token"]


async def events_of(database_url: str) -> list[Any]:
    engine = create_engine(database_url, pool_size=1)
    try:
        store, found = EventStore(engine), []
        while batch := await store.read_all(found[-1].position if found else 0):
            found.extend(batch)
        return found
    finally:
        await engine.dispose()


async def test_twenty_composes_from_two_orgs_finish_exactly_once_through_a_composer_and_a_worker_dying(
    postgres_url_factory: Callable[..., str], kafka_bootstrap: str, processes: Processes, cache_dir: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    composer_db, backend_db = postgres_url_factory("composer"), postgres_url_factory("backend")
    for service, url in (("composer", composer_db), ("backend", backend_db)):
        migrated = run_cli("migrate", "--service", service, env={f"IMAGE_BUILDER_{service.upper()}_DATABASE_URL": url})
        assert migrated.returncode == 0, migrated.stderr

    issuer_port = free_port()
    issuer_url = f"http://127.0.0.1:{issuer_port}/oidc"
    frontend_port = free_port()
    registrations, secrets = [], {}
    for client_id, (org, roles) in CLIENTS.items():
        registration, secrets[client_id] = new_client(client_id, org, roles)
        registrations.append(registration)
    frontend, secrets["frontend"] = new_client(
        "frontend", "org-services", (), grant_types=("authorization_code",),
        redirect_uris=(f"http://127.0.0.1:{frontend_port}/auth/callback",),
    )  # fmt: skip
    IssuerConfig(issuer=issuer_url, data_dir=tmp_path / "issuer", clients=(*registrations, frontend)).save(
        tmp_path / "issuer.json"
    )
    processes.start("issuer", "serve", "issuer", "--port", str(issuer_port), IMAGE_BUILDER_ISSUER_CONFIG=str(tmp_path / "issuer.json"))
    await serving(issuer_port, "issuer", processes)

    common = {"IMAGE_BUILDER_OIDC_ISSUER": issuer_url, "IMAGE_BUILDER_KAFKA_BOOTSTRAP": kafka_bootstrap}
    composer_env = {
        **common, "IMAGE_BUILDER_COMPOSER_DATABASE_URL": composer_db, "IMAGE_BUILDER_COMPOSER_TRUSTED_CLIENTS": "backend",
        "IMAGE_BUILDER_COMPOSER_LEASE_SECONDS": str(LEASE_SECONDS), "IMAGE_BUILDER_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "IMAGE_BUILDER_RELAY_POLL_INTERVAL": "0.5",
    }  # fmt: skip
    composer_ports = [free_port(), free_port()]
    for index, port in enumerate(composer_ports):
        processes.start(f"composer-{index}", "serve", "composer", "--port", str(port), **composer_env)
    for index, port in enumerate(composer_ports):
        await serving(port, f"composer-{index}", processes)
    processes.start("composer-relay", "relay", "--service", "composer", **composer_env)

    async with balancer(composer_ports) as composer_port:
        composer_url = f"http://127.0.0.1:{composer_port}"
        backend_env = {
            **common, "IMAGE_BUILDER_BACKEND_DATABASE_URL": backend_db, "IMAGE_BUILDER_BACKEND_COMPOSER_URL": composer_url,
            "IMAGE_BUILDER_BACKEND_CLIENT_ID": "backend", "IMAGE_BUILDER_BACKEND_CLIENT_SECRET": secrets["backend"],
            "IMAGE_BUILDER_BACKEND_PACKAGE_CACHE_DIR": str(cache_dir), "IMAGE_BUILDER_RELAY_POLL_INTERVAL": "0.5",
        }  # fmt: skip
        processes.start("backend-relay", "relay", "--service", "backend", **backend_env)
        backend_ports = [free_port(), free_port()]
        for index, port in enumerate(backend_ports):
            processes.start(f"backend-{index}", "serve", "backend", "--port", str(port), **backend_env)
        processes.start(
            "frontend", "serve", "frontend", "--port", str(frontend_port), **common,
            IMAGE_BUILDER_FRONTEND_BACKEND_URL=f"http://127.0.0.1:{backend_ports[0]}", IMAGE_BUILDER_FRONTEND_CLIENT_ID="frontend",
            IMAGE_BUILDER_FRONTEND_CLIENT_SECRET=secrets["frontend"], IMAGE_BUILDER_FRONTEND_SESSION_SECRET="s" * 40,
        )  # fmt: skip
        worker_env = {
            **common, "IMAGE_BUILDER_WORKER_CLIENT_ID": "worker", "IMAGE_BUILDER_WORKER_CLIENT_SECRET": secrets["worker"],
            "IMAGE_BUILDER_WORKER_CACHE_DIR": str(cache_dir), "IMAGE_BUILDER_WORKER_WORK_DIR": str(tmp_path / "builds"),
            "IMAGE_BUILDER_INSTALL_BUILD_TOOLS": "never",
        }  # fmt: skip
        for index in range(3):
            processes.start(f"worker-{index}", "worker", "--composer", composer_url, "--name", f"worker-{index}", **worker_env)
        for index, port in enumerate(backend_ports):
            await serving(port, f"backend-{index}", processes)
        await serving(frontend_port, "frontend", processes)

        users = {org: await token(issuer_url, client, secrets[client]) for client, (org, _) in CLIENTS.items() if org in ("org-a", "org-b")}
        backends = [
            httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) for port in backend_ports
        ]
        try:
            def auth(org: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {users[org]}"}

            async def submit(index: int) -> tuple[str, str]:
                org = ("org-a", "org-b")[index % 2]
                created = await backends[index // 2 % 2].post(f"{API}/compose", json=REQUEST, headers=auth(org))
                assert created.status_code == 201, created.text
                return org, created.json()["id"]

            async def statuses(org: str, backend: int = 0) -> dict[str, str]:
                listed = await backends[backend].get(f"{API}/composes", params={"limit": 100}, headers=auth(org))
                assert listed.status_code == 200, listed.text
                return {item["id"]: item["status"] for item in listed.json()["data"]}

            async def finished() -> int:
                found = {**await statuses("org-a"), **await statuses("org-b", 1)}
                assert "failure" not in found.values(), found
                return sum(status == "success" for status in found.values())

            # The first compose alone: it warms the package cache and measures one build.
            first_started = time.monotonic()
            composes = [await submit(0)]
            await until(lambda: _at_least(finished, 1), "the first compose succeeds", TIMEOUT)
            first_build = time.monotonic() - first_started
            composes += [await submit(index) for index in range(1, COMPOSES)]

            # Mid-way: a composer replica dies, and a worker in the middle of a build.
            await until(lambda: _at_least(finished, 5), "five composes succeed", TIMEOUT)
            processes.kill("composer-1")
            victim = await building_worker(processes)
            processes.kill(victim)
            await until(lambda: _at_least(finished, COMPOSES), f"all {COMPOSES} composes succeed", TIMEOUT)

            for org in ("org-a", "org-b"):
                for backend in (0, 1):
                    mine = {compose_id for owner, compose_id in composes if owner == org}
                    assert await statuses(org, backend) == dict.fromkeys(mine, "success")
        finally:
            for client in backends:
                await client.aclose()

    composer_events, backend_events = await events_of(composer_db), await events_of(backend_db)
    requested = [e for e in composer_events if e.event_type == "ComposeRequested"]
    keys = [e.payload["idempotency_key"] for e in requested]
    assert sorted(keys) == sorted(compose_id for _, compose_id in composes), "each compose reached the composer once"
    job_ids = [job for e in requested for job in e.payload["job_ids"]]
    finished_jobs = [e.stream_id for e in composer_events if e.event_type == "JobFinished"]
    assert sorted(finished_jobs) == sorted(job_ids), "every job finished exactly once"
    submitted = {e.stream_id: e.payload["composer_id"] for e in backend_events if e.event_type == "ComposeSubmitted"}
    for _, compose_id in composes:
        on_composer = [
            e.payload["status"] for e in composer_events
            if e.event_type == "ComposeStatusChanged" and e.stream_id == submitted[compose_id]
        ]  # fmt: skip
        on_backend = [
            e.payload["status"] for e in backend_events
            if e.event_type == "ComposeStatusRecorded" and e.stream_id == compose_id
        ]  # fmt: skip
        assert on_backend == on_composer != []
    print(f"\nfirst tar build {first_build:.0f} s; killed composer-1 and {victim}; whole test {time.monotonic() - started:.0f} s")


async def building_worker(processes: Processes) -> str:
    """A worker that has a build running (a child process of its own)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        for name in ("worker-0", "worker-1", "worker-2"):
            if processes.started[name].poll() is None and descendants(processes.started[name].pid):
                return name
        assert time.monotonic() < deadline, "no worker is building"
        await asyncio.sleep(0.2)


async def _at_least(count: Callable[[], Any], wanted: int) -> bool:
    return await count() >= wanted
