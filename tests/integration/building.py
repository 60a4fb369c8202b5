"""What the real-build tests share: a customized request, a build, and a tar read back."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path
from typing import Any

from workers.build import BuildResult, build_image, depsolve_request

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv1Tj1K2X0DqTQ3S3l9rJ5O7n0b4xD7PZ3cJw9b2xYz alice@example"
# A fixed crypt hash: a plain password gets a random salt, which no build can reproduce.
HASH = "$6$abcdefgh$" + "A" * 86
Entries = dict[str, tuple[tarfile.TarInfo, bytes]]


def customized_request(image_type: str, hostname: str, **extra: Any) -> dict[str, Any]:
    return {
        "distribution": "debian-12",
        "image": {"architecture": "x86_64", "image_type": image_type},
        "customizations": {
            "packages": ["openssh-server", "curl"],
            "hostname": hostname,
            "users": [{"name": "alice", "groups": ["sudo", "wheel"], "key": KEY, "password": HASH}],
            "files": [{"path": "/etc/app.conf", "data": "secret=1\n", "mode": "0640", "group": "alice"}],
            "services": {"enabled": ["ssh"]},
            **extra,
        },
    }  # fmt: skip


async def build(
    request: dict[str, Any], cache_dir: Path, work_dir: Path
) -> tuple[BuildResult, list[tuple]]:
    stages: list[tuple] = []
    packages = await depsolve_request(request, cache_dir)
    result = await build_image(
        request,
        packages,
        work_dir,
        cache_dir,
        lambda *a: stages.append(a),
        lambda line: None,
        asyncio.Event(),
    )
    return result, stages


def members(path: str) -> Entries:
    with tarfile.open(path) as archive:
        return {
            m.name: (m, archive.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
            for m in archive
        }


def assert_customized(tree: Entries, hostname: str, root: str) -> None:
    """The request's user, key, file, service and host name are in `tree`, whose names start with `root`."""
    passwd = tree[f"{root}etc/passwd"][1].decode()
    alice = next(
        line.split(":") for line in passwd.splitlines() if line.startswith("alice:")
    )
    keys_info, keys = tree[f"{root}home/alice/.ssh/authorized_keys"]
    assert keys.decode().strip() == KEY
    assert (keys_info.mode, keys_info.uid, keys_info.gid) == (
        0o600,
        int(alice[2]),
        int(alice[3]),
    )
    groups = tree[f"{root}etc/group"][1].decode()
    assert any(
        line.startswith("sudo:") and "alice" in line for line in groups.splitlines()
    )
    conf, data = tree[f"{root}etc/app.conf"]
    assert (conf.mode, data) == (0o640, b"secret=1\n")
    assert tree[f"{root}etc/systemd/system/multi-user.target.wants/ssh.service"][0].issym()
    assert tree[f"{root}etc/hostname"][1] == f"{hostname}\n".encode()
    assert tree[f"{root}etc/machine-id"][1] == b""
    assert not any(name.startswith(f"{root}etc/ssh/ssh_host_") for name in tree)
