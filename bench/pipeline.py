"""End-to-end latency and throughput of the event pipeline, on real servers.

Run:  .venv/bin/python bench/pipeline.py [--seconds 30] [--rates 200,1000]

Path measured: EventStore.append (producer database, ``composer`` schema,
outbox row in the same statement) -> OutboxRelay (woken by the outbox NOTIFY;
sequences, publishes to Kafka, marks published) -> Kafka (one local KRaft
broker, topic with 3 partitions) -> ConsumerRunner (consumer database,
``backend`` schema; inbox row + one handler row per event, one transaction
per fetched batch).

Three OS processes (multiprocessing spawn), as in a deployment:

* appender   one EventStore; single-event appends round-robin over --streams
             streams (each append at its stream's next version), paced by an
             absolute schedule (event i is due at t0 + i/rate, so a slow
             append is caught up on rather than shifting everything after it),
             on a fixed pool of --appender-connections (no overflow: see
             bench/README.md). It records, per event id, time.time() when
             append() returned.
* relay      OutboxRelay(store, KafkaTransport(...).publisher(), poll_interval=1.0).run()
             Its publisher is wrapped to record when Kafka acknowledged each
             event (for the breakdown only).
* consumer   ConsumerRunner(...).run() with a handler inserting (event_id,
             stream, version) into a small table (a Statement, as the
             services' hot statements are). Its on_commit callback, called
             once a transaction that applied events has committed, stamps
             every event the handler applied in it with time.time().
             (Stamping after process_batch() would also count the Kafka
             offset commit that follows.)

Latency = consumer commit stamp - append return stamp, joined on event id,
over the events appended in the measured window (a --warmup at the same rate
comes first and is not counted). Every appended event, warm-up included, must
reach the consumer; missing ones are reported as an error.

Maximum throughput: --writers concurrent appending tasks (each on its own
stream) in --appender-processes processes append flat out; over a window
after a warm-up the bench counts what each stage finished (appends returned,
events acknowledged by Kafka, events committed by the consumer) and whether
the backlog grew. The sustained rate is the slowest stage's; if relay and
consumer kept up, the appender is what limits. After the appenders stop, the
relay and consumer drain what is left; if that backlog is large, their drain
rates (without appenders competing for the CPU) are shown too.

Every phase gets fresh databases, a fresh topic and a fresh consumer group.
PostgreSQL keeps its durable defaults (bench/_pg.py); a CHECKPOINT precedes
each phase.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# Run as a script, bench/ is sys.path[0], where a file named like a standard
# module (bench/queue.py) would shadow it -- for multiprocessing too. Put the
# repository root there instead (events/, tests/servers/, bench._pg), here and
# in the spawned children (they inherit sys.path). Nothing is imported before this.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO_ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import importlib.metadata  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402
from array import array  # noqa: E402
from bisect import bisect_right  # noqa: E402
from collections.abc import Callable, Coroutine, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from queue import Empty  # noqa: E402
from typing import Any  # noqa: E402

import asyncpg  # noqa: E402
import uvloop  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench._admin import checkpoint, database_url, fresh_database, libpq_dsn, server_description
from bench._proc import CLK_TCK, kafka_pids, machine_ticks, postgres_pids, process_ticks
from bench._pg import LocalPostgres  # noqa: E402

PARTITIONS = 3
RELAY_POLL_INTERVAL = 1.0
TARGET_RATE = 1000
TARGET_P99_MS = 100.0
READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 180.0
CHILD_POLL_S = 0.05
BOUNDED_GROWTH = 0.05  # backlog growth below 5% of what was appended in the window: bounded
KEPT_UP = 0.95  # a stage at >= 95% of its input's rate kept up
MIN_DRAIN_BACKLOG = 2000  # report drain rates only for a backlog at least this large

applied_table = sa.Table(
    "bench_applied",
    sa.MetaData(),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("stream", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)


# ==========================================================================
# Child processes
# ==========================================================================


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    producer_url: str
    consumer_url: str
    topic: str
    bootstrap: str
    profile_dir: str | None = None


@dataclass
class StageLog:
    """What one child process saw: event ids (16 bytes each) and a time.time() per id."""

    role: str
    ids: bytes = b""
    times: bytes = b""  # array('d')
    cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def stamps(self) -> dict[bytes, float]:
        times = array("d")
        times.frombytes(self.times)
        return {self.ids[i * 16 : i * 16 + 16]: t for i, t in enumerate(times)}

    def time_list(self) -> list[float]:
        times = array("d")
        times.frombytes(self.times)
        return list(times)


class Stamps:
    """First time each event id was seen (a redelivery keeps the first stamp)."""

    def __init__(self) -> None:
        self.at: dict[bytes, float] = {}

    def stamp(self, ids: Sequence[bytes], now: float) -> None:
        for event_id in ids:
            self.at.setdefault(event_id, now)

    def log(self, role: str, **extra: Any) -> StageLog:
        return StageLog(role, b"".join(self.at), array("d", self.at.values()).tobytes(), extra=extra)


def _child(role: str, spec: PhaseSpec, queue: Any, work: Callable[[], Coroutine[Any, Any, StageLog]]) -> None:
    """Run one child's coroutine and report its log (or its traceback) on the queue."""
    # CPU time, not wall time: on a busy 2-core machine a syscall's wall time is
    # mostly waiting for the CPU, which would hide where the CPU actually goes.
    profiler = cProfile.Profile(time.process_time) if spec.profile_dir and role in ("relay", "consumer") else None
    try:
        if profiler:
            profiler.enable()
        # As deployed: uvicorn runs the services on uvloop, and so does `image-builder relay`.
        log = uvloop.run(work())
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(Path(spec.profile_dir) / f"{spec.name}-{role}.prof"))
        log.cpu_s = time.process_time()
        queue.put(("ok", role, log))
    except BaseException:
        queue.put(("error", role, traceback.format_exc()))


