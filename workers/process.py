"""The worker process: claim jobs, run them, report; never lose a finished result.

Each slot long-polls the composer for a job it can run. While a job runs, a
watcher sends its log lines every second and every few seconds asks whether
it was canceled, which also renews its lease; a canceled (or no longer ours)
job is stopped. A finished job's result is kept and offered again with backoff
until the composer accepts it or says the job is no longer ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from workers.client import Assignment, ComposerClient, ComposerUnreachable, StaleJob
from workers.workspace import Workspace

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
# A canceled build must stop within seconds, so the watcher asks this often at
# most (each ask also renews the lease) ...
WATCH_INTERVAL = 2.0
# ... and at least three times per lease, so one slow answer never loses it.
RENEWALS_PER_LEASE = 3
MIN_WATCH_INTERVAL = 0.2


class JobFailure(Exception):
    """The job could not be done; ``reason`` is what a user sees."""

    def __init__(self, reason: str, details: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class Reporter:
    """Progress and log lines of one job, sent to the composer as they come."""

    def __init__(self, client: ComposerClient, token: str) -> None:
        self._client = client
        self._token = token
        self._lines: list[str] = []
        self._progress: dict[str, Any] | None = None

    def log(self, line: str) -> None:
        self._lines.append(line)

    def progress(self, stage: str, done: int, total: int) -> None:
        """Note the stage reached; sent with the next flush (at most a second later)."""
        self._progress = {"stage": stage, "done": done, "total": total}

    async def stage(self, name: str, done: int, total: int) -> None:
        self.progress(name, done, total)
        await self.flush()

    async def flush(self) -> None:
        lines, self._lines = self._lines, []
        progress, self._progress = self._progress, None
        if not lines and progress is None:
            return
        update: dict[str, Any] = {"log": lines}
        if progress is not None:
            update["progress"] = progress
        try:
            await self._client.report(self._token, **update)
        except ComposerUnreachable:
            self._lines = lines + self._lines  # keep them for the next flush
            self._progress = self._progress or progress


JobRunner = Callable[[Assignment, Reporter, asyncio.Event], Awaitable[dict[str, Any]]]


class Worker:
    def __init__(
        self, client: ComposerClient, runners: dict[str, JobRunner], *, name: str, arch: str = "x86_64",
        slots: int = 1, poll_timeout: float = 30.0, watch_interval: float = WATCH_INTERVAL, log_interval: float = 1.0,
        workspace: Workspace | None = None,
    ) -> None:  # fmt: skip
        self.client = client
        self.workspace = workspace
        self.runners = runners
        self.name = name
        self.arch = arch
        self.slots = slots
        self.poll_timeout = poll_timeout
        self.watch_interval = watch_interval
        self.log_interval = log_interval
        self.worker_id: str | None = None
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        """After `run`: close the connection to the composer and give up the workspace."""
        await self.client.close()
        if self.workspace is not None:
            self.workspace.release()

    async def run(self) -> None:
        self.worker_id = await self._persist(lambda: self.client.register(self.name, self.arch))
        if self.worker_id is None:
            return
        log.info("worker %s registered as %s", self.name, self.worker_id, extra={"worker_id": self.worker_id})
        await asyncio.gather(*(self._slot() for _ in range(self.slots)))

    async def _slot(self) -> None:
        assert self.worker_id is not None
        types = sorted(self.runners)
        backoff = 1.0
        while not self._stop.is_set():
            try:
                job = await self._claim_unless_stopped(types)
                backoff = 1.0
            except ComposerUnreachable as error:
                log.warning("composer unreachable, retrying in %.0fs: %s", backoff, error)
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if job is not None:
                await self.work(job)

    async def _claim_unless_stopped(self, types: list[str]) -> Assignment | None:
        """Long-poll for a job; a stop ends the wait at once instead of after the poll.

        The request is abandoned, so in a rare race the composer has just
        handed this worker a job it never hears of: that job's lease lapses
        and the composer requeues it (docs/workers.md), which loses nothing.
        Waiting out every poll would hold each stop up to ``poll_timeout``.
        """
        assert self.worker_id is not None
        claiming = asyncio.ensure_future(self.client.claim(self.worker_id, types, self.poll_timeout))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({claiming, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            claiming.cancel()
            raise
        finally:
            stopping.cancel()
        if not claiming.done():
            claiming.cancel()
            await asyncio.wait({claiming})  # its CancelledError stays in the task; ours would propagate
            return None
        return claiming.result()

    async def work(self, job: Assignment) -> None:
        ids = {"compose_id": job.compose_id, "job_id": job.job_id, "worker_id": self.worker_id}
        log.info("running %s job %s", job.type, job.job_id, extra=ids)
        reporter = Reporter(self.client, job.token)
        cancel = asyncio.Event()
        watcher = asyncio.create_task(self._watch(job, cancel, reporter))
        try:
            outcome: dict[str, Any] = {"result": await self.runners[job.type](job, reporter, cancel)}
        except JobFailure as failure:
            outcome = {"error": {"reason": failure.reason, "details": failure.details}}
        except StaleJob:  # an upload or report was refused: the job was canceled or given to another worker
            cancel.set()
            outcome = {}
        except asyncio.CancelledError:
            if not cancel.is_set():
                raise
            outcome = {}
        except Exception as error:  # noqa: BLE001 - any crash of a job is reported as its failure
            log.exception("%s job %s crashed", job.type, job.job_id, extra=ids)
            outcome = {"error": {"reason": f"{job.type} failed: {error}", "details": {"exception": type(error).__name__}}}
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if cancel.is_set():
            log.info("%s job %s stopped: canceled or no longer ours", job.type, job.job_id, extra=ids)
            return
        await reporter.flush()
        delivered = await self._persist(lambda: self.client.report(job.token, **outcome), give_up_on_stale=True)
        log.info("%s job %s %s", job.type, job.job_id, "reported" if delivered is not False else "was stale", extra=ids)

    async def _watch(self, job: Assignment, cancel: asyncio.Event, reporter: Reporter) -> None:
        """Pass on log lines, renew the lease and notice cancellation."""
        loop = asyncio.get_running_loop()
        every = self._watch_interval(job)
        next_flush, next_check = loop.time() + self.log_interval, loop.time() + every
        while True:
            await asyncio.sleep(max(0.0, min(next_flush, next_check) - loop.time()))
            try:
                if loop.time() >= next_flush:
                    next_flush = loop.time() + self.log_interval
                    # A canceled job's log lines are refused (409) too: that is news as good as the check's.
                    await reporter.flush()
                if loop.time() >= next_check:
                    next_check = loop.time() + every
                    if await self.client.canceled(job.token):
                        cancel.set()
                        return
            except StaleJob:
                cancel.set()
                return
            except ComposerUnreachable as error:
                log.warning("cannot renew the lease yet: %s", error)

    def _watch_interval(self, job: Assignment) -> float:
        """`watch_interval`, shortened to fit the composer's lease (read from the claim)."""
        try:
            expires = datetime.fromisoformat(job.lease_expires_at)
        except ValueError:
            return self.watch_interval
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        lease = (expires - datetime.now(UTC)).total_seconds()
        # A clock far off the composer's can make `lease` nonsense: never ask more often than the floor.
        return max(MIN_WATCH_INTERVAL, min(self.watch_interval, lease / RENEWALS_PER_LEASE))

    async def _persist(self, call: Callable[[], Awaitable[Any]], give_up_on_stale: bool = False) -> Any:
        """Try ``call`` until it goes through; None if stopped first, False if the job went stale."""
        backoff = 1.0
        while True:
            try:
                return await call()
            except StaleJob:
                if give_up_on_stale:
                    return False
                raise
            except ComposerUnreachable as error:
                log.warning("composer unreachable, retrying in %.0fs: %s", backoff, error)
            if self._stop.is_set() and not give_up_on_stale:
                return None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: see events/wakeup.py
                await self._stop.wait()
