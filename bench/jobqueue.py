"""The composer's job queue on a real PostgreSQL: enqueue-to-claim latency and claims/s.

Run:  .venv/bin/python bench/jobqueue.py [--samples N] [--seconds S] [--url URL] [--profile DIR]

1. Latency. One "composer replica" process runs ``QueueBackground`` (LISTEN
   composer_jobs_ready) and W = 1, 16, 64 idle workers, asyncio tasks waiting
   in ``JobQueue.wait_and_claim`` (where each worker's HTTP long-poll lands).
   A separate "submitter" process (another replica: its own engine and
   JobQueue) submits one single-job compose at a time on an absolute schedule
   (--rate, 20/s), stamping ``time.time()`` when ``submit()`` returned, i.e.
   after COMMIT. A worker stamps ``time.time()`` when ``wait_and_claim``
   returned a claim, finishes the job at once (``finish(token, {})``) and
   waits again. Latency = claim stamp - submit stamp, joined on job id. The
   first --warmup-samples submits are not counted. Same rate for every W.

2. Throughput. --fill (20,000) independent jobs are submitted first
   (--jobs-per-compose per compose, --tenants tenants round-robin), then
   --throughput-workers (64) workers in --processes (2) replica processes
   (each with QueueBackground and its own engine, pool sized for its workers)
   loop wait_and_claim + finish for --throughput-warmup + --seconds. Claims
   that returned inside the --seconds window are counted. Every claimed job
   id is collected from every process: a duplicate is a double claim; the
   database is checked too (at most one JobClaimed event and one attempt per
   job, every finished job in status success).

The server keeps PostgreSQL's durable defaults (bench/_pg.py). ``--profile
DIR`` adds pg_stat_statements, pg_stat_activity wait-event sampling and
cProfile of the replica processes in the throughput phase.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, only bench/ is on sys.path; the repository root must be too
# (events/, services/, bench._pg), here and in the spawned processes.
sys.path.insert(0, str(BENCH_DIR.parent))

import argparse
import asyncio
import cProfile
import importlib.metadata
import importlib.util
import logging
import multiprocessing as mp
import os
import pstats
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

import asyncpg
import uvloop

from bench._admin import admin, checkpoint, database_url, fresh_database, libpq_dsn, server_description
from bench._proc import CLK_TCK, machine_ticks, postgres_pids, ticks
from bench._pg import LocalPostgres

OUTBOX_TOPIC = "composer.events.v1"
REQUEST = {"distribution": "debian-12"}
LONG_POLL_S = 30.0  # a worker's long-poll; wait_and_claim returns None after it and the worker asks again
LATENCY_TARGET_MS = 50.0
CLAIMS_TARGET = 500.0
START_TIMEOUT_S = 120
BUSY_MACHINE_CORES = 0.25  # other processes using more than this make a run not comparable
STATEMENTS_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "top"}


# ==========================================================================
# Shared by the processes
# ==========================================================================


def tenant(n: int) -> str:
    return f"bench-org-{n}"


def make_queue(url: str, workers: int) -> tuple[Any, Any, Any]:
    """A composer replica's queue: engine with a pool sized for ``workers``, store, JobQueue.

    Each worker holds at most one pooled connection at a time (a claim or a
    finish is one transaction), the lease sweep one more; LISTEN has its own
    connection. pool_size covers all of them so QueueBackground never has to
    open (and, on return, close) overflow connections.
    """
    from events.engine import create_engine
    from events.store import EventStore
    from services.composer.queue import JobQueue

    engine = create_engine(url, pool_size=workers + 4, max_overflow=8)
    store = EventStore(engine, outbox_topic=OUTBOX_TOPIC)
    return engine, store, JobQueue(store)


async def warm_pool(engine: Any, connections: int) -> None:
    """Open ``connections`` pooled connections now, not on the first measured claim."""
    conns = [await engine.connect() for _ in range(connections)]
    for conn in conns:
        await conn.exec_driver_sql("SELECT 1")
    for conn in conns:
        await conn.close()


def single_job(compose_id: str) -> list[Any]:
    return independent_jobs(compose_id, 1)


def independent_jobs(compose_id: str, count: int) -> list[Any]:
    """As tests/contracts/job_queue.py: depsolve jobs without dependencies."""
    from domain.composes import PlannedJob
    from domain.jobs import JobType

    return [
        PlannedJob(job_id=str(uuid.uuid4()), job_type=JobType.DEPSOLVE, args={"n": n}, dependencies=[])
        for n in range(count)
    ]


def user(org: str) -> Any:
    from events.envelope import Actor

    return Actor(subject="user-1", org_id=org, client="bench")


def all_types() -> tuple[Any, ...]:
    from domain.jobs import JobType

    return (JobType.DEPSOLVE, JobType.BUILD, JobType.UPLOAD)


def count_claims(queue: Any) -> Counter[str]:
    """Count the queue's claim transactions (and the empty ones) from here on."""
    counts: Counter[str] = Counter()
    claim = queue.claim

    async def counted(worker_id: str, job_types: Any) -> Any:
        result = await claim(worker_id, job_types)
        counts["transactions"] += 1
        counts["empty"] += result is None
        return result

    queue.claim = counted  # wait_and_claim calls self.claim
    return counts


