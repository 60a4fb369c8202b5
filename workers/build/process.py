"""Run one external command for a stage: argument vector, timeout, cancellation, streamed log.

Every command is started in its own session, so cancelling or timing out kills
the whole process group (mmdebstrap's apt and dpkg children, qemu-img helpers)
rather than leaving orphans that keep writing into a tree being deleted.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LogCallback = Callable[[str], None]
CancelEvent = asyncio.Event | threading.Event

TAIL_LINES = 40
KILL_GRACE = 5.0


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
    proc = await asyncio.create_subprocess_exec(
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

    work = asyncio.ensure_future(pump())
    cancelled = asyncio.ensure_future(wait_for_cancel(cancel))
    try:
        done, _ = await asyncio.wait(
            {work, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        cancelled.cancel()
    if work not in done:
        work.cancel()
        await _kill_group(proc)
        if cancelled in done:
            raise Cancelled()
        raise CommandFailed(
            args, None, "\n".join(tail), f"timed out after {timeout:.0f}s"
        )
    work.result()
    if proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, "\n".join(tail))
    return b"".join(captured).decode(errors="replace")


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