async def _until_stopped(stop: Any, task: asyncio.Task) -> None:
    """Wait for the main process's stop event (or for ``task`` to end early)."""
    while not stop.is_set() and not task.done():
        await asyncio.sleep(CHILD_POLL_S)


# -- relay -----------------------------------------------------------------


class StampingPublisher:
    """The relay's Kafka publisher; records when the broker acknowledged each event."""

    def __init__(self, inner: Any, stamps: Stamps, ready: Any, counter: Any) -> None:
        self.inner = inner
        self.stamps = stamps
        self.ready = ready
        self.counter = counter
        self.calls = 0

    async def start(self) -> None:
        await self.inner.start()
        self.ready.set()

    async def stop(self) -> None:
        await self.inner.stop()

    async def publish(self, messages: Sequence[Any]) -> None:
        from events.codec import HEADER_EVENT_ID

        await self.inner.publish(messages)
        now = time.time()
        self.calls += 1
        self.stamps.stamp([uuid.UUID(m.header(HEADER_EVENT_ID).decode()).bytes for m in messages], now)
        self.counter.value = len(self.stamps.at)


def relay_child(spec: PhaseSpec, ready: Any, stop: Any, queue: Any, counter: Any) -> None:
    _child("relay", spec, queue, lambda: _relay(spec, ready, stop, counter))


async def _relay(spec: PhaseSpec, ready: Any, stop: Any, counter: Any) -> StageLog:
    from events.engine import create_engine
    from events.kafka import KafkaTransport
    from events.relay import OutboxRelay
    from events.store import EventStore

    engine = create_engine(spec.producer_url)
    stamps = Stamps()
    publisher = StampingPublisher(KafkaTransport(spec.bootstrap).publisher(), stamps, ready, counter)
    relay = OutboxRelay(EventStore(engine, outbox_topic=spec.topic), publisher, poll_interval=RELAY_POLL_INTERVAL)
    running = asyncio.create_task(relay.run())
    try:
        await _until_stopped(stop, running)
    finally:
        relay.request_stop()
        await running
        await engine.dispose()
    errors = relay.metrics.registry.get_sample_value("outbox_publish_errors_total") or 0
    return stamps.log("relay", publish_calls=publisher.calls, publish_errors=int(errors))


# -- consumer --------------------------------------------------------------


class CommitStamps:
    """The consumer's commits: once a transaction has committed, stamps the events
    the handler applied in it (ConsumerRunner calls ``committed`` then)."""

    def __init__(self, stamps: Stamps, counter: Any) -> None:
        self.stamps = stamps
        self.counter = counter
        self.pending: list[bytes] = []
        self.transactions = 0

    def committed(self) -> None:
        now = time.time()
        if self.pending:
            self.transactions += 1
            # A rolled-back transaction's events are applied again later and
            # stamped at that commit: the first stamp of an id is kept.
            self.stamps.stamp(self.pending, now)
            self.pending.clear()
            self.counter.value = len(self.stamps.at)


class ReadySubscriber:
    """The consumer's subscriber; tells the main process when it has joined its group."""

    def __init__(self, inner: Any, ready: Any) -> None:
        self._inner = inner
        self._ready = ready

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def start(self) -> None:
        await self._inner.start()
        self._ready.set()


def consumer_child(spec: PhaseSpec, ready: Any, stop: Any, queue: Any, counter: Any) -> None:
    _child("consumer", spec, queue, lambda: _consumer(spec, ready, stop, counter))


async def _consumer(spec: PhaseSpec, ready: Any, stop: Any, counter: Any) -> StageLog:
    from events.consumer import ConsumerRunner
    from events.engine import create_engine
    from events.kafka import KafkaTransport
    from events.statements import Statement

    engine = create_engine(spec.consumer_url)
    stamps = Stamps()
    stamping = CommitStamps(stamps, counter)

    insert = Statement(
        applied_table.insert().values(
            event_id=sa.bindparam("b_event_id"), stream=sa.bindparam("b_stream"), version=sa.bindparam("b_version")
        )
    )  # compiled once; each call only binds parameters

    async def handler(envelope: Any, tx: Any) -> None:
        await insert.execute(tx, b_event_id=envelope.event_id, b_stream=envelope.stream_id, b_version=envelope.stream_version)
        stamping.pending.append(envelope.event_id.bytes)

    transport = KafkaTransport(spec.bootstrap)
    runner = ConsumerRunner(
        name="bench",
        subscriber=ReadySubscriber(transport.subscriber([spec.topic], f"bench-{spec.name}"), ready),
        engine=engine,
        handler=handler,
        dead_letters=transport.publisher(),
        on_commit=stamping.committed,
    )
    running = asyncio.create_task(runner.run())
    try:
        await _until_stopped(stop, running)
    finally:
        runner.request_stop()
        await running
        await engine.dispose()
    sample = runner.metrics.registry.get_sample_value
    return stamps.log(
        "consumer",
        transactions=stamping.transactions,
        duplicates=int(sample("consumer_duplicates_skipped_total") or 0),
        dead_lettered=int(sample("consumer_dead_lettered_total") or 0),
    )


# -- appenders -------------------------------------------------------------


async def _wait_for_start(engine: Any, gate: Any) -> float:
    """Connect, tell the main process this appender is ready, and wait for the
    common start time it then sets (so process start-up never eats into the run)."""
    ready, start = gate
    async with engine.connect():
        pass
    with ready.get_lock():
        ready.value += 1
    while start.value == 0.0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(max(0.0, start.value - time.time()))
    return start.value


def steady_appender_child(
    spec: PhaseSpec,
    rate: float,
    warmup: float,
    seconds: float,
    streams: int,
    connections: int,
    gate: Any,
    queue: Any,
) -> None:
    _child("appender", spec, queue, lambda: _append_steady(spec, rate, warmup, seconds, streams, connections, gate))


