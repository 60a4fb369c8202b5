"""The apt cache's own parts: a root prepared again changes nothing, search order, apt failures, the lock."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aptcache.root import AptRoot, FileLock, default_sources
from aptcache.run import AptFailed, run_apt
from aptcache.search import ranked
from domain.distributions import DISTRIBUTIONS

pytestmark = pytest.mark.unit


def test_a_root_prepared_again_leaves_its_files_untouched_so_apt_keeps_its_package_cache(tmp_path: Path) -> None:
    dist = DISTRIBUTIONS["debian-12"]
    apt = AptRoot(tmp_path, dist, default_sources(dist), "x86_64")
    apt.prepare()
    files = [apt.config, apt.root / "etc/apt/sources.list", apt.root / "var/lib/dpkg/status"]
    for path in files:
        os.utime(path, (1_000_000, 1_000_000))

    apt.prepare()

    assert [path.stat().st_mtime for path in files] == [1_000_000] * 3


def test_names_starting_with_the_search_come_first_then_by_name() -> None:
    found = {"libnet-openssh-perl", "openssh-server", "openssh-client", "python3-openssh"}

    assert ranked(found, "OpenSSH") == ["openssh-client", "openssh-server", "libnet-openssh-perl", "python3-openssh"]


async def test_a_failing_apt_command_says_how_it_ended() -> None:
    with pytest.raises(AptFailed) as failed:
        await run_apt(["sh", "-c", "echo 'E: no lists' >&2; exit 100"], env=os.environ, timeout=10)

    assert "exited with status 100" in str(failed.value) and "E: no lists" in failed.value.tail


async def test_a_lock_given_up_while_waiting_is_released_once_taken(tmp_path: Path) -> None:
    lock_path = tmp_path / "root.lock"
    async with FileLock(lock_path):
        waiting = asyncio.create_task(FileLock(lock_path).__aenter__())
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    # The abandoned waiter took the lock when it was freed and gave it back.
    async with asyncio.timeout(5), FileLock(lock_path):
        pass
