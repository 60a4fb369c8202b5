"""The start-up check for the host programs builds call."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from workers.build.tools import BUILD_TOOLS, MissingBuildTools, ensure_build_tools, missing_programs

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]


def bin_dir_with(tmp_path: Path, programs: list[str]) -> str:
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for program in programs:
        path = directory / program
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(directory)


def test_every_build_tool_is_on_this_machine() -> None:
    # .ci/setup installs them; a program added to the pipeline but not to
    # BUILD_TOOLS and setup would show up here as a failed build instead.
    assert missing_programs() == []


def test_missing_programs_are_named_with_the_packages_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.build.tools.SBIN", ())
    present = [p for p in BUILD_TOOLS if p not in ("mmdebstrap", "mcopy", "mmd", "qemu-img")]
    path = bin_dir_with(tmp_path, present)

    with pytest.raises(MissingBuildTools) as missing:
        ensure_build_tools("never", path=path)

    assert missing.value.packages == ("mmdebstrap", "mtools", "qemu-utils")
    assert "sudo apt-get install -y mmdebstrap mtools qemu-utils" in str(missing.value)
    assert "mmdebstrap, mcopy, mmd, qemu-img" in str(missing.value)


def test_as_root_on_debian_the_missing_packages_are_installed_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.build.tools.SBIN", ())
    path = bin_dir_with(tmp_path, [p for p in BUILD_TOOLS if p != "qemu-img"])
    ran: list[list[str]] = []
    said: list[str] = []

    def apt(argv: list[str]) -> None:
        ran.append(list(argv))
        if "install" in argv:  # what apt-get would leave behind
            bin_dir_with(tmp_path, ["qemu-img"])

    ensure_build_tools("auto", path=path, installable=lambda: True, run=apt, say=said.append)

    assert ran[-1][ran[-1].index("install") :] == ["install", "-y", "-qq", "--no-install-recommends", "qemu-utils"]
    assert said == ["installing the image build tools (qemu-img missing): apt-get install -y qemu-utils"]


def test_an_install_that_leaves_a_program_missing_still_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.build.tools.SBIN", ())
    path = bin_dir_with(tmp_path, [p for p in BUILD_TOOLS if p != "qemu-img"])

    with pytest.raises(MissingBuildTools, match="qemu-utils"):
        ensure_build_tools("auto", path=path, installable=lambda: True, run=lambda argv: None, say=lambda line: None)


def test_an_unknown_install_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto"):
        ensure_build_tools("sometimes")


def test_up_without_the_build_tools_says_what_to_install_and_stops(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": bin_dir_with(tmp_path, ["curl"]),
        "IMAGE_BUILDER_INSTALL_BUILD_TOOLS": "never",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(tmp_path / "data"), "--port", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 2
    assert "install them with: sudo apt-get install -y" in done.stderr
    assert "mmdebstrap" in done.stderr
    assert not (tmp_path / "data").exists()