async def _append_steady(
    spec: PhaseSpec,
    rate: float,
    warmup: float,
    seconds: float,
    stream_count: int,
    connections: int,
    gate: Any,
) -> StageLog:
    """Event i is due at t0 + i/rate and goes to stream i % stream_count, at that
    stream's next version. One task per stream keeps a stream's appends in order;
    appends to different streams overlap when they have to."""
    from events.engine import create_engine
    from events.envelope import Actor, NewEvent, Stream
    from events.store import EventStore

    engine = create_engine(spec.producer_url, pool_size=connections, max_overflow=0)
    store = EventStore(engine, outbox_topic=spec.topic)
    actor = Actor(subject="bench", org_id="org-1")
    total = round(rate * (warmup + seconds))
    warm = round(rate * warmup)
    streams = [Stream(type="bench", id=str(uuid.uuid4())) for _ in range(stream_count)]
    ids = bytearray(16 * total)
    returned = array("d", bytes(8 * total))  # time.time() when append() returned
    late = array("d", bytes(8 * total))  # return - due, on the monotonic clock (seconds)
    inboxes: list[asyncio.Queue[int | None]] = [asyncio.Queue() for _ in range(stream_count)]
    t0 = 0.0

    async def stream_writer(k: int) -> None:
        version = 0
        while (i := await inboxes[k].get()) is not None:
            event = NewEvent(event_type="BenchEventRecorded", payload={"n": i}, actor=actor)
            await store.append(streams[k], version, [event])
            now_wall, now = time.time(), time.monotonic()
            version += 1
            ids[16 * i : 16 * i + 16] = event.event_id.bytes
            returned[i] = now_wall
            late[i] = now - (t0 + i / rate)

    try:
        writers = [asyncio.create_task(stream_writer(k)) for k in range(stream_count)]
        await _wait_for_start(engine, gate)
        t0, t0_wall = time.monotonic(), time.time()
        for i in range(total):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            inboxes[i % stream_count].put_nowait(i)
        for inbox in inboxes:
            inbox.put_nowait(None)
        await asyncio.gather(*writers)
    finally:
        await store.close()
        await engine.dispose()
    return StageLog("appender", bytes(ids), returned.tobytes(), extra={"warm": warm, "t0_wall": t0_wall, "late": late.tobytes()})


def flat_appender_child(spec: PhaseSpec, writers: int, duration: float, gate: Any, queue: Any) -> None:
    _child("appender", spec, queue, lambda: _append_flat(spec, writers, duration, gate))


async def _append_flat(spec: PhaseSpec, writers: int, duration: float, gate: Any) -> StageLog:
    """``writers`` tasks, each appending single events to its own stream as fast as it can."""
    connections = writers  # one connection per writer, never more
    from events.engine import create_engine
    from events.envelope import Actor, NewEvent, Stream
    from events.store import EventStore

    engine = create_engine(spec.producer_url, pool_size=connections, max_overflow=0)
    store = EventStore(engine, outbox_topic=spec.topic)
    actor = Actor(subject="bench", org_id="org-1")
    stamps = Stamps()

    end_at = math.inf

    async def writer() -> None:
        stream = Stream(type="bench", id=str(uuid.uuid4()))
        version = 0
        while time.time() < end_at:
            event = NewEvent(event_type="BenchEventRecorded", payload={"n": version}, actor=actor)
            await store.append(stream, version, [event])
            stamps.at[event.event_id.bytes] = time.time()
            version += 1

    try:
        end_at = await _wait_for_start(engine, gate) + duration
        await asyncio.gather(*(writer() for _ in range(writers)))
    finally:
        await store.close()
        await engine.dispose()
    return stamps.log("appender")


# ==========================================================================
# Main process: servers, phases, CPU accounting
# ==========================================================================













