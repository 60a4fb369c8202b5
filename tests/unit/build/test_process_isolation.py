"""A command runs in its own PID and mount namespace: whatever it started and mounted goes when it is stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.processes import mounts_under, running, until_running
from workers.build import process

pytestmark = pytest.mark.skipif(
    not process.namespaces_available(),
    reason="creating PID and mount namespaces needs CAP_SYS_ADMIN (root); without it commands only get a session",
)


def marker() -> str:
    """A sleep duration no other test uses, to find this test's processes by command line."""
    return f"{random.randint(1000, 9999)}.{random.randint(1, 999)}"


async def test_cancelling_kills_a_child_that_left_the_commands_session() -> None:
    escaped, stayed = marker(), marker()
    cancel = asyncio.Event()
    command = asyncio.create_task(
        process.run(["sh", "-c", f"setsid sleep {escaped} & sleep {stayed} & wait"], timeout=120, cancel=cancel)
    )
    await until_running(["sleep", escaped])
    await until_running(["sleep", stayed])
    cancel.set()
    with pytest.raises(process.Cancelled):
        await command
    # The namespace is torn down before run() returns: no waiting needed.
    assert running(["sleep", escaped]) == [] and running(["sleep", stayed]) == []


async def test_a_command_that_ignores_sigterm_is_stopped_at_once() -> None:
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, cancel.set)
    started = time.monotonic()
    with pytest.raises(process.Cancelled):
        await process.run(["sh", "-c", f"trap '' TERM; sleep {marker()} & wait"], timeout=120, cancel=cancel)
    assert time.monotonic() - started < process.KILL_GRACE


async def test_what_a_command_mounts_is_invisible_to_the_worker_and_gone_after_a_cancel(tmp_path: Path) -> None:
    target, pause = tmp_path / "tree/proc", marker()
    target.mkdir(parents=True)
    cancel = asyncio.Event()
    command = asyncio.create_task(
        process.run(["sh", "-c", f"mount -t tmpfs none {target} && sleep {pause}"], timeout=120, cancel=cancel)
    )
    [sleeper] = await until_running(["sleep", pause])
    assert mounts_under(tmp_path, sleeper) == [str(target)]
    assert mounts_under(tmp_path) == []
    cancel.set()
    with pytest.raises(process.Cancelled):
        await command
    assert running(["sleep", pause]) == [] and mounts_under(tmp_path) == []


async def test_a_killed_worker_takes_its_commands_and_their_children_along() -> None:
    escaped, stayed = marker(), marker()
    script = (
        "import asyncio\n"
        "from workers.build import process\n"
        f"asyncio.run(process.run(['sh', '-c', 'setsid sleep {escaped} & sleep {stayed} & wait'], timeout=120))\n"
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=Path(__file__).parents[3], start_new_session=True
    )
    try:
        await until_running(["sleep", escaped])
        await until_running(["sleep", stayed])
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)
        deadline = time.monotonic() + 5
        while running(["sleep", escaped]) or running(["sleep", stayed]):
            assert time.monotonic() < deadline, "the commands outlived the worker"
            await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