class RaceCounter(logging.Handler):
    """Counts the queue's "lost a race" retries (its retry loop logs each at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.retries = 0
        self.kinds: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if "lost a race" in record.getMessage():
            self.retries += 1
            error = record.args[-1] if isinstance(record.args, tuple) and record.args else None
            orig = getattr(error, "orig", None)
            code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
            self.kinds[type(error).__name__ + (f" {code}" if code else "")] += 1

    @classmethod
    def install(cls) -> RaceCounter:
        handler = cls()
        # Where the retry loop logs: services/composer/retrying.py (it lived in queue.py before).
        name = "services.composer.retrying" if importlib.util.find_spec("services.composer.retrying") else "services.composer.queue"
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # these DEBUG records are for this handler only
        logger.addHandler(handler)
        return handler


def run_process(target: Any, out: Any, *args: Any) -> None:
    """Entry point of a spawned process: run ``target(*args)`` and report on ``out``."""
    try:
        # As deployed: uvicorn runs the composer on uvloop.
        out.put(("ok", uvloop.run(target(*args))))
    except BaseException:  # noqa: BLE001 - reported to the main process, which fails the run
        out.put(("error", traceback.format_exc()))


# ==========================================================================
# Phase 1: enqueue-to-claim latency
# ==========================================================================


async def latency_replica(url: str, workers: int, ready: Any, stop: Any, claimed: Any) -> dict[str, Any]:
    from services.composer.background import QueueBackground

    engine, store, queue = make_queue(url, workers)
    background = QueueBackground(queue)
    counts = count_claims(queue)
    races = RaceCounter.install()
    stamps: list[tuple[str, float]] = []
    errors: list[str] = []
    try:
        await warm_pool(engine, workers + 1)
        await background.start()

        async def worker(n: int) -> None:
            worker_id = f"latency-worker-{n}"
            while True:
                try:
                    claim = await queue.wait_and_claim(worker_id, all_types(), LONG_POLL_S)
                    if claim is None:
                        continue
                    stamps.append((claim.job_id, time.time()))
                    claimed.value += 1
                    await queue.finish(claim.token, {})
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - reported, and the worker goes on
                    errors.append(traceback.format_exc())

        tasks = [asyncio.create_task(worker(n)) for n in range(workers)]
        await asyncio.sleep(1.0)  # every worker has looked once and is waiting
        counts.clear()
        races.retries = 0
        ready.set()
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await background.stop()
        await store.close()
        await engine.dispose()
    return {"stamps": stamps, "errors": errors, "counts": dict(counts), "retries": races.retries}


async def latency_submitter(url: str, rate: float, samples: int, warmup: int, ready: Any, tenants: int) -> dict[str, Any]:
    engine, store, queue = make_queue(url, 1)
    stamps: list[tuple[str, float, bool]] = []  # job id, submit returned, counted
    try:
        await warm_pool(engine, 2)
        await asyncio.to_thread(ready.wait, START_TIMEOUT_S)
        started = time.monotonic()
        cpu0 = time.process_time()
        for i in range(warmup + samples):
            due = started + i / rate
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            compose_id = str(uuid.uuid4())
            org = tenant(i % tenants)
            planned = single_job(compose_id)
            await queue.submit(compose_id, org, REQUEST, planned, user(org))
            stamps.append((planned[0].job_id, time.time(), i >= warmup))
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu0
    finally:
        await store.close()
        await engine.dispose()
    return {"stamps": stamps, "elapsed": elapsed, "cpu_s": cpu}


@dataclass
class LatencyResult:
    workers: int
    latencies_ms: list[float]
    missing: int
    rate: float  # achieved submit rate
    claim_transactions: int
    empty_claims: int
    replica_cpu: float  # cores
    submitter_cpu: float
    server_cpu: float  # cores, PostgreSQL
    other_cpu: float  # cores, everything else on the machine
    retries: int  # queue transactions run again after losing a race
    errors: list[str]

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN without values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(min(rank, len(ordered))) - 1]


def measure_latency(server: LocalPostgres | None, admin_url: str, workers: int, args: argparse.Namespace) -> LatencyResult:
    url = fresh_composer_database(admin_url, f"bench_queue_latency_{workers}")
    checkpoint(admin_url)
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    claimed = ctx.Value("i", 0, lock=False)  # written by the replica's event loop only
    replica_out, submitter_out = ctx.Queue(), ctx.Queue()
    replica = ctx.Process(target=run_process, args=(latency_replica, replica_out, url, workers, ready, stop, claimed))
    submitter = ctx.Process(
        target=run_process,
        args=(latency_submitter, submitter_out, url, args.rate, args.samples, args.warmup_samples, ready, args.tenants),
    )
    replica.start()
    submitter.start()
    deadline = time.monotonic() + START_TIMEOUT_S + (args.samples + args.warmup_samples) / args.rate + 60
    pg = (lambda: postgres_pids(server.data_dir)) if server else list
    try:
        while not ready.wait(1):
            if time.monotonic() > deadline or not (replica.is_alive() and submitter.is_alive()):
                break  # receive() below reports the failure
        # CPU while the submitter runs; the submitter measures its own (it may be gone by the second sample).
        before = (ticks([replica.pid]), ticks(pg()), machine_ticks(), time.monotonic())
        submitted = receive(submitter_out, [submitter, replica], deadline)
        after = (ticks([replica.pid]), ticks(pg()), machine_ticks(), time.monotonic())
        expected = args.samples + args.warmup_samples
        # Let the workers take the last jobs (bounded: a lost job must not hang the run).
        drain_until = time.monotonic() + 10
        while claimed.value < expected and time.monotonic() < drain_until:
            time.sleep(0.05)
        stop.set()
        served = receive(replica_out, [replica], deadline + 30)
    finally:
        stop.set()
        for process in (submitter, replica):
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    claims = dict(served["stamps"])
    latencies = [(claims[job_id] - at) * 1000 for job_id, at, counted in submitted["stamps"] if counted and job_id in claims]
    counted = sum(1 for *_, c in submitted["stamps"] if c)
    counts = served["counts"]
    window = submitted["elapsed"]
    span = after[3] - before[3]
    replica_cpu = (after[0] - before[0]) / CLK_TCK / span
    server_cpu = (after[1] - before[1]) / CLK_TCK / span
    busy, total = after[2][0] - before[2][0], after[2][1] - before[2][1]
    machine = busy / total * (os.cpu_count() or 1) if total else float("nan")
    submitter_cpu = submitted["cpu_s"] / window if window else float("nan")
    return LatencyResult(
        workers=workers,
        latencies_ms=latencies,
        missing=counted - len(latencies),
        rate=len(submitted["stamps"]) / window if window else float("nan"),
        claim_transactions=counts.get("transactions", 0),
        empty_claims=counts.get("empty", 0),
        replica_cpu=replica_cpu,
        submitter_cpu=submitter_cpu,
        server_cpu=server_cpu,
        other_cpu=max(0.0, machine - replica_cpu - submitter_cpu - server_cpu),
        retries=served["retries"],
        errors=served["errors"],
    )


# ==========================================================================
# Phase 2: sustained claims/s
# ==========================================================================


async def fill(url: str, jobs: int, per_compose: int, tenants: int, concurrency: int = 8) -> float:
    """Submit ``jobs`` independent jobs, ``per_compose`` per compose, tenants round-robin; seconds taken."""
    engine, store, queue = make_queue(url, concurrency)
    sizes = [per_compose] * (jobs // per_compose) + ([jobs % per_compose] if jobs % per_compose else [])
    work = iter(enumerate(sizes))
    started = time.monotonic()

    async def submitter() -> None:
        for n, size in work:
            compose_id = str(uuid.uuid4())
            org = tenant(n % tenants)
            await queue.submit(compose_id, org, REQUEST, independent_jobs(compose_id, size), user(org))

    try:
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
    finally:
        await store.close()
        await engine.dispose()
    return time.monotonic() - started


@dataclass
class WorkerLog:
    claimed: list[str] = field(default_factory=list)  # every job id claimed, window or not
    finished: list[str] = field(default_factory=list)  # every job id whose finish() returned
    window_claims: int = 0
    window_empty: int = 0  # wait_and_claim gave up inside the window: the queue ran dry
    claim_ms: list[float] = field(default_factory=list)  # inside the window
    finish_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def throughput_replica(
    url: str, index: int, workers: int, barrier: Any, warmup: float, seconds: float, profile_dir: str | None
) -> dict[str, Any]:
    from services.composer.background import QueueBackground

    engine, store, queue = make_queue(url, workers)
    background = QueueBackground(queue)
    log = WorkerLog()
    races = RaceCounter.install()
    profiler = cProfile.Profile(time.process_time) if profile_dir else None
    try:
        await warm_pool(engine, workers + 1)
        await background.start()
        await asyncio.to_thread(barrier.wait, START_TIMEOUT_S)
        start = time.monotonic()
        window_start, window_end = start + warmup, start + warmup + seconds
        cpu: dict[str, float] = {}

        async def worker(n: int) -> None:
            worker_id = f"replica-{index}-worker-{n}"
            while (began := time.monotonic()) < window_end:
                try:
                    claim = await queue.wait_and_claim(worker_id, all_types(), 1.0)
                    claimed_at = time.monotonic()
                    inside = window_start <= claimed_at < window_end
                    if claim is None:
                        log.window_empty += inside
                        continue
                    log.claimed.append(claim.job_id)
                    if inside:
                        log.window_claims += 1
                        log.claim_ms.append((claimed_at - began) * 1000)
                    await queue.finish(claim.token, {})
                    log.finished.append(claim.job_id)
                    if inside:
                        log.finish_ms.append((time.monotonic() - claimed_at) * 1000)
                except Exception:  # noqa: BLE001 - reported, and the worker goes on
                    log.errors.append(traceback.format_exc())

        async def cpu_clock() -> None:
            await asyncio.sleep(max(0.0, window_start - time.monotonic()))
            cpu["start"] = time.process_time()
            if profiler is not None:
                profiler.enable()
            await asyncio.sleep(max(0.0, window_end - time.monotonic()))
            if profiler is not None:
                profiler.disable()
            cpu["end"] = time.process_time()

        await asyncio.gather(cpu_clock(), *(worker(n) for n in range(workers)))
    finally:
        await background.stop()
        await store.close()
        await engine.dispose()
    if profiler is not None and profile_dir:
        profiler.dump_stats(str(Path(profile_dir) / f"throughput-replica-{index}.prof"))
    return {
        "claimed": log.claimed,
        "finished": log.finished,
        "window_claims": log.window_claims,
        "window_empty": log.window_empty,
        "claim_ms": log.claim_ms,
        "finish_ms": log.finish_ms,
        "errors": log.errors,
        "cpu_s": cpu.get("end", 0.0) - cpu.get("start", 0.0),
        "retries": races.retries,
        "retry_kinds": dict(races.kinds),
    }


@dataclass
class ThroughputResult:
    workers: int
    processes: int
    filled: int
    fill_s: float
    seconds: float
    window_claims: int
    window_empty: int
    claimed: int
    unique_claimed: int
    finished: int
    claim_ms: list[float]
    finish_ms: list[float]
    replica_cpu: float  # cores, all replicas
    server_cpu: float  # cores, postmaster and backends
    machine_cpu: float  # cores busy on the machine
    connections_opened: int
    retries: int
    retry_kinds: Counter[str]
    db_problems: list[str]
    errors: list[str]
    waits: Counter[str] = field(default_factory=Counter)

    @property
    def claims_per_s(self) -> float:
        return self.window_claims / self.seconds

    @property
    def double_claims(self) -> int:
        return self.claimed - self.unique_claimed


def measure_throughput(server: LocalPostgres | None, admin_url: str, args: argparse.Namespace) -> ThroughputResult:
    url = fresh_composer_database(admin_url, "bench_queue_throughput")
    fill_s = asyncio.run(fill(url, args.fill, args.jobs_per_compose, args.tenants))
    asyncio.run(admin(url, "VACUUM ANALYZE"))  # what autovacuum would have done by now
    checkpoint(admin_url)
    if args.profile:
        asyncio.run(statements(admin_url, "bench_queue_throughput", reset=True))
    sessions_before = asyncio.run(_fetchval(url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))

    shares = split(args.throughput_workers, args.processes)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(shares) + 1)
    out = ctx.Queue()
    processes = [
        ctx.Process(
            target=run_process,
            args=(throughput_replica, out, url, index, share, barrier, args.throughput_warmup, args.seconds, args.profile),
        )
        for index, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    waits: Counter[str] = Counter()
    try:
        barrier.wait(START_TIMEOUT_S)
        start = time.monotonic()
        time.sleep(args.throughput_warmup)
        pg = (lambda: postgres_pids(server.data_dir)) if server else list

        def replicas() -> list[int]:
            return [p.pid for p in processes if p.pid]

        before = (ticks(replicas()), ticks(pg()), machine_ticks())
        if args.profile:
            waits = asyncio.run(sample_waits(admin_url, "bench_queue_throughput", start + args.throughput_warmup + args.seconds))
        else:
            time.sleep(max(0.0, start + args.throughput_warmup + args.seconds - time.monotonic()))
        after = (ticks(replicas()), ticks(pg()), machine_ticks())
        reports = [receive(out, processes, time.monotonic() + 120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    window = args.seconds
    claimed = [job for r in reports for job in r["claimed"]]
    finished = [job for r in reports for job in r["finished"]]
    sessions_after = asyncio.run(_fetchval(url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))
    busy = after[2][0] - before[2][0]
    total = after[2][1] - before[2][1]
    return ThroughputResult(
        workers=args.throughput_workers,
        processes=len(shares),
        filled=args.fill,
        fill_s=fill_s,
        seconds=window,
        window_claims=sum(r["window_claims"] for r in reports),
        window_empty=sum(r["window_empty"] for r in reports),
        claimed=len(claimed),
        unique_claimed=len(set(claimed)),
        finished=len(finished),
        claim_ms=[ms for r in reports for ms in r["claim_ms"]],
        finish_ms=[ms for r in reports for ms in r["finish_ms"]],
        replica_cpu=(after[0] - before[0]) / CLK_TCK / window,
        server_cpu=(after[1] - before[1]) / CLK_TCK / window,
        machine_cpu=(busy / total * os.cpu_count()) if total else float("nan"),
        connections_opened=sessions_after - sessions_before - 1,  # minus the session that asks
        retries=sum(r["retries"] for r in reports),
        retry_kinds=sum((Counter(r["retry_kinds"]) for r in reports), Counter()),
        db_problems=asyncio.run(database_checks(url, set(claimed), set(finished))),
        errors=[e for r in reports for e in r["errors"]],
        waits=waits,
    )


async def database_checks(url: str, claimed: set[str], finished: set[str]) -> list[str]:
    """What the database says about the claims the processes reported."""
    problems = []
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT stream_id FROM events WHERE stream_type = 'job' AND event_type = 'JobClaimed' "
            "GROUP BY stream_id HAVING count(*) > 1) AS t"
        )
        if twice:
            problems.append(f"{twice} jobs have more than one JobClaimed event")
        retried = await conn.fetchval("SELECT count(*) FROM composer_jobs WHERE attempts > 1")
        if retried:
            problems.append(f"{retried} jobs were attempted more than once")
        touched = await conn.fetchval("SELECT count(*) FROM composer_jobs WHERE status <> 'pending'")
        if touched != len(claimed):
            problems.append(f"{touched} jobs are no longer pending, the workers reported {len(claimed)} distinct claims")
        claimed_events = await conn.fetchval(
            "SELECT count(*) FROM events WHERE stream_type = 'job' AND event_type = 'JobClaimed'"
        )
        if claimed_events != len(claimed):
            problems.append(f"{claimed_events} JobClaimed events, the workers reported {len(claimed)} distinct claims")
        not_success = await conn.fetchval(
            "SELECT count(*) FROM composer_jobs WHERE job_id = ANY($1::text[]) AND status <> 'success'", list(finished)
        )
        if not_success:
            problems.append(f"{not_success} finished jobs are not in status success")
        unfinished = len(claimed - finished)
        if unfinished:
            problems.append(f"{unfinished} claimed jobs were not finished (a finish() failed)")
    finally:
        await conn.close()
    return problems


async def sample_waits(admin_url: str, database: str, until: float, interval: float = 0.02) -> Counter[str]:
    """--profile: what the bench database's active backends are doing, sampled every ``interval``."""
    waits: Counter[str] = Counter()
    conn = await asyncpg.connect(libpq_dsn(admin_url))
    try:
        while time.monotonic() < until:
            rows = await conn.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = $1 AND backend_type = 'client backend' AND state <> 'idle'",
                database,
            )
            waits["samples"] += 1
            for row in rows:
                what = f"{row['wait_event_type']}:{row['wait_event']}" if row["wait_event_type"] else "on CPU"
                waits[f"{row['state']} / {what}"] += 1
            await asyncio.sleep(interval)
    finally:
        await conn.close()
    return waits


