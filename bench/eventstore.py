"""Event store write/read throughput against one real PostgreSQL server.

Run:  .venv/bin/python bench/eventstore.py [--seconds N] [--url URL]

Contenders, each in a fresh database of the same server:

* ours           events.store.EventStore.append: one new event on a new stream
                 per transaction (with its outbox row); then 100-event batches;
                 then the sequencer and read_all over everything written.
* raw INSERT     asyncpg: BEGIN; INSERT one row (uuid, text, jsonb,
                 timestamptz); COMMIT. What one durable commit costs here.
* eventsourcing  the eventsourcing library's PostgresApplicationRecorder
                 (psycopg 3), one new aggregate's first event per call.

Concurrency model (the same for every contender): W concurrent writers run in
P = min(W, 4) spawned worker processes, W / P writers each (1 -> 1x1,
8 -> 4x2, 32 -> 4x8). Separate processes because on a 2-core machine one
Python process's client-side CPU would otherwise cap every contender at the
same number and hide the database's behaviour. Inside a process the writers
are asyncio tasks for the async clients (ours, asyncpg; both on uvloop, the
services' event loop) and threads for the synchronous eventsourcing library --
each library's own way to be concurrent.

Counting: all processes start together (a barrier), run a warm-up (opening
connections, filling caches), then count the transactions that commit inside
a fixed window of --seconds. Writes use PostgreSQL's durable defaults (fsync,
synchronous_commit on); a CHECKPOINT before each measurement keeps a
checkpoint from landing in one contender's window more than another's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty
from typing import Any, Awaitable, Callable

import asyncpg
import uvloop
import sqlalchemy as sa

BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, so make the repository's packages (events/) importable,
# here and in the spawned workers (which inherit sys.path).
sys.path.insert(0, str(BENCH_DIR.parent))

from _admin import checkpoint, database_url, fresh_database, libpq_dsn, server_description  # noqa: E402
from _pg import LocalPostgres  # noqa: E402  (bench/ is sys.path[0] when run as a script)

WRITER_LEVELS = (1, 8, 32)
BATCH_WRITER_LEVELS = (1, 8)
BATCH_SIZE = 100
MAX_PROCESSES = 4
READ_PAGE = 1000
OUTBOX_TOPIC = "composer.events.v1"
TARGET_WRITERS = 8
TARGET_VS_RAW = 0.5  # ours >= 50% of raw INSERT
TARGET_VS_ES = 5.0  # ours >= 5x eventsourcing
BARRIER_TIMEOUT_S = 120

# --------------------------------------------------------------------------
# Measurement plumbing (runs inside the worker processes)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """When to start counting and when to stop, on this process's monotonic clock."""

    warm_end: float
    end: float

    @classmethod
    def starting_now(cls, warmup_s: float, seconds: float) -> Window:
        now = time.monotonic()
        return cls(warm_end=now + warmup_s, end=now + warmup_s + seconds)


@dataclass
class WriterResult:
    committed: int = 0  # transactions committed inside the window
    event_ids: list[uuid.UUID] = field(default_factory=list)  # every event committed (ours only)


def _count(result: WriterResult, window: Window, done: float, ids: list[uuid.UUID] | None) -> bool:
    """Book one committed transaction; False once the window is over."""
    if ids is not None:
        # Every committed event must come back from read_all, counted or not.
        result.event_ids.extend(ids)
    if done >= window.end:
        return False
    if done >= window.warm_end:
        result.committed += 1
    return True


AsyncWrite = Callable[[], Awaitable[list[uuid.UUID] | None]]
SyncWrite = Callable[[], list[uuid.UUID] | None]


async def _async_writer(write: AsyncWrite, window: Window) -> WriterResult:
    result = WriterResult()
    while True:
        ids = await write()
        if not _count(result, window, time.monotonic(), ids):
            return result


def _thread_writer(write: SyncWrite, window: Window, out: list[WriterResult]) -> None:
    result = WriterResult()
    while True:
        ids = write()
        if not _count(result, window, time.monotonic(), ids):
            break
    out.append(result)


def _merge(results: list[WriterResult]) -> tuple[int, bytes]:
    """Sum of committed transactions and all event ids, packed for the queue."""
    committed = sum(r.committed for r in results)
    ids = b"".join(i.bytes for r in results for i in r.event_ids)
    return committed, ids


