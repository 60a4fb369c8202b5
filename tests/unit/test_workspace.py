"""A worker's workspace: its own while it lives, removed by the next worker once it is dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import mounts_under
from workers.workspace import Workspace, remove_abandoned

REPO = Path(__file__).parents[2]


def killed_worker_workspace(work_root: Path) -> Path:
    """The workspace of a worker process that was SIGKILLed in the middle of a build."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from workers.workspace import Workspace\n"
        f"space = Workspace.claim(Path({str(work_root)!r}))\n"
        "(space.path / 'job/trees/os/etc').mkdir(parents=True)\n"
        "print(space.path, flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    path = Path(worker.stdout.readline().strip())
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    return path


def test_a_killed_workers_workspace_is_removed_when_the_next_worker_starts(tmp_path: Path) -> None:
    left = killed_worker_workspace(tmp_path)
    assert (left / "job/trees/os/etc").is_dir()
    mine = Workspace.claim(tmp_path)
    assert not left.exists()
    assert [p.name for p in tmp_path.iterdir()] == [mine.path.name]


def test_a_live_workers_workspace_is_left_alone(tmp_path: Path) -> None:
    first = Workspace.claim(tmp_path)
    (first.path / "job").mkdir()
    second = Workspace.claim(tmp_path)
    assert (first.path / "job").is_dir() and second.path != first.path
    assert remove_abandoned(tmp_path) == []


def test_a_released_workspace_is_removed_and_can_be_swept_no_more(tmp_path: Path) -> None:
    space = Workspace.claim(tmp_path)
    (space.path / "job/output").mkdir(parents=True)
    space.release()
    space.release()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root, as mmdebstrap's mounts do")
def test_removing_a_left_workspace_never_walks_into_what_is_mounted_in_it(tmp_path: Path) -> None:
    host = tmp_path / "host-sys"
    host.mkdir()
    (host / "precious").write_text("the host's")
    work_root = tmp_path / "work"
    left = killed_worker_workspace(work_root)
    inside = left / "job/trees/os/sys"
    inside.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(host), str(inside)], check=True)
    try:
        Workspace.claim(work_root)
    finally:
        if mounts_under(inside):
            subprocess.run(["umount", "--lazy", str(inside)], check=False)
    assert not left.exists() and mounts_under(work_root) == []
    assert (host / "precious").read_text() == "the host's"
