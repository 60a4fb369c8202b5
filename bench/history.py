"""The build history at scale, through the HTTP API, and how fast a worker's result shows in it.

Run:  .venv/bin/python bench/history.py [--composes N] [--orgs N] [--samples N] [--url URL] [--bootstrap HOST:PORT]

Setup. One local PostgreSQL (bench/_pg.py, durable defaults) holding the
backend's and the composer's databases, one local Kafka broker
(tests/servers/kafka.py), the built-in OpenID Connect issuer (a spawned
process), and the real commands as a deployment runs them:
``image-builder migrate``, ``serve composer``, ``relay --service composer``
and ``serve backend`` (each its own process, default settings).

Fill. Before the services start, ``backend_composes`` and
``backend_compose_images`` get --composes (1,000,000) history rows across
--orgs (1,000) orgs by COPY, then VACUUM ANALYZE. Only the projection is
filled: ``GET /composes`` reads nothing else (not the event store), so
events would change no answer and no timing of these reads. Representative
by construction: org sizes are skewed (the largest org has --biggest-org,
100,000 composes; the others share the rest by a Zipf law, 1/rank), the
composes are spread over two years and written in creation order, every
org's interleaved with the others' as a live history grows (so one org's
page touches rows all over the table), statuses are 85 % success, 8 % failure, the rest in flight,
1 % are deleted, 20 % come from one of the org's blueprints, and each
request is a real, validated compose request (the canonical JSON the API
stores) of one of 6 image types, 2 distributions and 3 package sets, with
one of 40 image names (8 contain "web").

Reads. In the largest org, through ``serve backend`` over HTTP with a user's
bearer token, one request at a time on a kept-alive connection, --samples
(200) each after 20 uncounted: the first page (limit 100), page 500 (limit
100, i.e. composes 49,901-50,000; its cursor found once by following 499
``next_cursor``s, and checked against SQL's OFFSET), and a filtered search
(``status=failure&image_name=web``: failed builds of web images, about
1.6 % of the org). Also the first page of 10 other orgs, round robin.

Propagation. A fake worker that speaks the real worker API over HTTP
finishes composes made through ``POST /compose`` on the backend: claim
depsolve, result; claim build, result; claim upload; then, once the backend
shows ``uploading`` (the pipeline idle), it sends the upload's result and
polls ``GET /composes/{id}`` on the backend every 5 ms. Latency = from just
before that PATCH is sent until the first GET showing ``success`` returned:
the composer's commit, its outbox relay, Kafka, the backend's consumer and
the backend's read, end to end. --samples after 10 uncounted.

Targets (issue #6): p99 under 20 ms for each read; p99 under 250 ms for
propagation. A MISS is reported, not failed on.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, only bench/ is on sys.path; the repository root must be too.
sys.path.insert(0, str(BENCH_DIR.parent))

import argparse
import asyncio
import importlib.metadata
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import asyncpg
import httpx2
import msgspec

from bench._admin import admin, checkpoint, database_url, libpq_dsn, server_description
from bench._pg import LocalPostgres
from bench._proc import CLK_TCK, machine_ticks

API = "/api/image-builder/v1"
WORKER_API = "/api/worker/v1"
IMAGE_BUILDER = Path(sys.executable).with_name("image-builder")
READ_TARGET_MS = 20.0
PROPAGATION_TARGET_MS = 250.0
PAGE = 100
DEEP_PAGE = 500
WARMUP_READS = 20
WARMUP_COMPOSES = 10
POLL_S = 0.005
FILTER = {"status": "failure", "image_name": "web"}
IMAGE_TYPES = ("guest-image", "guest-image", "tar", "aws", "aws", "oci", "azure", "vsphere", "wsl", "gcp")
NAMES = [f"{kind}-{n}" for kind in ("web", "db", "cache", "ci-runner", "bastion") for n in range(8)]
PACKAGE_SETS = ([], ["nginx", "curl"], ["postgresql", "pgbouncer", "vim", "tmux", "htop", "rsync"])
STATUSES = ["success"] * 85 + ["failure"] * 8 + ["building"] * 3 + ["uploading"] * 2 + ["pending"] * 2
CHUNK = 50_000
SERVICES_BOOT_S = 120.0


# ==========================================================================
# Filling the history
# ==========================================================================


def org_name(n: int) -> str:
    return f"org-{n:04d}"


def org_sizes(orgs: int, composes: int, biggest: int) -> list[int]:
    """The largest org gets ``biggest``; the others share the rest by 1/rank (at least one each)."""
    rest = composes - biggest
    weights = [1 / rank for rank in range(2, orgs + 1)]
    total = sum(weights)
    sizes = [max(1, int(rest * w / total)) for w in weights]
    sizes[0] += rest - sum(sizes)  # rounding, given to the second largest
    return [biggest, *sizes]


def request_templates() -> list[dict[str, Any]]:
    """Compose requests as the API stores them: validated, normalized, canonical."""
    from domain.validation import validate_compose_request

    templates = []
    for image_type in sorted(set(IMAGE_TYPES)):
        for distribution in ("debian-12", "debian-13"):
            for packages in PACKAGE_SETS:
                raw = {
                    "distribution": distribution, "image_name": "x",
                    "image_requests": [{"architecture": "x86_64", "image_type": image_type}],
                    "customizations": {"packages": packages, "hostname": "host-1", "timezone": {"timezone": "UTC"}},
                }  # fmt: skip
                templates.append(msgspec.to_builtins(validate_compose_request(msgspec.json.encode(raw))))
    return templates


def history_rows(sizes: list[int], seed: int) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Chunks of (backend_composes rows, backend_compose_images rows) in creation order, every org's
    interleaved with the others' as a live history is appended, so one org's rows are spread over the table."""
    rng = random.Random(seed)
    by_type: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in request_templates():
        by_type.setdefault((t["image_requests"][0]["image_type"], t["distribution"]), []).append(t)
    now = datetime.now(UTC)
    two_years = 2 * 365 * 86400
    timeline = sorted((rng.random() * two_years, org) for org, size in enumerate(sizes) for _ in range(size))
    blueprints = [[str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(5)] for _ in sizes]
    composes: list[tuple[Any, ...]] = []
    images: list[tuple[Any, ...]] = []
    for age, org_index in reversed(timeline):  # oldest first
        compose_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        image_type = rng.choice(IMAGE_TYPES)
        distribution = "debian-12" if rng.random() < 0.7 else "debian-13"
        name = rng.choice(NAMES)
        request = dict(rng.choice(by_type[(image_type, distribution)]), image_name=name)
        status = rng.choice(STATUSES)
        created = now - timedelta(seconds=age)
        error = None
        if status == "failure":
            error = msgspec.json.encode({"details": None, "id": 10, "reason": "package nginx-extras is not available"}).decode()
        upload = {"success": "success", "failure": "failure", "uploading": "running"}.get(status, "pending")
        blueprint = rng.choice(blueprints[org_index]) if rng.random() < 0.2 else None
        composes.append((
            compose_id, org_name(org_index), name, distribution, msgspec.json.encode(request, order="sorted").decode(),
            "accepted", str(uuid.UUID(int=rng.getrandbits(128), version=4)), status, upload, error, created,
            created + timedelta(minutes=rng.randint(2, 30)), rng.random() < 0.01, rng.randint(4, 7),
            blueprint, None if blueprint is None else rng.randint(1, 3),
        ))  # fmt: skip
        images.append((compose_id, 0, image_type, "x86_64"))
        if len(composes) >= CHUNK:
            yield composes, images
            composes, images = [], []
    if composes:
        yield composes, images