# --------------------------------------------------------------------------
# Contenders. Each has: setup(url) in the main process (schema in a fresh
# database) and run(url, writers, batch, barrier, warmup, seconds) in a worker
# process, returning (committed transactions, packed event ids).
# --------------------------------------------------------------------------


class Ours:
    name = "ours"

    @staticmethod
    def setup(url: str) -> None:
        from events.migrations import upgrade

        upgrade(url, "composer")

    @staticmethod
    def run(url: str, writers: int, batch: int, barrier: Any, warmup: float, seconds: float) -> tuple[int, bytes]:
        return uvloop.run(Ours._run(url, writers, batch, barrier, warmup, seconds))

    @staticmethod
    async def _run(url: str, writers: int, batch: int, barrier: Any, warmup: float, seconds: float) -> tuple[int, bytes]:
        from events.engine import create_engine
        from events.envelope import Actor, NewEvent, Stream
        from events.store import EventStore

        engine = create_engine(url)
        store = EventStore(engine, outbox_topic=OUTBOX_TOPIC)
        actor = Actor(subject="bench", org_id="org-1")

        async def append() -> list[uuid.UUID]:
            stream = Stream(type="bench", id=str(uuid.uuid4()))
            new = [NewEvent(event_type="BenchEventRecorded", payload={"n": n}, actor=actor) for n in range(batch)]
            stored = await store.append(stream, 0, new)
            return [envelope.event_id for envelope in stored]

        try:
            await asyncio.to_thread(barrier.wait, BARRIER_TIMEOUT_S)
            window = Window.starting_now(warmup, seconds)
            results = await asyncio.gather(*(_async_writer(append, window) for _ in range(writers)))
            return _merge(list(results))
        finally:
            await store.close()
            await engine.dispose()


class RawInsert:
    name = "raw INSERT"
    TABLE = """
        CREATE TABLE bench_events (
            event_id uuid PRIMARY KEY,
            stream_id text NOT NULL,
            event_type text NOT NULL,
            payload jsonb NOT NULL,
            recorded_at timestamptz NOT NULL
        )"""
    INSERT = "INSERT INTO bench_events (event_id, stream_id, event_type, payload, recorded_at) VALUES ($1, $2, $3, $4, $5)"

    @staticmethod
    def setup(url: str) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(libpq_dsn(url))
            try:
                await conn.execute(RawInsert.TABLE)
            finally:
                await conn.close()

        asyncio.run(create())

    @staticmethod
    def run(url: str, writers: int, batch: int, barrier: Any, warmup: float, seconds: float) -> tuple[int, bytes]:
        assert batch == 1, "raw INSERT is only measured with single-row transactions"
        return uvloop.run(RawInsert._run(url, writers, barrier, warmup, seconds))

    @staticmethod
    async def _run(url: str, writers: int, barrier: Any, warmup: float, seconds: float) -> tuple[int, bytes]:
        # One connection per writer, like a pool sized to the writers.
        conns = [await asyncpg.connect(libpq_dsn(url)) for _ in range(writers)]

        def insert_on(conn: asyncpg.Connection) -> AsyncWrite:
            async def insert() -> None:
                async with conn.transaction():  # BEGIN ... COMMIT
                    await conn.execute(
                        RawInsert.INSERT, uuid.uuid4(), str(uuid.uuid4()), "BenchEventRecorded", '{"n": 0}', datetime.now(UTC)
                    )

            return insert

        try:
            await asyncio.to_thread(barrier.wait, BARRIER_TIMEOUT_S)
            window = Window.starting_now(warmup, seconds)
            results = await asyncio.gather(*(_async_writer(insert_on(c), window) for c in conns))
            return _merge(list(results))
        finally:
            for conn in conns:
                await conn.close()


