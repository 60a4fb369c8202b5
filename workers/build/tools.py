"""The host programs image builds call, and the Debian packages that bring them.

A worker (and `image-builder up`, which runs one) checks for them before it
takes a job, so a missing `mmdebstrap` is a clear message at start-up instead
of a failed build later. As root on Debian the missing packages are installed;
anywhere else the message says exactly what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

# Program -> Debian package. Guest programs (useradd, systemctl, ...) run
# inside the image tree and come with its packages, so they are not listed.
BUILD_TOOLS: Mapping[str, str] = MappingProxyType({
    "mmdebstrap": "mmdebstrap",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "curl": "curl",
    "openssl": "openssl",
    "tar": "tar",
    "mkfs.ext4": "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "sfdisk": "fdisk",
    "qemu-img": "qemu-utils",
})  # fmt: skip
# mkfs.* and sfdisk live in sbin, which a normal user's PATH may lack.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
INSTALL_MODES = ("auto", "never")


class MissingBuildTools(RuntimeError):
    def __init__(self, packages: Sequence[str], programs: Sequence[str]) -> None:
        self.packages = tuple(packages)
        super().__init__(
            f"image builds need programs this machine lacks ({', '.join(programs)}); "
            f"install them with: sudo apt-get install -y {' '.join(self.packages)}"
        )


def missing_programs(path: str | None = None) -> list[str]:
    search = os.pathsep.join([path if path is not None else os.environ.get("PATH", ""), *SBIN])
    return [program for program in BUILD_TOOLS if shutil.which(program, path=search) is None]


def packages_for(programs: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(BUILD_TOOLS[program] for program in programs))


def can_install() -> bool:
    return os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def ensure_build_tools(
    mode: str = "auto",
    *,
    path: str | None = None,
    installable: Callable[[], bool] = can_install,
    run: Callable[[Sequence[str]], object] = lambda argv: subprocess.run(argv, check=True),
    say: Callable[[str], None] = print,
) -> None:
    """Return when every build tool is there; install them (mode auto, root on Debian) or raise MissingBuildTools."""
    if mode not in INSTALL_MODES:
        raise ValueError(f"install mode must be one of {INSTALL_MODES}, not {mode!r}")
    missing = missing_programs(path)
    if not missing:
        return
    packages = packages_for(missing)
    if mode == "never" or not installable():
        raise MissingBuildTools(packages, missing)
    say(f"installing the image build tools ({', '.join(missing)} missing): apt-get install -y {' '.join(packages)}")
    env_argv = ["env", "DEBIAN_FRONTEND=noninteractive"]
    run([*env_argv, "apt-get", "update", "-qq"])
    run([*env_argv, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages])
    still_missing = missing_programs(path)
    if still_missing:
        raise MissingBuildTools(packages_for(still_missing), still_missing)
