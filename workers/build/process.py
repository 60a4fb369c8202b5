"""Run one external command for a stage: argument vector, timeout, cancellation, streamed log.

Every command starts as the first process of its own PID and mount namespace
(unshare(1)) in its own session, with a parent-death signal (setpriv(1)):

- Killing that first process kills everything the command started, even
  children that left its session: the kernel kills the rest of a PID namespace
  when its first process dies, and reaps them before it (pid_namespaces(7)).
  So once `run` returns after a cancel or a timeout, nothing of the command
  still writes into the tree that is about to be deleted.
- What the command mounts (mmdebstrap mounts /proc, /sys and /dev into the
  tree) exists only in its mount namespace and goes with it: no mount is left
  for a later `rmtree` to walk into the host's /sys.
- If the worker itself dies (SIGKILL, the OOM killer), the parent-death signal
  kills the command, and with it its namespace, instead of leaving it running.

Where namespaces are not allowed (an unprivileged container: then mmdebstrap
cannot mount either), commands run in their own session only: a cancel sends
SIGTERM and then SIGKILL to the process group, and a dying worker takes only
the command itself along, not what it started.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LogCallback = Callable[[str], None]
CancelEvent = asyncio.Event | threading.Event

TAIL_LINES = 40
KILL_GRACE = 5.0
# How long the namespace may take to die once its first process was killed.
TEARDOWN_TIMEOUT = 30.0

# setpriv execs unshare, which keeps the parent-death signal; unshare's forked
# child, the command, gets SIGKILL when unshare dies (--kill-child).
DEATH_SIGNAL = ["setpriv", "--pdeathsig", "KILL", "--"]
NAMESPACES = ["unshare", "--pid", "--mount", "--propagation", "private", "--kill-child", "--"]

log = logging.getLogger(__name__)


class CommandFailed(Exception):
    """A command exited non-zero (or timed out); `tail` is the end of its output."""

    def __init__(
        self, argv: Sequence[str], returncode: int | None, tail: str, reason: str = ""
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.tail = tail
        self.reason = reason or f"exited with status {returncode}"
        super().__init__(f"{argv[0]} {self.reason}")


class Cancelled(Exception):
    """The build was cancelled while a command was running."""


async def wait_for_cancel(cancel: CancelEvent | None) -> None:
    """Return once `cancel` is set; never, if there is none."""
    if cancel is None:
        await asyncio.Event().wait()
    elif isinstance(cancel, asyncio.Event):
        await cancel.wait()
    else:
        # A threading.Event cannot be awaited: poll it, cheaply enough for a build.
        while not cancel.is_set():
            await asyncio.sleep(0.2)


def is_cancelled(cancel: CancelEvent | None) -> bool:
    return cancel is not None and cancel.is_set()


async def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    cancel: CancelEvent | None = None,
    on_log: LogCallback | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
) -> str:
    """Run `argv` to completion; return its output if `capture`, else "".

    stdout and stderr are merged and streamed line by line to `on_log`
    (unless captured: captured output is data, not log).
    """
    args = [os.fspath(a) for a in argv]
    if is_cancelled(cancel):
        raise Cancelled()
    # The wrappers would report a missing program as a failed command: say it the usual way.
    if shutil.which(args[0], path=(env if env is not None else os.environ).get("PATH")) is None:
        raise FileNotFoundError(f"no such program: {args[0]!r}")
    isolated = namespaces_available()
    proc = await asyncio.create_subprocess_exec(
        *DEATH_SIGNAL,
        *(NAMESPACES if isolated else []),
        *args,
        stdin=asyncio.subprocess.PIPE
        if stdin is not None
        else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if capture else asyncio.subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    captured: list[bytes] = []

    async def pump() -> None:
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        if capture:
            out, err = await proc.communicate()
            captured.append(out)
            tail.extend(err.decode(errors="replace").splitlines()[-TAIL_LINES:])
            return
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            if on_log is not None:
                on_log(line)
        await proc.wait()

    kill = _kill_namespace if isolated else _kill_group
    work = asyncio.ensure_future(pump())
    cancelled = asyncio.ensure_future(wait_for_cancel(cancel))
    try:
        done, _ = await asyncio.wait(
            {work, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        # The task running us was cancelled (a worker shutting down): the command must not outlive it.
        work.cancel()
        await kill(proc)
        raise
    finally:
        cancelled.cancel()
    if work not in done:
        work.cancel()
        await kill(proc)
        if cancelled in done:
            raise Cancelled()
        raise CommandFailed(
            args, None, "\n".join(tail), f"timed out after {timeout:.0f}s"
        )
    work.result()
    if proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, "\n".join(tail))
    return b"".join(captured).decode(errors="replace")


@functools.cache
def namespaces_available() -> bool:
    """Whether this process may give commands their own PID and mount namespaces (asked once)."""
    try:
        probe = subprocess.run([*NAMESPACES, "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        probe_error = str(error)
    else:
        if probe.returncode == 0:
            return True
        probe_error = probe.stderr.decode(errors="replace").strip()
    log.warning(
        "commands run without their own PID and mount namespaces (%s): a killed command's "
        "children get SIGTERM and SIGKILL by process group instead", probe_error,
    )  # fmt: skip
    return False


async def _kill_namespace(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the namespace's first process; unshare exits once the whole namespace is gone.

    No grace period: a graceful stop would only tidy up mounts and files, and
    the mounts vanish with the namespace while the files are deleted with the
    tree. (The first process of a PID namespace ignores SIGTERM unless it
    handles it, so a graceful stop would mostly wait for nothing.)
    """
    first = _children(proc.pid)
    for pid in first:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if not first:  # not forked yet (or already gone): unshare's death takes the child along
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        await asyncio.wait_for(proc.wait(), TEARDOWN_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            await asyncio.wait_for(proc.wait(), grace)
            break
        except TimeoutError:
            continue