class EventSourcingLib:
    """eventsourcing 9.x PostgresApplicationRecorder, driven directly.

    Calling the recorder with a StoredEvent skips the library's aggregate and
    mapper layers (object -> JSON), which only flatters the baseline: what is
    measured is its storage path (LOCK TABLE ... IN EXCLUSIVE MODE, NOTIFY,
    INSERT ... RETURNING notification_id, in one pipelined transaction).
    """

    name = "eventsourcing"
    TOPIC = "bench:BenchEventRecorded"
    STATE = b'{"n": 0}'

    @staticmethod
    def _recorder(url: str, pool_size: int) -> Any:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        u = sa.make_url(url)
        datastore = PostgresDatastore(
            dbname=u.database or "postgres",
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password or "",
            pool_size=pool_size,  # default is 1: one connection per writer thread
        )
        return PostgresApplicationRecorder(datastore)

    @staticmethod
    def setup(url: str) -> None:
        recorder = EventSourcingLib._recorder(url, pool_size=1)
        recorder.create_table()
        recorder.datastore.close()

    @staticmethod
    def run(url: str, writers: int, batch: int, barrier: Any, warmup: float, seconds: float) -> tuple[int, bytes]:
        from eventsourcing.persistence import StoredEvent

        assert batch == 1, "eventsourcing is only measured with single-event transactions"
        recorder = EventSourcingLib._recorder(url, pool_size=writers)

        def insert() -> None:
            event = StoredEvent(
                originator_id=uuid.uuid4(), originator_version=1, topic=EventSourcingLib.TOPIC, state=EventSourcingLib.STATE
            )
            recorder.insert_events([event])

        try:
            barrier.wait(BARRIER_TIMEOUT_S)
            window = Window.starting_now(warmup, seconds)
            results: list[WriterResult] = []
            threads = [threading.Thread(target=_thread_writer, args=(insert, window, results)) for _ in range(writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if len(results) != writers:
                raise RuntimeError("a writer thread failed (see its traceback above)")
            return _merge(results)
        finally:
            recorder.datastore.close()


CONTENDERS = {c.name: c for c in (Ours, RawInsert, EventSourcingLib)}


def _worker(contender: str, url: str, writers: int, batch: int, barrier: Any, warmup: float, seconds: float, queue: Any) -> None:
    """Entry point of a spawned worker process: run, then report on the queue."""
    try:
        queue.put(("ok", CONTENDERS[contender].run(url, writers, batch, barrier, warmup, seconds)))
    except BaseException:
        barrier.abort()  # release everyone else instead of hanging the run
        queue.put(("error", traceback.format_exc()))


# --------------------------------------------------------------------------
# Orchestration (main process)
# --------------------------------------------------------------------------


@dataclass
class Measurement:
    committed: int  # transactions inside the window
    events_per_txn: int
    seconds: float
    event_ids: bytes  # packed UUIDs of every committed event (ours only)

    @property
    def events_per_s(self) -> float:
        return self.committed * self.events_per_txn / self.seconds


def split_writers(writers: int) -> list[int]:
    """Writers per process: P = min(W, MAX_PROCESSES) processes, equal shares."""
    processes = min(writers, MAX_PROCESSES)
    share, rest = divmod(writers, processes)
    return [share + (1 if i < rest else 0) for i in range(processes)]


def measure(contender: str, url: str, writers: int, batch: int, warmup: float, seconds: float) -> Measurement:
    ctx = mp.get_context("spawn")
    shares = split_writers(writers)
    barrier = ctx.Barrier(len(shares))
    queue = ctx.Queue()
    processes = [
        ctx.Process(target=_worker, args=(contender, url, share, batch, barrier, warmup, seconds, queue)) for share in shares
    ]
    for process in processes:
        process.start()
    reports = _collect_reports(queue, processes, deadline=time.monotonic() + BARRIER_TIMEOUT_S + warmup + seconds + 60)
    for process in processes:
        process.join()
    errors = [detail for status, detail in reports if status == "error"]
    if errors:
        raise RuntimeError(f"{contender} with {writers} writers failed:\n" + "\n".join(errors))
    committed = sum(c for _, (c, _ids) in reports)
    ids = b"".join(i for _, (_c, i) in reports)
    return Measurement(committed, batch, seconds, ids)


def _collect_reports(queue: Any, processes: list[Any], deadline: float) -> list[tuple[str, Any]]:
    """One report per process. Read before join(): a child with unread queue
    data cannot exit. A child that died without reporting (killed, crashed
    interpreter) fails the run instead of hanging it."""
    reports: list[tuple[str, Any]] = []
    while len(reports) < len(processes):
        try:
            reports.append(queue.get(timeout=1))
        except Empty:
            died = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if died or time.monotonic() > deadline:
                for process in processes:
                    process.kill()
                raise RuntimeError(f"worker processes died (exit codes {died}) or timed out") from None
    return reports














def client_description() -> str:
    import psycopg  # the eventsourcing library's driver; its C/binary speedups are optional

    v = importlib.metadata.version
    return (
        f"asyncpg {v('asyncpg')}, SQLAlchemy {v('sqlalchemy')}, eventsourcing {v('eventsourcing')} "
        f"on psycopg {v('psycopg')} ({psycopg.pq.__impl__} implementation), Python {sys.version.split()[0]}"
    )


# --------------------------------------------------------------------------
# Ours: sequencer and read_all after the writes
# --------------------------------------------------------------------------


@dataclass
class ReadReport:
    sequenced: int
    sequence_s: float
    read: int
    read_s: float
    ordering_intact: bool
    problems: list[str]


async def sequence_and_read(url: str, appended: bytes) -> ReadReport:
    from events.engine import create_engine
    from events.store import EventStore

    engine = create_engine(url)
    store = EventStore(engine, outbox_topic=OUTBOX_TOPIC)
    try:
        started = time.perf_counter()
        sequenced = 0
        while placed := await store.sequence():
            sequenced += placed
        sequence_s = time.perf_counter() - started

        started = time.perf_counter()
        positions: list[int] = []
        read_ids: list[bytes] = []
        after = 0
        while page := await store.read_all(after_position=after, limit=READ_PAGE):
            for envelope in page:
                positions.append(envelope.position)
                read_ids.append(envelope.event_id.bytes)
            after = page[-1].position
        read_s = time.perf_counter() - started
    finally:
        await engine.dispose()

    problems = check_read_all(appended, read_ids, positions)
    return ReadReport(sequenced, sequence_s, len(read_ids), read_s, not problems, problems)


def check_read_all(appended: bytes, read_ids: list[bytes], positions: list[int]) -> list[str]:
    """Every appended event exactly once, positions strictly increasing."""
    expected = {appended[i : i + 16] for i in range(0, len(appended), 16)}
    problems = []
    if len(expected) * 16 != len(appended):
        problems.append("the writers reported duplicate event ids")
    if len(set(read_ids)) != len(read_ids):
        problems.append(f"{len(read_ids) - len(set(read_ids))} events read more than once")
    if missing := expected - set(read_ids):
        problems.append(f"{len(missing)} appended events never read")
    if extra := set(read_ids) - expected:
        problems.append(f"{len(extra)} events read that no writer appended")
    if any(p is None for p in positions):
        problems.append("events without a position")
    elif any(b <= a for a, b in zip(positions, positions[1:])):
        problems.append("positions not strictly increasing")
    return problems


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

# samples[contender][writers] -> one Measurement per round
Samples = dict[str, dict[int, list[Measurement]]]


def median_rate(samples: Samples, name: str, writers: int) -> float | None:
    runs = samples.get(name, {}).get(writers)
    return statistics.median(m.events_per_s for m in runs) if runs else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(samples: Samples, rounds: int) -> None:
    print(f"\nsingle-event append transactions, committed events/s (median of {rounds} round(s))")
    header = f"{'writers':>7}  {'processes':>9}  {'ours':>9}  {'raw INSERT':>10}  {'eventsourcing':>13}  {'ours/raw':>8}  {'ours/es':>8}"
    print(header)
    print("-" * len(header))
    for writers in WRITER_LEVELS:
        ours, raw, es = (median_rate(samples, c.name, writers) for c in (Ours, RawInsert, EventSourcingLib))
        shares = split_writers(writers)
        print(
            f"{writers:>7}  {f'{len(shares)}x{shares[0]}':>9}  {fmt_rate(ours):>9}  {fmt_rate(raw):>10}  "
            f"{fmt_rate(es):>13}  {fmt_ratio(ratio(ours, raw)):>8}  {fmt_ratio(ratio(ours, es)):>8}"
        )


def print_targets(samples: Samples) -> None:
    ours = median_rate(samples, Ours.name, TARGET_WRITERS)
    print(f"\ntargets at {TARGET_WRITERS} writers:")
    for label, baseline, target in (
        (f"ours >= {TARGET_VS_RAW:.0%} of raw INSERT", RawInsert.name, TARGET_VS_RAW),
        (f"ours >= {TARGET_VS_ES:g}x eventsourcing", EventSourcingLib.name, TARGET_VS_ES),
    ):
        r = ratio(ours, median_rate(samples, baseline, TARGET_WRITERS))
        verdict = "n/a (not measured)" if r is None else ("PASS" if r >= target else "MISS")
        print(f"  {label:<32} {fmt_ratio(r):>8}  {verdict}")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before each window (default 1)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds of every single-event measurement; the table shows medians (default 3)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("BENCH_POSTGRES_URL"),
        help="an existing server (any database; bench_* databases are created, dropped first if they exist); "
        "default: $BENCH_POSTGRES_URL, else start a local server",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of: {', '.join(CONTENDERS)} (default: all)",
    )
    args = parser.parse_args()
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    return args


def database_name(contender: str) -> str:
    return "bench_" + contender.replace(" ", "_").lower()


def run_single_event_rounds(urls: dict[str, str], admin_url: str, args: argparse.Namespace) -> Samples:
    """Every contender at every level, interleaved, for --rounds rounds.

    The disk's fsync latency drifts (a shared virtual disk can vary several
    fold within seconds), so contenders are measured level by level next to
    each other, their order rotated each round, and the table reports medians.
    """
    samples: Samples = {name: {w: [] for w in WRITER_LEVELS} for name in urls}
    names = list(urls)
    for round_no in range(args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for writers in WRITER_LEVELS:
            for name in order:
                checkpoint(admin_url)
                m = measure(name, urls[name], writers, 1, args.warmup, args.seconds)
                samples[name][writers].append(m)
                print(
                    f"  round {round_no + 1}/{args.rounds}  {writers:>2} writers  {name:<13} {m.events_per_s:>9,.0f} events/s",
                    flush=True,
                )
    return samples


def run_ours_batches_and_reads(url: str, admin_url: str, single: dict[int, list[Measurement]], args: argparse.Namespace) -> None:
    appended = b"".join(m.event_ids for runs in single.values() for m in runs)
    print(f"\nours, batch appends ({BATCH_SIZE} events per transaction, one new stream per batch):")
    for writers in BATCH_WRITER_LEVELS:
        checkpoint(admin_url)
        m = measure(Ours.name, url, writers, BATCH_SIZE, args.warmup, args.seconds)
        appended += m.event_ids
        print(f"  {writers:>2} writers: {m.events_per_s:>9,.0f} events/s ({m.committed / m.seconds:,.0f} transactions/s)")

    report = asyncio.run(sequence_and_read(url, appended))
    print(f"\nours, after the writes ({len(appended) // 16:,} events committed in all):")
    print(f"  sequencer: {report.sequenced:,} events in {report.sequence_s:.2f} s = {report.sequenced / report.sequence_s:,.0f} events/s")
    print(
        f"  read_all (pages of {READ_PAGE}): {report.read:,} events in {report.read_s:.2f} s "
        f"= {report.read / report.read_s:,.0f} events/s"
    )
    detail = "every appended event exactly once, positions strictly increasing" if report.ordering_intact else "; ".join(report.problems)
    print(f"  ordering intact: {'yes' if report.ordering_intact else 'no'} ({detail})")


def main() -> None:
    args = parse_args()
    server = None
    if args.url:
        admin_url = database_url(args.url, sa.make_url(args.url).database or "postgres")
    else:
        server = LocalPostgres().start()
        admin_url = server.url("postgres")
    try:
        print(f"server: {server_description(admin_url)}")
        print(f"clients: {client_description()}")
        print(
            f"each measurement: {args.warmup:g} s warm-up, then transactions committed in {args.seconds:g} s are counted; "
            f"writers run in min(writers, {MAX_PROCESSES}) spawned processes"
        )
        # A fresh database per contender, so every table starts empty.
        urls = {name: fresh_database(admin_url, database_name(name)) for name in args.contenders}
        for name, url in urls.items():
            CONTENDERS[name].setup(url)

        samples = run_single_event_rounds(urls, admin_url, args)
        if Ours.name in urls:
            run_ours_batches_and_reads(urls[Ours.name], admin_url, samples[Ours.name], args)
        print_table(samples, args.rounds)
        print_targets(samples)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
