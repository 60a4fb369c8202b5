"""What runs on this machine, read from /proc: processes by command line, a process's descendants, mounts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name; None once the process is gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running or sleeping: neither gone nor a zombie waiting to be reaped."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def command_line(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def running(argv: Sequence[str]) -> list[int]:
    """Live processes whose command line is exactly `argv`."""
    return [pid for pid in _pids() if command_line(pid) == list(argv) and alive(pid)]


async def until_running(argv: Sequence[str], timeout: float = 10) -> list[int]:
    """Wait until a process with command line `argv` runs; its pids."""
    deadline = time.monotonic() + timeout
    while not (pids := running(argv)):
        assert time.monotonic() < deadline, f"{list(argv)} did not start within {timeout}s"
        await asyncio.sleep(0.05)
    return pids


def descendants(root: int) -> dict[int, list[str]]:
    """Every live process whose chain of parents leads to `root`, with its command line."""
    parents = {}
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None and fields[0] not in ("Z", "X"):
            parents[pid] = int(fields[1])
    found: dict[int, list[str]] = {}
    for pid in parents:
        chain, parent = [], pid
        while parent in parents and parent != root and parent not in found:
            chain.append(parent)
            parent = parents[parent]
        if parent == root or parent in found:
            for member in chain:
                found[member] = command_line(member)
    return found


def mounts_under(path: Path, pid: int | str = "self") -> list[str]:
    """Mount points at or below `path` as process `pid` sees them (its mount namespace)."""
    prefix = str(path.resolve())
    try:
        lines = (PROC / str(pid) / "mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[4].encode().decode("unicode_escape") for line in lines]
    return [point for point in points if point == prefix or point.startswith(prefix + "/")]
