"""A worker process's own directory under the shared work root, and the removal of dead workers' ones.

A build's trees live under its worker's workspace. A worker that is killed
(SIGKILL, the OOM killer, a reboot) cannot remove them, and nobody else knows
whether they are still in use: so each workspace is a directory that its
worker holds an flock on for as long as it lives. The kernel drops the lock
when the process dies, however it dies, so a workspace whose lock can be
taken belongs to nobody, and the next worker to start on the machine removes
it. Several workers may share one work root: a live one's workspace is never
touched.

The lock is on the directory itself, taken while it still has a hidden name
and kept across the rename to its real name, so no worker ever sees a
workspace that is not locked yet.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

HIDDEN = ".new-"


class Workspace:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def claim(cls, work_root: Path) -> Workspace:
        """Remove dead workers' workspaces under `work_root`, then make and lock this worker's own."""
        work_root.mkdir(parents=True, exist_ok=True)
        remove_abandoned(work_root)
        hidden = Path(tempfile.mkdtemp(prefix=HIDDEN, dir=work_root))
        fd = os.open(hidden, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = work_root / f"worker-{hidden.name.removeprefix(HIDDEN)}"
        hidden.rename(path)
        return cls(path, fd)

    def release(self) -> None:
        """Remove the workspace (what is left in it) and give up the lock."""
        if self._fd < 0:
            return
        _remove(self.path)
        os.close(self._fd)
        self._fd = -1


def remove_abandoned(work_root: Path) -> list[Path]:
    """Remove every workspace under `work_root` that no live process holds; returns them."""
    removed = []
    for entry in sorted(work_root.iterdir()):
        if entry.name.startswith(HIDDEN) or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live worker's
            continue
        try:
            log.info("removing %s, left by a worker that is gone", entry)
            _remove(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


def _remove(path: Path) -> None:
    """rmtree, but first detach anything still mounted below `path`.

    Commands mount only in their own mount namespace, so this is for trees left
    by a worker that ran mmdebstrap without one: rmtree must not walk into a
    /proc or a /sys (bind) mounted inside a tree.
    """
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        result = subprocess.run(["umount", "--lazy", point], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log.error("not removing %s: cannot unmount %s: %s", path, point, result.stderr.strip())
            return
    shutil.rmtree(path, ignore_errors=True)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[4].encode().decode("unicode_escape") for line in lines]
    return [point for point in points if point == prefix or point.startswith(prefix + "/")]
