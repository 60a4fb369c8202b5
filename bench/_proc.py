"""CPU accounting for benchmarks from /proc: what each group of processes used."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_ticks(pid: int) -> int | None:
    """utime + stime of a whole process (all its threads), in clock ticks; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def ticks(pids: list[int]) -> int:
    """utime + stime of these processes together, in clock ticks."""
    return sum(t for pid in pids if (t := process_ticks(pid)) is not None)


def processes() -> list[tuple[int, int, bytes]]:
    """(pid, parent pid, command line) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        found.append((int(entry), int(stat[stat.rindex(")") + 2 :].split()[1]), cmdline))
    return found


def postgres_pids(data_dir: Path) -> list[int]:
    """A local server's postmaster and all its children (backends, walwriter, ...)."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [postmaster, *(pid for pid, ppid, _ in processes() if ppid == postmaster)]


def kafka_pids(base_dir: Path) -> list[int]:
    """The broker's JVM: the process whose command line names the broker's folder."""
    marker = str(base_dir).encode()
    return [pid for pid, _, cmdline in processes() if marker in cmdline and cmdline.startswith(b"java")]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is already in user
    return total - idle, total