COMPOSE_COLUMNS = [
    "compose_id", "org_id", "image_name", "distribution", "request", "submission", "composer_id", "status",
    "upload_status", "error", "created_at", "updated_at", "deleted", "version", "blueprint_id", "blueprint_version",
]  # fmt: skip


async def fill(url: str, sizes: list[int], seed: int) -> float:
    """COPY the history in; seconds taken (VACUUM ANALYZE included)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        for composes, images in history_rows(sizes, seed):
            async with conn.transaction():
                await conn.copy_records_to_table("backend_composes", records=composes, columns=COMPOSE_COLUMNS)
                await conn.copy_records_to_table(
                    "backend_compose_images", records=images, columns=["compose_id", "image_index", "image_type", "architecture"]
                )  # fmt: skip
        await conn.execute("VACUUM ANALYZE backend_composes")
        await conn.execute("VACUUM ANALYZE backend_compose_images")
    finally:
        await conn.close()
    return time.perf_counter() - started


# ==========================================================================
# The system: issuer, composer, relay, backend
# ==========================================================================


def serve_issuer(config_path: str, port: int) -> None:
    """A spawned process: the built-in OpenID Connect issuer."""
    import uvicorn

    from services.identity.config import IssuerConfig
    from services.identity.issuer import create_issuer_app

    uvicorn.run(create_issuer_app(IssuerConfig.from_file(config_path)), host="127.0.0.1", port=port, log_level="warning")


@dataclass
class System:
    work: Path
    issuer_url: str
    composer_url: str
    backend_url: str
    secrets: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    issuer: Any

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values()] + [self.issuer.pid]

    def log_tail(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.issuer.terminate()
        self.issuer.join(10)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_system(work: Path, backend_db: str, composer_db: str, bootstrap: str, reader_orgs: list[str]) -> System:
    from services.identity.config import IssuerConfig, new_client

    issuer_port, composer_port, backend_port = free_port(), free_port(), free_port()
    issuer_url = f"http://127.0.0.1:{issuer_port}"
    clients = {"bench-backend": ("bench-services", ("service",)), "bench-worker": ("bench-workers", ("worker",))}
    clients.update({f"reader-{org}": (org, ("user",)) for org in reader_orgs})
    registrations, secrets = [], {}
    for client_id, (org, roles) in clients.items():
        registration, secrets[client_id] = new_client(client_id, org, roles)
        registrations.append(registration)
    config_path = work / "issuer.json"
    IssuerConfig(issuer=issuer_url, data_dir=work / "issuer", clients=tuple(registrations), token_lifetime=3600).save(config_path)
    issuer = mp.get_context("spawn").Process(target=serve_issuer, args=(str(config_path), issuer_port), daemon=True)
    issuer.start()

    env = {
        **os.environ,
        "IMAGE_BUILDER_DATA_DIR": str(work / "data"),
        "IMAGE_BUILDER_OIDC_ISSUER": issuer_url,
        "IMAGE_BUILDER_KAFKA_BOOTSTRAP": bootstrap,
        "IMAGE_BUILDER_COMPOSER_DATABASE_URL": composer_db,
        "IMAGE_BUILDER_BACKEND_DATABASE_URL": backend_db,
        "IMAGE_BUILDER_COMPOSER_TRUSTED_CLIENTS": "bench-backend",
        "IMAGE_BUILDER_BACKEND_COMPOSER_URL": f"http://127.0.0.1:{composer_port}",
        "IMAGE_BUILDER_BACKEND_CLIENT_ID": "bench-backend",
        "IMAGE_BUILDER_BACKEND_CLIENT_SECRET": secrets["bench-backend"],
    }
    commands = {
        "composer": ["serve", "composer", "--port", str(composer_port)],
        "relay": ["relay", "--service", "composer"],
        "backend": ["serve", "backend", "--port", str(backend_port)],
    }
    processes = {}
    for name, args in commands.items():
        with open(work / f"{name}.log", "wb") as log:
            processes[name] = subprocess.Popen([str(IMAGE_BUILDER), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    system = System(
        work, issuer_url, f"http://127.0.0.1:{composer_port}", f"http://127.0.0.1:{backend_port}", secrets, processes, issuer
    )  # fmt: skip
    try:
        asyncio.run(_wait_ready(system))
    except BaseException:
        system.stop()
        raise
    return system


async def _wait_ready(system: System) -> None:
    deadline = time.monotonic() + SERVICES_BOOT_S
    async with httpx2.AsyncClient(timeout=5) as http:
        for url in (f"{system.issuer_url}/.well-known/openid-configuration", f"{system.composer_url}/ready", f"{system.backend_url}/ready"):
            while True:
                for name, process in system.processes.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited:\n{system.log_tail(name)}")
                try:
                    if (await http.get(url)).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} not ready after {SERVICES_BOOT_S:.0f} s")
                await asyncio.sleep(0.2)


async def token(system: System, client_id: str) -> str:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{system.issuer_url}/token", data={"grant_type": "client_credentials"}, auth=(client_id, system.secrets[client_id])
        )  # fmt: skip
    response.raise_for_status()
    return response.json()["access_token"]


# ==========================================================================
# Measuring
# ==========================================================================


class CpuWindow:
    """Cores used by the bench's own processes (itself, the services, PostgreSQL, Kafka) and by anything else."""

    def __init__(self, ours: Any) -> None:
        self.ours = ours

    def __enter__(self) -> Self:
        self.t0, (self.busy0, self.total0), self.ours0 = time.monotonic(), machine_ticks(), self.ours()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.t0
        busy, _ = machine_ticks()
        self.machine = (busy - self.busy0) / CLK_TCK / seconds
        self.bench = (self.ours() - self.ours0) / CLK_TCK / seconds

    def describe(self) -> str:
        return f"CPU: bench's processes {self.bench:.2f} cores, anything else {max(0.0, self.machine - self.bench):.2f}"