class CpuSampler:
    """CPU used by each group of processes between two moments, in cores."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.samples: list[tuple[float, dict[str, dict[int, int]], tuple[int, int]]] = []
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        per_group = {}
        for name, pids in self.groups.items():
            per_group[name] = {pid: ticks for pid in pids() if (ticks := process_ticks(pid)) is not None}
        self.samples.append((time.time(), per_group, machine_ticks()))

    def sample_at(self, *moments: float) -> None:
        def run() -> None:
            for moment in moments:
                time.sleep(max(0.0, moment - time.time()))
                self.sample()

        self._thread = threading.Thread(target=run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def cores(self) -> tuple[dict[str, float], float] | None:
        """Per group and for the whole machine, between the first two samples."""
        if self._thread is not None:
            self._thread.join()
        if len(self.samples) < 2:
            return None
        (t0, g0, (busy0, _)), (t1, g1, (busy1, _)) = self.samples[:2]
        seconds = (t1 - t0) * CLK_TCK
        groups = {
            name: sum(ticks - g0[name].get(pid, 0) for pid, ticks in g1[name].items()) / seconds for name in self.groups
        }
        return groups, (busy1 - busy0) / seconds


class ChildFailed(RuntimeError):
    pass


class Pipeline:
    """Relay and consumer processes for one phase, plus the appender(s)."""

    def __init__(self, ctx: Any, spec: PhaseSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.queue = ctx.Queue()
        self.stop = ctx.Event()
        self.relay_ready = ctx.Event()
        self.consumer_ready = ctx.Event()
        # Written by one child each, read here for progress: no lock needed.
        self.published = ctx.Value("q", 0, lock=False)
        self.applied = ctx.Value("q", 0, lock=False)
        self.relay = ctx.Process(
            target=relay_child, args=(spec, self.relay_ready, self.stop, self.queue, self.published), name="bench-relay"
        )
        self.consumer = ctx.Process(
            target=consumer_child,
            args=(spec, self.consumer_ready, self.stop, self.queue, self.applied),
            name="bench-consumer",
        )
        self.appenders: list[Any] = []
        self.gate = (ctx.Value("i", 0), ctx.Value("d", 0.0))  # appenders ready; common start time
        self.reports: dict[str, list[StageLog]] = {"relay": [], "consumer": [], "appender": []}

    @property
    def processes(self) -> list[Any]:
        return [self.relay, self.consumer, *self.appenders]

    def start(self) -> None:
        """Start relay and consumer and wait until both are connected."""
        self.relay.start()
        self.consumer.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (self.relay_ready.is_set() and self.consumer_ready.is_set()):
            self._poll(deadline, "relay and consumer to connect")

    def start_appenders(self, target: Callable[..., None], args_per_process: list[tuple[Any, ...]]) -> None:
        for args in args_per_process:
            process = self.ctx.Process(
                target=target, args=(self.spec, *args, self.gate, self.queue), name="bench-appender"
            )
            process.start()
            self.appenders.append(process)

    def release_appenders(self, lead: float = 0.5) -> float:
        """Once every appender is connected, set their common start (``lead`` s from now) and return it."""
        ready, start = self.gate
        deadline = time.monotonic() + READY_TIMEOUT_S
        while ready.value < len(self.appenders):
            self._poll(deadline, "the appenders to connect")
        start.value = time.time() + lead
        return start.value

    def wait_appenders(self, timeout: float) -> list[StageLog]:
        deadline = time.monotonic() + timeout
        while len(self.reports["appender"]) < len(self.appenders):
            self._poll(deadline, "the appenders to finish")
        return self.reports["appender"]

    def drain(self, appended: int, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until the consumer applied ``appended`` events; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.applied.value < appended:
            if time.monotonic() > deadline:
                return False
            self._poll(None, "the consumer to catch up")
        return True

    def finish(self) -> tuple[StageLog, StageLog]:
        self.stop.set()
        deadline = time.monotonic() + 60
        while not (self.reports["relay"] and self.reports["consumer"]):
            self._poll(deadline, "relay and consumer to stop")
        for process in self.processes:
            process.join(timeout=30)
        return self.reports["relay"][0], self.reports["consumer"][0]

    def kill(self) -> None:
        self.stop.set()
        for process in self.processes:
            if process.pid is not None and process.is_alive():
                process.kill()
            if process.pid is not None:
                process.join(timeout=10)

    def _poll(self, deadline: float | None, what: str) -> None:
        """Take in one report (or wait a little); fail on a child's error, death or the deadline.

        Reports are read before any join(): a child with unread queue data cannot exit.
        """
        if self._take(CHILD_POLL_S):
            return
        if deadline is not None and time.monotonic() > deadline:
            raise ChildFailed(f"timed out waiting for {what}")
        if any(p.exitcode not in (None, 0) for p in self.processes) or self._silent_exit():
            ended = [f"{p.name} (exit code {p.exitcode})" for p in self.processes if p.exitcode is not None]
            raise ChildFailed(f"a child process ended without reporting while waiting for {what}: {ended}")

    def _silent_exit(self) -> bool:
        """A child that exited cleanly must have reported (its report may still be in the pipe)."""
        ended = sum(1 for p in self.processes if p.exitcode == 0)
        return ended > sum(len(logs) for logs in self.reports.values()) and not self._take(timeout=2.0)

    def _take(self, timeout: float) -> bool:
        try:
            status, role, payload = self.queue.get(timeout=timeout)
        except Empty:
            return False
        if status == "error":
            raise ChildFailed(f"the {role} process failed:\n{payload}")
        self.reports[role].append(payload)
        return True


# -- phase results ---------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Distribution:
    values: list[float]  # sorted, milliseconds

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Distribution:
        return cls(sorted(s * 1000 for s in seconds))

    def p(self, q: float) -> float:
        return percentile(self.values, q)

    @property
    def max(self) -> float:
        return self.values[-1] if self.values else math.nan


@dataclass
class Cpu:
    cores: dict[str, float]
    machine: float

    def line(self) -> str:
        parts = ", ".join(f"{name} {value:.2f}" for name, value in self.cores.items())
        rest = self.machine - sum(self.cores.values())
        return (
            f"CPU in the window, cores: {parts}; anything else {max(rest, 0.0):.2f}; "
            f"whole machine {self.machine:.2f} of {os.cpu_count()}"
        )


@dataclass
class LatencyResult:
    rate: float
    achieved: float
    appended: int  # warm-up included
    measured: int
    delivered: int  # of the measured
    missing: int  # of all appended
    unexpected: int  # applied but never appended
    end_to_end: Distribution
    append_late: Distribution  # append() return - due time
    to_ack: Distribution  # append return -> Kafka ack (relay)
    ack_to_commit: Distribution  # Kafka ack -> consumer commit
    relay_batch: float
    consumer_batch: float
    duplicates: int
    cpu: Cpu | None
    checks: list[str]
    sessions: tuple[int, int] = (0, 0)  # connections opened to the producer, consumer database
    backlog: tuple[int, int] = (0, 0)  # appended - applied at the window's start and end

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected and not self.checks


@dataclass
class ThroughputResult:
    writers: int
    processes: int
    seconds: float
    appender: float
    relay: float
    consumer: float
    backlog_start: int
    backlog_end: int
    relay_backlog_start: int  # appended, not yet acknowledged by Kafka
    relay_backlog_end: int
    appended_in_window: int
    drain: dict[str, float]  # stage -> events/s while draining the backlog left at the end
    drain_backlog: dict[str, int]
    missing: int
    unexpected: int
    cpu: Cpu | None
    checks: list[str]
    sessions: tuple[int, int] = (0, 0)

    @property
    def bounded(self) -> bool:
        return self.backlog_end - self.backlog_start <= BOUNDED_GROWTH * max(self.appended_in_window, 1)

    @property
    def sustained(self) -> float:
        return min(self.appender, self.relay, self.consumer)

    @property
    def limiter(self) -> str:
        if self.bounded and min(self.relay, self.consumer) >= KEPT_UP * self.appender:
            return "appender (relay and consumer kept up; the backlog stayed bounded)"
        # Which queue grew: the outbox (appended, not yet published) or the topic (published, not yet applied)?
        outbox_growth = self.relay_backlog_end - self.relay_backlog_start
        topic_growth = (self.backlog_end - self.relay_backlog_end) - (self.backlog_start - self.relay_backlog_start)
        if outbox_growth >= topic_growth:
            return f"relay (the outbox backlog grew by {outbox_growth:,} events in the window)"
        return f"consumer (the topic backlog grew by {topic_growth:,} events in the window)"


# -- phases ----------------------------------------------------------------


@dataclass
class Servers:
    admin_url: str
    consumer_admin_url: str
    bootstrap: str
    postgres_dirs: list[Path] = field(default_factory=list)  # local servers only, for CPU accounting
    kafka_dir: Path | None = None














async def _prepare_databases(producer_url: str, consumer_url: str) -> None:
    from events.engine import create_engine
    from events.migrations import upgrade_async

    await upgrade_async(producer_url, "composer")
    await upgrade_async(consumer_url, "backend")
    engine = create_engine(consumer_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(applied_table.metadata.create_all)
    finally:
        await engine.dispose()


def prepare_phase(servers: Servers, name: str, profile_dir: str | None) -> PhaseSpec:
    """Fresh producer and consumer databases, a fresh topic."""
    from events.kafka import ensure_topics

    producer_url = fresh_database(servers.admin_url, f"bench_pipeline_{name}_producer")
    consumer_url = fresh_database(servers.consumer_admin_url, f"bench_pipeline_{name}_consumer")
    asyncio.run(_prepare_databases(producer_url, consumer_url))
    topic = f"bench.pipeline.{name}.{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(servers.bootstrap, [topic], partitions=PARTITIONS))
    checkpoint(servers.admin_url)
    if servers.consumer_admin_url != servers.admin_url:
        checkpoint(servers.consumer_admin_url)
    spec = PhaseSpec(name, producer_url, consumer_url, topic, servers.bootstrap, profile_dir)
    if profile_dir and servers.postgres_dirs:
        reset_statements(servers, spec)
    return spec


async def warm_broker(bootstrap: str) -> None:
    """Join a consumer group once, so that the broker creates its offsets topic
    now rather than during the first phase."""
    import logging

    from events.kafka import KafkaTransport, ensure_topics

    topic = f"bench.pipeline.warmup.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=1)
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "coordinator not available" while the offsets topic is made
    try:
        subscriber = KafkaTransport(bootstrap).subscriber([topic], "bench-warmup")
        await subscriber.start()
        await subscriber.stop()
    finally:
        quiet.setLevel(level)


async def _count(url: str, query: str) -> int:
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


STATEMENTS_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}


async def _statements(admin_url: str, databases: list[str], reset: bool) -> list[Any]:
    conn = await asyncpg.connect(libpq_dsn(admin_url))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
            return []
        return await conn.fetch(
            """
            SELECT d.datname, s.calls, s.total_exec_time, s.rows, s.wal_bytes, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) AS query
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = ANY($1::text[])
            ORDER BY s.total_exec_time DESC LIMIT 30
            """,
            databases,
        )
    finally:
        await conn.close()


def _database_names(spec: PhaseSpec) -> list[str]:
    return [sa.make_url(spec.producer_url).database, sa.make_url(spec.consumer_url).database]


def reset_statements(servers: Servers, spec: PhaseSpec) -> None:
    for admin_url in {servers.admin_url, servers.consumer_admin_url}:
        asyncio.run(_statements(admin_url, _database_names(spec), reset=True))


def dump_statements(servers: Servers, spec: PhaseSpec) -> None:
    """--profile: the statements that took the server's time in this phase, to DIR/<phase>-statements.txt."""
    lines = [f"{'database':<36} {'calls':>8} {'total ms':>10} {'ms/call':>8} {'rows':>8} {'WAL kB':>8}  query"]
    for admin_url in {servers.admin_url, servers.consumer_admin_url}:
        for row in asyncio.run(_statements(admin_url, _database_names(spec), reset=False)):
            lines.append(
                f"{row['datname']:<36} {row['calls']:>8} {row['total_exec_time']:>10.0f} "
                f"{row['total_exec_time'] / max(row['calls'], 1):>8.3f} {row['rows']:>8} "
                f"{int(row['wal_bytes']) // 1024:>8}  {row['query']}"
            )
    (Path(spec.profile_dir or ".") / f"{spec.name}-statements.txt").write_text("\n".join(lines) + "\n")