async def statements(admin_url: str, database: str, reset: bool) -> list[Any]:
    conn = await asyncpg.connect(libpq_dsn(admin_url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
            return []
        return await conn.fetch(
            """
            SELECT s.calls, s.total_exec_time, s.rows, s.wal_bytes,
                   left(regexp_replace(s.query, '\\s+', ' ', 'g'), 150) AS query
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = $1 ORDER BY s.total_exec_time DESC LIMIT 15
            """,
            database,
        )
    finally:
        await conn.close()


def split(workers: int, processes: int) -> list[int]:
    processes = max(1, min(workers, processes))
    share, rest = divmod(workers, processes)
    return [share + (1 if i < rest else 0) for i in range(processes)]


# ==========================================================================
# Reference: the same claim + finish loop as plain SKIP LOCKED SQL
# ==========================================================================

REFERENCE_DDL = """
    CREATE TABLE bench_jobs (
        job_id text PRIMARY KEY, channel text NOT NULL, status text NOT NULL, token text UNIQUE,
        enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(), args text NOT NULL
    );
    CREATE INDEX bench_jobs_ready ON bench_jobs (enqueued_at) WHERE status = 'pending'
"""
REFERENCE_FILL = """
    INSERT INTO bench_jobs (job_id, channel, status, args)
    SELECT gen_random_uuid()::text, 'bench-org-' || (i % $2), 'pending', '{"n": 0}' FROM generate_series(1, $1) AS i
"""
# One autocommit statement each, like the queue's claim and finish transactions (two durable commits per job).
REFERENCE_CLAIM = """
    UPDATE bench_jobs SET status = 'running', token = $1
    WHERE job_id = (SELECT job_id FROM bench_jobs WHERE status = 'pending' ORDER BY enqueued_at
                    LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING job_id, args
"""
REFERENCE_FINISH = "UPDATE bench_jobs SET status = 'success', token = NULL WHERE token = $1 AND status = 'running'"


async def reference_process(url: str, workers: int, barrier: Any, warmup: float, seconds: float) -> dict[str, Any]:
    import secrets

    conns = [await asyncpg.connect(libpq_dsn(url)) for _ in range(workers)]
    claimed: list[str] = []
    in_window = 0
    try:
        await asyncio.to_thread(barrier.wait, START_TIMEOUT_S)
        start = time.monotonic()
        window_start, window_end = start + warmup, start + warmup + seconds

        async def worker(conn: asyncpg.Connection) -> None:
            nonlocal in_window
            while time.monotonic() < window_end:
                token = secrets.token_urlsafe(24)
                row = await conn.fetchrow(REFERENCE_CLAIM, token)
                if row is None:
                    await asyncio.sleep(0.01)
                    continue
                claimed.append(row["job_id"])
                in_window += window_start <= time.monotonic() < window_end
                await conn.execute(REFERENCE_FINISH, token)

        await asyncio.gather(*(worker(conn) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    return {"claimed": claimed, "window_claims": in_window}


def measure_reference(admin_url: str, args: argparse.Namespace) -> tuple[float, int]:
    """claims/s and double claims of the plain-SQL loop, same workers and processes."""
    url = database_url(admin_url, "bench_queue_reference")
    asyncio.run(admin(admin_url, 'DROP DATABASE IF EXISTS "bench_queue_reference"', 'CREATE DATABASE "bench_queue_reference"'))

    async def setup() -> None:
        conn = await asyncpg.connect(libpq_dsn(url))
        try:
            await conn.execute(REFERENCE_DDL)
            # Enough that the loop cannot run dry: this one is fast.
            await conn.execute(REFERENCE_FILL, max(args.fill, 200_000), args.tenants)
            await conn.execute("VACUUM ANALYZE bench_jobs")
        finally:
            await conn.close()

    asyncio.run(setup())
    checkpoint(admin_url)
    shares = split(args.throughput_workers, args.processes)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(shares))
    out = ctx.Queue()
    processes = [
        ctx.Process(target=run_process, args=(reference_process, out, url, share, barrier, args.throughput_warmup, args.seconds))
        for share in shares
    ]
    for process in processes:
        process.start()
    try:
        reports = [receive(out, processes, time.monotonic() + START_TIMEOUT_S + args.seconds + 60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    claimed = [job for r in reports for job in r["claimed"]]
    return sum(r["window_claims"] for r in reports) / args.seconds, len(claimed) - len(set(claimed))


# ==========================================================================
# Main process plumbing
# ==========================================================================









def receive(out: Any, processes: list[Any], deadline: float) -> Any:
    """One report from ``out``; a process that died without reporting fails the run instead of hanging it."""
    while True:
        try:
            status, detail = out.get(timeout=1)
        except Empty:
            died = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if died or time.monotonic() > deadline:
                raise RuntimeError(f"bench processes died (exit codes {died}) or timed out") from None
            continue
        if status == "error":
            raise RuntimeError(f"a bench process failed:\n{detail}")
        return detail








async def _fetchval(url: str, sql: str) -> Any:
    return (await admin(url, sql))[0]


def fresh_composer_database(admin_url: str, name: str) -> str:
    url = fresh_database(admin_url, name)
    from events.migrations import upgrade_async

    asyncio.run(upgrade_async(url, "composer"))
    return url


def fmt_ms(value: float) -> str:
    return f"{value:8.1f}"


def report_latency(results: list[LatencyResult], args: argparse.Namespace) -> None:
    print(
        f"\nenqueue-to-claim latency, ms (one single-job compose at a time at {args.rate:g}/s, "
        f"{args.samples} samples after {args.warmup_samples} warm-up; long-polling workers in one replica)"
    )
    print(
        f"{'workers':>7} {'samples':>8} {'p50':>8} {'p99':>8} {'max':>8} {'min':>8}  {'submits/s':>9} "
        f"{'claim txns/job':>14} {'retries':>7}   CPU: {'replica':>7} {'submitter':>9} {'postgres':>8} {'other':>6}"
    )
    print("-" * 127)
    for r in results:
        per_job = r.claim_transactions / max(1, len(r.latencies_ms) + args.warmup_samples)
        print(
            f"{r.workers:>7} {len(r.latencies_ms):>8} {fmt_ms(r.percentile(50))} {fmt_ms(r.percentile(99))} "
            f"{fmt_ms(max(r.latencies_ms, default=float('nan')))} {fmt_ms(min(r.latencies_ms, default=float('nan')))}  "
            f"{r.rate:>9.1f} {per_job:>14.1f} {r.retries:>7}        {r.replica_cpu:>7.2f} {r.submitter_cpu:>9.2f} {r.server_cpu:>8.2f} {r.other_cpu:>6.2f}"
        )
        if r.missing:
            print(f"        ERROR: {r.missing} submitted jobs were never claimed")
        for error in r.errors[:3]:
            print(f"        worker error: {error.strip().splitlines()[-1]}")
        if len(r.errors) > 3:
            print(f"        ... {len(r.errors)} worker errors in all")
    print("  (claim txns/job: claim transactions the replica ran per submitted job -- every wake-up")
    print("   sends every waiting worker into a claim; retries: queue transactions run again after losing")
    print("   a race; CPU: cores used while the submitter ran -- other is anything else running on the machine)")
    if (busiest := max(r.other_cpu for r in results)) > BUSY_MACHINE_CORES:
        print(f"  WARNING: other processes used up to {busiest:.2f} cores meanwhile: these latencies are not comparable")


def report_throughput(t: ThroughputResult, reference: tuple[float, int] | None, args: argparse.Namespace) -> None:
    print(
        f"\nsustained claims: {t.workers} workers in {t.processes} replica processes "
        f"({', '.join(str(s) for s in split(t.workers, t.processes))} asyncio tasks; pool_size = workers + 4 each), "
        f"claim + finish (no-op) in a loop"
    )
    print(
        f"  pre-filled {t.filled:,} independent jobs ({args.jobs_per_compose} per compose, {args.tenants} tenants) "
        f"in {t.fill_s:.1f} s = {t.filled / t.fill_s:,.0f} jobs/s submitted"
    )
    print(
        f"  claims in the {t.seconds:g} s window: {t.window_claims:,} = {t.claims_per_s:,.0f} claims/s "
        f"(after {args.throughput_warmup:g} s warm-up)"
    )
    if t.window_empty:
        print(f"  NOTE: the queue ran dry inside the window ({t.window_empty} empty long-polls): the rate is a lower bound")
    print(
        f"  per worker: claim p50 {percentile(t.claim_ms, 50):.1f} ms, p99 {percentile(t.claim_ms, 99):.1f} ms; "
        f"finish p50 {percentile(t.finish_ms, 50):.1f} ms, p99 {percentile(t.finish_ms, 99):.1f} ms"
    )
    print(
        f"  CPU in the window: replicas {t.replica_cpu:.2f} cores, PostgreSQL {t.server_cpu:.2f} cores, "
        f"anything else {max(0.0, t.machine_cpu - t.replica_cpu - t.server_cpu):.2f} cores "
        f"(machine busy {t.machine_cpu:.2f} of {os.cpu_count()})"
    )
    if (other := t.machine_cpu - t.replica_cpu - t.server_cpu) > BUSY_MACHINE_CORES:
        print(f"  WARNING: other processes used {other:.2f} cores in the window: this rate is not comparable")
    print(f"  connections opened during the run: {t.connections_opened} (pools, LISTEN, lease sweeps)")
    kinds = ", ".join(f"{kind}: {n:,}" for kind, n in t.retry_kinds.most_common())
    print(f"  queue transactions run again after losing a race: {t.retries:,} (warm-up included){f' ({kinds})' if kinds else ''}")
    print(
        f"  double claims: {t.double_claims} ({t.claimed:,} claims of {t.unique_claimed:,} distinct jobs "
        f"from all processes; {t.finished:,} finished)"
    )
    for problem in t.db_problems:
        print(f"  ERROR: {problem}")
    if not t.db_problems:
        print("  database agrees: one JobClaimed event and one attempt per claimed job, every finished job success")
    for error in t.errors[:3]:
        print(f"  worker error: {error.strip().splitlines()[-1]}")
    if len(t.errors) > 3:
        print(f"  ... {len(t.errors)} worker errors in all")
    if reference is not None:
        rate, doubles = reference
        print(
            f"  reference, plain SQL on the same server (asyncpg, one autocommit UPDATE ... FOR UPDATE SKIP LOCKED to "
            f"claim and one UPDATE to finish, same {t.workers} workers in {t.processes} processes): "
            f"{rate:,.0f} claims/s, {doubles} double claims"
        )


def report_profile(t: ThroughputResult, admin_url: str, args: argparse.Namespace) -> None:
    out = Path(args.profile)
    rows = asyncio.run(statements(admin_url, "bench_queue_throughput", reset=False))
    lines = [f"{'calls':>8} {'total ms':>9} {'ms/call':>8} {'rows':>8} {'WAL kB':>8}  query"]
    for row in rows:
        lines.append(
            f"{row['calls']:>8} {row['total_exec_time']:>9.0f} {row['total_exec_time'] / max(row['calls'], 1):>8.3f} "
            f"{row['rows']:>8} {int(row['wal_bytes']) // 1024:>8}  {row['query']}"
        )
    (out / "throughput-statements.txt").write_text("\n".join(lines) + "\n")
    print("\n--profile: statements by server execution time in the throughput phase (warm-up included)")
    print("\n".join("  " + line for line in lines))
    samples = t.waits.pop("samples", 0)
    print(f"\n--profile: non-idle backends of the bench database, mean over {samples} samples of pg_stat_activity")
    for what, n in t.waits.most_common(12):
        print(f"  {n / max(samples, 1):6.1f}  {what}")
    profiles = sorted(out.glob("throughput-replica-*.prof"))
    if profiles:
        print(f"\n--profile: replica CPU (cProfile, window only), top functions by own time; files in {out}")
        stats = pstats.Stats(*(str(p) for p in profiles), stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BENCH_POSTGRES_URL"), help="an existing server (admin URL)")
    parser.add_argument("--latency-workers", default="1,16,64", help="idle long-polling worker counts")
    parser.add_argument("--rate", type=float, default=20.0, help="submits per second in the latency phase")
    parser.add_argument("--samples", type=int, default=200, help="counted submits per worker count")
    parser.add_argument("--warmup-samples", type=int, default=20)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--fill", type=int, default=20_000, help="jobs queued before the throughput phase")
    parser.add_argument("--jobs-per-compose", type=int, default=10)
    parser.add_argument("--throughput-workers", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2, help="replica processes in the throughput phase")
    parser.add_argument("--throughput-warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="throughput window")
    parser.add_argument("--skip", choices=("latency", "throughput"), help="leave one phase out")
    parser.add_argument("--no-reference", action="store_true", help="leave out the plain-SQL reference loop")
    parser.add_argument("--profile", metavar="DIR", help="pg_stat_statements, wait events and cProfile of the throughput phase")
    args = parser.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    server: LocalPostgres | None = None
    admin_url = args.url
    if admin_url is None:
        server = LocalPostgres(settings=STATEMENTS_SETTINGS if args.profile else None).start()
        admin_url = server.url()
    try:
        v = importlib.metadata.version
        print(f"server: {server_description(admin_url, 'max_connections')}")
        print(f"client: asyncpg {v('asyncpg')}, SQLAlchemy {v('sqlalchemy')}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

        latency: list[LatencyResult] = []
        if args.skip != "latency":
            for workers in (int(w) for w in args.latency_workers.split(",")):
                latency.append(result := measure_latency(server, admin_url, workers, args))
                print(
                    f"  latency, {workers:>2} workers: p50 {result.percentile(50):.1f} ms, "
                    f"p99 {result.percentile(99):.1f} ms, max {max(result.latencies_ms, default=float('nan')):.1f} ms",
                    flush=True,
                )
        throughput = None
        reference = None
        if args.skip != "throughput":
            throughput = measure_throughput(server, admin_url, args)
            print(f"  throughput: {throughput.claims_per_s:,.0f} claims/s", flush=True)
            if not args.no_reference:
                reference = measure_reference(admin_url, args)

        if latency:
            report_latency(latency, args)
        if throughput:
            report_throughput(throughput, reference, args)
            if args.profile:
                report_profile(throughput, admin_url, args)

        print("\ntargets:")
        if latency:
            p99s = [r.percentile(99) for r in latency]
            ok = all(p < LATENCY_TARGET_MS for p in p99s) and not any(r.missing for r in latency)
            detail = "/".join(f"{p:.1f}" for p in p99s)
            label = "/".join(str(r.workers) for r in latency)
            print(f"  p99 enqueue-to-claim < {LATENCY_TARGET_MS:g} ms ({label} workers: {detail} ms)  {'PASS' if ok else 'MISS'}")
        if throughput:
            ok = throughput.claims_per_s >= CLAIMS_TARGET
            print(
                f"  >= {CLAIMS_TARGET:g} claims/s with {throughput.workers} workers ({throughput.claims_per_s:,.0f}/s)  "
                f"{'PASS' if ok else 'MISS'}"
            )
            ok = throughput.double_claims == 0 and not throughput.db_problems
            print(f"  double claims: {throughput.double_claims}  {'PASS' if ok else 'MISS'}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