async def timed_gets(http: httpx2.AsyncClient, paths: list[str], warmup: int) -> list[float]:
    """Milliseconds per request, one at a time; the first ``warmup`` are not kept."""
    times = []
    for i, path in enumerate(paths):
        started = time.perf_counter()
        response = await http.get(path)
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        if i >= warmup:
            times.append(elapsed)
    return times


async def measure_reads(system: System, big_org: str, other_orgs: list[str], samples: int, backend_db: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {await token(system, f'reader-{big_org}')}"}
    async with httpx2.AsyncClient(base_url=system.backend_url, headers=headers, timeout=30) as http:
        first = f"{API}/composes?limit={PAGE}"
        results["history, first page"] = await timed_gets(http, [first] * (samples + WARMUP_READS), WARMUP_READS)

        cursor, walked = None, 0
        for _ in range(DEEP_PAGE - 1):
            page = (await http.get(f"{API}/composes", params={"limit": PAGE, **({"cursor": cursor} if cursor else {})})).json()
            cursor, walked = page["meta"]["next_cursor"], walked + len(page["data"])
            assert cursor is not None, f"{big_org} has fewer than {DEEP_PAGE} pages"
        deep = f"{API}/composes?limit={PAGE}&cursor={cursor}"
        shown = (await http.get(deep)).json()["data"][0]["id"]
        (by_offset,) = await admin(
            backend_db,
            f"SELECT compose_id FROM backend_composes WHERE org_id = '{big_org}' AND NOT deleted "
            f"ORDER BY created_at DESC, compose_id DESC OFFSET {walked} LIMIT 1",
        )
        assert shown == by_offset, f"page {DEEP_PAGE} starts at {shown}, SQL's OFFSET {walked} says {by_offset}"
        results[f"history, page {DEEP_PAGE} (cursor)"] = await timed_gets(http, [deep] * (samples + WARMUP_READS), WARMUP_READS)

        query = "&".join(f"{k}={v}" for k, v in FILTER.items())
        search = f"{API}/composes?limit={PAGE}&{query}"
        found = (await http.get(search)).json()["data"]
        assert len(found) == PAGE and all(c["status"] == "failure" and "web" in c["image_name"] for c in found)
        results[f"filtered search ({query})"] = await timed_gets(http, [search] * (samples + WARMUP_READS), WARMUP_READS)

    clients = []
    for org in other_orgs:
        headers = {"Authorization": f"Bearer {await token(system, f'reader-{org}')}"}
        clients.append(httpx2.AsyncClient(base_url=system.backend_url, headers=headers, timeout=30))
    try:
        times = []
        for i in range(samples + WARMUP_READS):
            times += await timed_gets(clients[i % len(clients)], [first], 0 if i >= WARMUP_READS else 1)
        results[f"first page, {len(other_orgs)} other orgs"] = times
    finally:
        for client in clients:
            await client.aclose()
    return results


async def measure_propagation(system: System, org: str, samples: int) -> dict[str, list[float]]:
    """Per compose, ms: result -> visible in GET; the PATCH itself; result -> the backend's
    ComposeStatusRecorded (its occurred_at: the consumer's clock, this machine's)."""
    user = {"Authorization": f"Bearer {await token(system, f'reader-{org}')}"}
    worker = {"Authorization": f"Bearer {await token(system, 'bench-worker')}"}
    request = {"distribution": "debian-12", "image_name": "propagation",
               "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}  # fmt: skip
    latencies: list[float] = []
    patches: list[float] = []
    recorded: list[float] = []
    async with (
        httpx2.AsyncClient(base_url=system.backend_url, headers=user, timeout=30) as backend,
        httpx2.AsyncClient(base_url=system.composer_url, headers=worker, timeout=60) as composer,
    ):
        registered = await composer.post(f"{WORKER_API}/workers", json={"name": "bench-worker", "arch": "x86_64"})
        worker_id = registered.json()["worker_id"]

        async def claim(job_type: str) -> dict[str, Any]:
            response = await composer.post(f"{WORKER_API}/jobs", json={"worker_id": worker_id, "types": [job_type], "timeout": 30})
            assert response.status_code == 201, response.text
            return response.json()

        async def finish(job: dict[str, Any], result: dict[str, Any]) -> None:
            response = await composer.patch(f"{WORKER_API}/jobs/{job['token']}", json={"result": result})
            assert response.status_code == 200, response.text

        async def until(compose_id: str, status: str, timeout: float = 30) -> None:
            deadline = time.monotonic() + timeout
            while (await backend.get(f"{API}/composes/{compose_id}")).json()["status"] != status:
                assert time.monotonic() < deadline, f"{compose_id} did not become {status} in the history"
                await asyncio.sleep(POLL_S)

        for i in range(samples + WARMUP_COMPOSES):
            created = await backend.post(f"{API}/compose", json=request)
            assert created.status_code == 201, created.text
            compose_id = created.json()["id"]
            await finish(await claim("depsolve"), {"packages": []})
            await finish(await claim("build"), {"packages": [], "manifest": {}, "sbom": {}})
            upload = await claim("upload")
            await until(compose_id, "uploading")
            started, wall = time.perf_counter(), time.time()
            await finish(upload, {"options": {}})
            patched = time.perf_counter()
            await until(compose_id, "success")
            visible = time.perf_counter()
            if i >= WARMUP_COMPOSES:
                latencies.append((visible - started) * 1000)
                patches.append((patched - started) * 1000)
                timeline = (await backend.get(f"{API}/composes/{compose_id}/events")).json()["data"]
                (success,) = [e for e in timeline if e["type"] == "ComposeStatusRecorded" and e["payload"]["status"] == "success"]
                recorded.append((datetime.fromisoformat(success["occurred_at"]).timestamp() - wall) * 1000)
    return {"latency": latencies, "patch": patches, "recorded": recorded}


# ==========================================================================
# Report
# ==========================================================================


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def row(name: str, values: list[float], target: float | None) -> str:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    verdict = "" if target is None else ("PASS" if p99 < target else "MISS")
    limit = "" if target is None else f"< {target:g}"
    return f"{name:<46} {len(values):>7} {p50:>8.1f} {p99:>8.1f} {max(values):>8.1f} {limit:>8}  {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--composes", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=1_000)
    parser.add_argument("--biggest-org", type=int, default=100_000, help="composes of the largest org (page 500 needs 50,000)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--url", default=os.environ.get("BENCH_POSTGRES_URL"), help="a server; default: start one")
    parser.add_argument("--bootstrap", default=os.environ.get("BENCH_KAFKA_BOOTSTRAP"), help="a Kafka broker; default: start one")
    args = parser.parse_args()
    # 1 % of the composes are deleted: the largest org needs a page 500 without them.
    assert args.biggest_org >= DEEP_PAGE * PAGE * 1.05, "the largest org needs a page 500"

    started: list[Any] = []
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    system = None
    try:
        server = None
        if args.url:
            admin_url = args.url
        else:
            server = LocalPostgres().start()
            started.append(server)
            admin_url = server.url("postgres")
        if args.bootstrap:
            bootstrap, kafka_version = args.bootstrap, "Kafka (given)"
        else:
            from tests.servers.kafka import KafkaServer

            kafka = KafkaServer()
            started.append(kafka)
            kafka.start()
            bootstrap, kafka_version = kafka.bootstrap, f"Kafka {kafka.version}"
        v = importlib.metadata.version
        print(f"postgres: {server_description(admin_url, 'shared_buffers')}")
        print(f"kafka:    {kafka_version} at {bootstrap}")
        print(f"clients:  litestar {v('litestar')}, uvicorn {v('uvicorn')}, SQLAlchemy {v('sqlalchemy')}, asyncpg {v('asyncpg')}, "
              f"httpx2 {v('httpx2')}, Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")  # fmt: skip

        asyncio.run(admin(admin_url, "DROP DATABASE IF EXISTS bench_history_backend", "CREATE DATABASE bench_history_backend",
                          "DROP DATABASE IF EXISTS bench_history_composer", "CREATE DATABASE bench_history_composer"))  # fmt: skip
        backend_db = database_url(admin_url, "bench_history_backend")
        composer_db = database_url(admin_url, "bench_history_composer")
        for service, url in (("backend", backend_db), ("composer", composer_db)):
            env = {**os.environ, f"IMAGE_BUILDER_{service.upper()}_DATABASE_URL": url, "IMAGE_BUILDER_DATA_DIR": str(work)}
            subprocess.run([str(IMAGE_BUILDER), "migrate", "--service", service], env=env, check=True, capture_output=True)

        sizes = org_sizes(args.orgs, args.composes, args.biggest_org)
        print(f"\nfill: {sum(sizes):,} composes across {len(sizes):,} orgs (largest {sizes[0]:,}, "
              f"median {statistics.median(sizes):,.0f}, smallest {min(sizes):,})")  # fmt: skip
        seconds = asyncio.run(fill(backend_db, sizes, args.seed))
        size, = asyncio.run(admin(admin_url, "SELECT pg_size_pretty(pg_database_size('bench_history_backend'))"))
        print(f"  {seconds:.0f} s with VACUUM ANALYZE; database {size}")
        checkpoint(admin_url)

        big_org = org_name(0)
        rng = random.Random(args.seed)
        others = [org_name(n) for n in rng.sample(range(1, len(sizes)), 10)]
        system = start_system(work, backend_db, composer_db, bootstrap, [big_org, *others])
        ours = _our_ticks(system, server, started)

        print(f"\nreads in {big_org} ({sizes[0]:,} composes) through serve backend, {args.samples} requests each ...", flush=True)
        with CpuWindow(ours) as reads_cpu:
            reads = asyncio.run(measure_reads(system, big_org, others, args.samples, backend_db))
        print(f"  {reads_cpu.describe()}")
        print(f"\npropagation: {args.samples} composes (+{WARMUP_COMPOSES} uncounted), worker result -> GET /composes/{{id}} ...", flush=True)
        with CpuWindow(ours) as propagation_cpu:
            propagation = asyncio.run(measure_propagation(system, big_org, args.samples))
        print(f"  {propagation_cpu.describe()}")

        header = f"{'ms':<46} {'samples':>7} {'p50':>8} {'p99':>8} {'max':>8} {'target':>8}"
        print(f"\n{header}\n{'-' * (len(header) + 6)}")
        for index, (name, values) in enumerate(reads.items()):
            print(row(name, values, READ_TARGET_MS if index < 3 else None))
        print(row("status propagation (result -> GET shows it)", propagation["latency"], PROPAGATION_TARGET_MS))
        print(row("  the worker's PATCH returned", propagation["patch"], None))
        print(row("  the backend's consumer recorded it", propagation["recorded"], None))
        print(f"(reads: one request at a time on a kept-alive connection; propagation: GET polled every {POLL_S * 1000:g} ms)")
        return 0
    finally:
        if system is not None:
            system.stop()
        for item in reversed(started):
            item.close() if hasattr(item, "close") else item.stop()
        shutil.rmtree(work, ignore_errors=True)


def _our_ticks(system: System, server: LocalPostgres | None, started: list[Any]) -> Any:
    from bench._proc import kafka_pids, postgres_pids, ticks

    def ours() -> int:
        pids = [os.getpid(), *system.pids()]
        if server is not None:
            pids += postgres_pids(server.data_dir)
        for item in started:
            if hasattr(item, "base_dir"):
                pids += kafka_pids(item.base_dir)
        return ticks(pids)

    return ours


if __name__ == "__main__":
    sys.exit(main())