def sessions_opened(spec: PhaseSpec) -> tuple[int, int]:
    """Connections made to the producer and the consumer database during the phase (pg_stat_database)."""
    query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    return asyncio.run(_count(spec.producer_url, query)), asyncio.run(_count(spec.consumer_url, query))


def database_checks(spec: PhaseSpec, applied: int) -> list[str]:
    """What the databases say after the phase, next to what the processes reported."""
    problems = []
    rows = asyncio.run(_count(spec.consumer_url, "SELECT count(*) FROM bench_applied"))
    if rows != applied:
        problems.append(f"consumer table holds {rows} rows, the consumer stamped {applied}")
    unpublished = asyncio.run(_count(spec.producer_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    if unpublished:
        problems.append(f"{unpublished} outbox rows still unpublished")
    return problems


def cpu_groups(pipeline: Pipeline, servers: Servers) -> dict[str, Callable[[], list[int]]]:
    groups: dict[str, Callable[[], list[int]]] = {
        "appender": lambda: [p.pid for p in pipeline.appenders if p.pid is not None],
        "relay": lambda: [pipeline.relay.pid],
        "consumer": lambda: [pipeline.consumer.pid],
    }
    if servers.postgres_dirs:
        groups["postgres"] = lambda: [pid for d in servers.postgres_dirs for pid in postgres_pids(d)]
    if servers.kafka_dir is not None:
        kafka_dir = servers.kafka_dir
        groups["kafka"] = lambda: kafka_pids(kafka_dir)
    return groups


def run_latency_phase(ctx: Any, servers: Servers, rate: float, args: argparse.Namespace) -> LatencyResult:
    spec = prepare_phase(servers, f"r{rate:g}".replace(".", "_"), args.profile)
    pipeline = Pipeline(ctx, spec)
    try:
        pipeline.start()
        pipeline.start_appenders(
            steady_appender_child, [(rate, args.warmup, args.seconds, args.streams, args.appender_connections)]
        )
        start_at = pipeline.release_appenders()
        window = (start_at + args.warmup, start_at + args.warmup + args.seconds)
        sampler = CpuSampler(cpu_groups(pipeline, servers))
        sampler.sample_at(*window)
        (appender,) = pipeline.wait_appenders(timeout=args.warmup + args.seconds + 120)
        appended = len(appender.ids) // 16
        drained = pipeline.drain(appended)
        relay, consumer = pipeline.finish()
    except BaseException:
        pipeline.kill()
        raise
    checks = [] if drained else [f"the consumer had not caught up {DRAIN_TIMEOUT_S:g} s after the last append"]
    checks += database_checks(spec, len(consumer.ids) // 16)
    cpu = sampler.cores()
    result = latency_result(rate, appender, relay, consumer, Cpu(*cpu) if cpu else None, checks)
    result.sessions = sessions_opened(spec)
    result.backlog = backlog_at(appender.time_list(), consumer.time_list(), window)
    if args.profile and servers.postgres_dirs:
        dump_statements(servers, spec)
    return result


def backlog_at(appended: list[float], applied: list[float], moments: Sequence[float]) -> tuple[int, ...]:
    """Events appended but not yet applied at each moment."""
    a, c = sorted(appended), sorted(applied)
    return tuple(bisect_right(a, t) - bisect_right(c, t) for t in moments)


def latency_result(
    rate: float, appender: StageLog, relay: StageLog, consumer: StageLog, cpu: Cpu | None, checks: list[str]
) -> LatencyResult:
    warm = appender.extra["warm"]
    appended_at = appender.stamps()
    order = [appender.ids[i * 16 : i * 16 + 16] for i in range(len(appender.ids) // 16)]
    returned = appender.time_list()
    late = array("d")
    late.frombytes(appender.extra["late"])
    acked_at = relay.stamps()
    committed_at = consumer.stamps()

    measured = order[warm:]
    delivered = [event_id for event_id in measured if event_id in committed_at]
    first_due = appender.extra["t0_wall"] + warm / rate
    span = max(returned[warm:]) - first_due if measured else math.nan
    relay_calls = relay.extra["publish_calls"] or 1
    return LatencyResult(
        rate=rate,
        achieved=len(measured) / span if span and span > 0 else math.nan,
        appended=len(order),
        measured=len(measured),
        delivered=len(delivered),
        missing=len(set(order) - committed_at.keys()),
        unexpected=len(committed_at.keys() - set(order)),
        end_to_end=Distribution.of([committed_at[e] - appended_at[e] for e in delivered]),
        append_late=Distribution.of(late[warm:]),
        to_ack=Distribution.of([acked_at[e] - appended_at[e] for e in delivered if e in acked_at]),
        ack_to_commit=Distribution.of([committed_at[e] - acked_at[e] for e in delivered if e in acked_at]),
        relay_batch=len(acked_at) / relay_calls,
        consumer_batch=len(committed_at) / max(consumer.extra["transactions"], 1),
        duplicates=consumer.extra["duplicates"],
        cpu=cpu,
        checks=checks,
    )


def split(total: int, parts: int) -> list[int]:
    share, rest = divmod(total, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


def run_throughput_phase(ctx: Any, servers: Servers, args: argparse.Namespace) -> ThroughputResult:
    spec = prepare_phase(servers, "max", args.profile)
    pipeline = Pipeline(ctx, spec)
    shares = [s for s in split(args.writers, args.appender_processes) if s]
    try:
        pipeline.start()
        duration = args.throughput_warmup + args.throughput_seconds
        pipeline.start_appenders(flat_appender_child, [(share, duration) for share in shares])
        start_at = pipeline.release_appenders()
        window = (start_at + args.throughput_warmup, start_at + duration)
        sampler = CpuSampler(cpu_groups(pipeline, servers))
        sampler.sample_at(*window)
        appenders = pipeline.wait_appenders(timeout=args.throughput_warmup + args.throughput_seconds + 120)
        appended = sum(len(a.ids) // 16 for a in appenders)
        drained = pipeline.drain(appended)
        relay, consumer = pipeline.finish()
    except BaseException:
        pipeline.kill()
        raise
    checks = [] if drained else [f"the consumer had not caught up {DRAIN_TIMEOUT_S:g} s after the appenders stopped"]
    checks += database_checks(spec, len(consumer.ids) // 16)
    cpu = sampler.cores()
    result = throughput_result(args, len(shares), window, appenders, relay, consumer, Cpu(*cpu) if cpu else None, checks)
    result.sessions = sessions_opened(spec)
    if args.profile and servers.postgres_dirs:
        dump_statements(servers, spec)
    return result


def throughput_result(
    args: argparse.Namespace,
    processes: int,
    window: tuple[float, float],
    appenders: list[StageLog],
    relay: StageLog,
    consumer: StageLog,
    cpu: Cpu | None,
    checks: list[str],
) -> ThroughputResult:
    w0, w1 = window
    seconds = w1 - w0
    appended_ids: set[bytes] = set()
    for log in appenders:
        appended_ids |= log.stamps().keys()
    consumed_ids = consumer.stamps().keys()
    a = sorted(t for log in appenders for t in log.time_list())
    r = sorted(relay.time_list())
    c = sorted(consumer.time_list())

    def upto(times: list[float], moment: float) -> int:
        return bisect_right(times, moment)

    def in_window(times: list[float]) -> int:
        return upto(times, w1) - upto(times, w0)

    drain: dict[str, float] = {}
    drain_backlog: dict[str, int] = {}
    last_append = a[-1] if a else w1
    for stage, times in (("relay", r), ("consumer", c)):
        left = len(a) - upto(times, last_append)
        if left >= MIN_DRAIN_BACKLOG and times and times[-1] > last_append:
            drain[stage] = left / (times[-1] - last_append)
            drain_backlog[stage] = left
    return ThroughputResult(
        writers=args.writers,
        processes=processes,
        seconds=seconds,
        appender=in_window(a) / seconds,
        relay=in_window(r) / seconds,
        consumer=in_window(c) / seconds,
        backlog_start=upto(a, w0) - upto(c, w0),
        backlog_end=upto(a, w1) - upto(c, w1),
        relay_backlog_start=upto(a, w0) - upto(r, w0),
        relay_backlog_end=upto(a, w1) - upto(r, w1),
        appended_in_window=in_window(a),
        drain=drain,
        drain_backlog=drain_backlog,
        missing=len(appended_ids - consumed_ids),
        unexpected=len(consumed_ids - appended_ids),
        cpu=cpu,
        checks=checks,
    )


# -- report ----------------------------------------------------------------


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def print_latency_table(results: list[LatencyResult]) -> None:
    print("\nend-to-end latency, append() returned -> consumer transaction committed (ms; measured window only)")
    header = (
        f"{'rate/s':>7}  {'achieved/s':>10}  {'measured':>8}  {'delivered':>9}  {'missing':>7}  "
        f"{'p50':>7}  {'p95':>7}  {'p99':>7}  {'max':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        d = r.end_to_end
        print(
            f"{r.rate:>7,.0f}  {r.achieved:>10,.1f}  {r.measured:>8,}  {r.delivered:>9,}  {r.missing:>7,}  "
            f"{ms(d.p(50)):>7}  {ms(d.p(95)):>7}  {ms(d.p(99)):>7}  {ms(d.max):>7}"
        )

    print("\nwhere the time goes (ms, p50 / p99 / max)")
    header = f"{'rate/s':>7}  {'append() behind schedule':>24}  {'append -> Kafka ack':>22}  {'Kafka ack -> consumer commit':>28}"
    print(header)
    print("-" * len(header))
    for r in results:
        cells = [
            f"{ms(x.p(50))} / {ms(x.p(99))} / {ms(x.max)}" for x in (r.append_late, r.to_ack, r.ack_to_commit)
        ]
        print(f"{r.rate:>7,.0f}  {cells[0]:>24}  {cells[1]:>22}  {cells[2]:>28}")
    print("\nper phase")
    for r in results:
        print(
            f"  {r.rate:,.0f}/s: appended {r.appended:,} (warm-up included), applied {r.appended - r.missing:,}; "
            f"relay {r.relay_batch:.1f} events per publish, consumer {r.consumer_batch:.1f} events per transaction; "
            f"{r.duplicates} redelivered duplicates; connections opened: producer db {r.sessions[0]}, "
            f"consumer db {r.sessions[1]}"
        )
        print(f"    backlog (appended - applied): {r.backlog[0]:,} at window start, {r.backlog[1]:,} at its end")
        if r.cpu:
            print(f"    {r.cpu.line()}")
        if r.missing or r.unexpected:
            print(f"    ERROR: {r.missing:,} appended events never applied, {r.unexpected:,} applied events never appended")
        for check in r.checks:
            print(f"    ERROR: {check}")


def print_throughput(t: ThroughputResult) -> None:
    print(
        f"\nmaximum throughput: {t.writers} appending tasks in {t.processes} process(es), flat out, "
        f"single-event appends; counted over a {t.seconds:g} s window"
    )
    print(f"  appender  {t.appender:>8,.0f} events/s  (appends returned)")
    print(f"  relay     {t.relay:>8,.0f} events/s  (acknowledged by Kafka)")
    print(f"  consumer  {t.consumer:>8,.0f} events/s  (committed by the consumer)")
    growth = t.backlog_end - t.backlog_start
    print(
        f"  backlog (appended - applied): {t.backlog_start:,} at window start, {t.backlog_end:,} at its end "
        f"({growth:+,}; {'bounded' if t.bounded else 'GROWING'}); not yet published: {t.relay_backlog_start:,} -> "
        f"{t.relay_backlog_end:,}"
    )
    for stage, rate in t.drain.items():
        print(f"  after the appenders stopped, the {stage} drained {t.drain_backlog[stage]:,} events at {rate:,.0f} events/s")
    print(f"  connections opened: producer db {t.sessions[0]}, consumer db {t.sessions[1]}")
    if t.cpu:
        print(f"  {t.cpu.line()}")
    if t.missing or t.unexpected:
        print(f"  ERROR: {t.missing:,} appended events never applied, {t.unexpected:,} applied events never appended")
    for check in t.checks:
        print(f"  ERROR: {check}")
    print(
        f"\nmax sustained: {t.sustained:,.0f} events/s (appender {t.appender:,.0f}/s, relay {t.relay:,.0f}/s, "
        f"consumer {t.consumer:,.0f}/s); limited by the {t.limiter}"
    )


def print_target(results: list[LatencyResult]) -> None:
    label = f"target: p99 < {TARGET_P99_MS:g} ms at {TARGET_RATE:,} events/s"
    at_target = [r for r in results if r.rate == TARGET_RATE]
    if not at_target:
        print(f"{label} — n/a (not measured: add {TARGET_RATE} to --rates)")
        return
    r = at_target[0]
    p99 = r.end_to_end.p(99)
    reasons = []
    if not p99 < TARGET_P99_MS:
        reasons.append(f"p99 {ms(p99)} ms")
    if r.achieved < KEPT_UP * r.rate:
        reasons.append(f"the appender reached only {r.achieved:,.0f} events/s")
    if not r.ok:
        reasons.append("events lost or checks failed")
    if not reasons:
        print(f"{label} — PASS (p99 {ms(p99)} ms)")
    else:
        details = reasons if reasons[0].startswith("p99") else [f"p99 {ms(p99)} ms", *reasons]
        print(f"{label} — MISS ({'; '.join(details)})")


# ==========================================================================
# Main
# ==========================================================================


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per rate (default 30)")
    parser.add_argument("--rates", default="200,1000", help="steady append rates, events/s, comma-separated (default 200,1000)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up at the same rate before each window (default 3)")
    parser.add_argument("--streams", type=int, default=100, help="streams the steady appender cycles through (default 100)")
    parser.add_argument(
        "--appender-connections",
        type=int,
        default=20,
        help="the steady appender's connection pool, fixed size (default 20; see bench/README.md)",
    )
    parser.add_argument("--writers", type=int, default=16, help="appending tasks in the throughput phase (default 16)")
    parser.add_argument("--appender-processes", type=int, default=2, help="processes they run in (default 2)")
    parser.add_argument(
        "--throughput-seconds", type=float, default=15.0, help="throughput window; 0 skips the phase (default 15)"
    )
    parser.add_argument("--throughput-warmup", type=float, default=3.0, help="warm-up before it (default 3)")
    parser.add_argument(
        "--separate-consumer-server",
        action="store_true",
        help="put the consumer database on a second local PostgreSQL server (default: both databases on one server)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("BENCH_POSTGRES_URL"),
        help="an existing PostgreSQL server (bench_pipeline_* databases are dropped and created); "
        "default: $BENCH_POSTGRES_URL, else start a local one",
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("BENCH_KAFKA_BOOTSTRAP"), help="an existing Kafka broker; default: start one"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run relay and consumer under cProfile (CPU time), writing DIR/<phase>-<role>.prof, and "
        "record pg_stat_statements per phase in DIR/<phase>-statements.txt (local servers only)",
    )
    args = parser.parse_args()
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates takes numbers, e.g. 200,1000")
    if any(r <= 0 for r in args.rates) or args.seconds <= 0 or args.streams < 1:
        parser.error("rates, --seconds and --streams must be positive")
    if args.separate_consumer_server and args.url:
        parser.error("--separate-consumer-server starts local servers; it does not combine with --url")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    return args


def describe(servers: Servers, kafka_version: str, separate: bool) -> None:
    v = importlib.metadata.version
    print(f"postgres: {server_description(servers.admin_url)}")
    print(
        "          producer and consumer databases on "
        + ("two separate servers (same disk)" if separate else "one server")
    )
    print(f"kafka:    {kafka_version}, one KRaft broker at {servers.bootstrap}; a fresh {PARTITIONS}-partition topic per phase")
    print(
        f"clients:  aiokafka {v('aiokafka')}, asyncpg {v('asyncpg')}, SQLAlchemy {v('sqlalchemy')}, "
        f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs"
    )
    print(
        f"pipeline: appender, relay (OutboxRelay, poll_interval={RELAY_POLL_INTERVAL:g}, NOTIFY wake-up) and consumer "
        "(ConsumerRunner, one row inserted per event) in 3 spawned processes"
    )


def main() -> None:
    args = parse_args()
    ctx = mp.get_context("spawn")
    started: list[Any] = []
    try:
        if args.url:
            admin_url = database_url(args.url, sa.make_url(args.url).database or "postgres")
            consumer_admin_url = admin_url
        else:
            settings = STATEMENTS_SETTINGS if args.profile else None
            server = LocalPostgres(settings=settings).start()
            started.append(server)
            admin_url = consumer_admin_url = server.url("postgres")
            if args.separate_consumer_server:
                second = LocalPostgres(settings=settings).start()
                started.append(second)
                consumer_admin_url = second.url("postgres")
        if args.bootstrap:
            bootstrap, kafka_version = args.bootstrap, "Kafka (given)"
        else:
            from tests.servers.kafka import KafkaServer

            kafka = KafkaServer()
            started.append(kafka)
            kafka.start()
            bootstrap, kafka_version = kafka.bootstrap, f"Kafka {kafka.version}"
        servers = Servers(
            admin_url,
            consumer_admin_url,
            bootstrap,
            postgres_dirs=[server.data_dir for server in started if isinstance(server, LocalPostgres)],
            kafka_dir=None if args.bootstrap else kafka.base_dir,
        )
        describe(servers, kafka_version, args.separate_consumer_server)
        asyncio.run(warm_broker(bootstrap))

        results = []
        for rate in args.rates:
            print(f"\n[{rate:,.0f} events/s] {args.warmup:g} s warm-up + {args.seconds:g} s measured ...", flush=True)
            result = run_latency_phase(ctx, servers, rate, args)
            d = result.end_to_end
            print(
                f"[{rate:,.0f} events/s] done: p50 {ms(d.p(50))} ms, p99 {ms(d.p(99))} ms, "
                f"{result.delivered:,}/{result.measured:,} delivered",
                flush=True,
            )
            results.append(result)
        throughput = None
        if args.throughput_seconds > 0:
            print(
                f"\n[max] {args.writers} writers in {args.appender_processes} processes, "
                f"{args.throughput_warmup:g} s warm-up + {args.throughput_seconds:g} s ...",
                flush=True,
            )
            throughput = run_throughput_phase(ctx, servers, args)

        print_latency_table(results)
        if throughput is not None:
            print_throughput(throughput)
        print()
        print_target(results)
    finally:
        for server in reversed(started):
            try:
                server.close() if hasattr(server, "close") else server.stop()
            except Exception as error:  # noqa: BLE001 - keep stopping the others
                print(f"could not stop {type(server).__name__}: {error}", file=sys.stderr)


if __name__ == "__main__":
    main()
