"""Real builds from the Debian mirror: a customized tar, its reproducibility, and a booting qcow2.

The module shares one cache dir, so each package is downloaded once; set
IMAGE_BUILDER_TEST_CACHE to keep it between runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workers.build import BuildResult, DepsolveFailed, build_image, depsolve_request

pytestmark = pytest.mark.integration

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv1Tj1K2X0DqTQ3S3l9rJ5O7n0b4xD7PZ3cJw9b2xYz alice@example"
# A fixed crypt hash: a plain password gets a random salt, which no build can reproduce.
HASH = "$6$abcdefgh$" + "A" * 86
OVMF_CODE = ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd")
BOOT_DEADLINE = 300.0


def tar_request(**extra: Any) -> dict[str, Any]:
    return {
        "distribution": "debian-12",
        "image": {"architecture": "x86_64", "image_type": "tar"},
        "customizations": {
            "packages": ["openssh-server", "curl"],
            "hostname": "tarhost",
            "users": [
                {
                    "name": "alice",
                    "groups": ["sudo", "wheel"],
                    "key": KEY,
                    "password": HASH,
                }
            ],
            "files": [
                {
                    "path": "/etc/app.conf",
                    "data": "secret=1\n",
                    "mode": "0640",
                    "group": "alice",
                }
            ],
            "services": {"enabled": ["ssh"]},
            **extra,
        },
    }


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    kept = os.environ.get("IMAGE_BUILDER_TEST_CACHE")
    yield Path(kept) if kept else tmp_path_factory.mktemp("build-cache")


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


@pytest.fixture(scope="module")
def first_tar(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    result, _ = asyncio.run(
        build(tar_request(), cache_dir, tmp_path_factory.mktemp("tar1"))
    )
    return result


def members(path: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as archive:
        return {
            m.name: (m, archive.extractfile(m).read() if m.isfile() else b"")
            for m in archive
        }  # type: ignore[union-attr]


def test_a_tar_holds_the_requested_user_key_file_and_service(
    first_tar: BuildResult,
) -> None:
    [artifact] = first_tar.artifacts
    tree = members(artifact.path)
    passwd = tree["./etc/passwd"][1].decode()
    alice = next(
        line.split(":") for line in passwd.splitlines() if line.startswith("alice:")
    )
    keys_info, keys = tree["./home/alice/.ssh/authorized_keys"]
    assert keys.decode().strip() == KEY
    assert (keys_info.mode, keys_info.uid, keys_info.gid) == (
        0o600,
        int(alice[2]),
        int(alice[3]),
    )
    groups = tree["./etc/group"][1].decode()
    assert any(
        line.startswith("sudo:") and "alice" in line for line in groups.splitlines()
    )
    conf, data = tree["./etc/app.conf"]
    assert (conf.mode, data) == (0o640, b"secret=1\n")
    assert tree["./etc/systemd/system/multi-user.target.wants/ssh.service"][0].issym()
    assert tree["./etc/hostname"][1] == b"tarhost\n"
    assert tree["./etc/machine-id"][1] == b""
    assert not any(name.startswith("./etc/ssh/ssh_host_") for name in tree)


def test_a_tar_reports_packages_sbom_manifest_and_checksums(
    first_tar: BuildResult,
) -> None:
    names = {p.name for p in first_tar.packages}
    assert {"openssh-server", "curl", "bash", "apt"} <= names
    assert first_tar.sbom["spdxVersion"] == "SPDX-2.3"
    assert len(first_tar.sbom["packages"]) == len(first_tar.packages)
    assert [p["name"] for p in first_tar.manifest["pipelines"]] == ["os", "image"]
    [artifact] = first_tar.artifacts
    assert (
        len(artifact.sha256) == 64
        and artifact.size == Path(artifact.path).stat().st_size
    )


def test_building_the_same_request_again_downloads_nothing_and_gives_the_same_bytes(
    first_tar: BuildResult, cache_dir: Path, tmp_path: Path
) -> None:
    again, stages = asyncio.run(build(tar_request(), cache_dir, tmp_path))
    assert again.downloaded == 0
    assert [a.sha256 for a in again.artifacts] == [
        a.sha256 for a in first_tar.artifacts
    ]
    assert stages[0] == (0, len(stages), "sources") and stages[-1][2] == "tar"


def test_an_unknown_package_fails_the_depsolve_with_its_name(cache_dir: Path) -> None:
    with pytest.raises(DepsolveFailed) as raised:
        asyncio.run(
            depsolve_request(
                tar_request(packages=["curl", "no-such-package-xyz"]), cache_dir
            )
        )
    assert raised.value.package == "no-such-package-xyz"


async def boot_to_login(
    disk: Path, vars_file: Path, hostname: str, deadline: float
) -> str:
    code = next(path for path in OVMF_CODE if Path(path).exists())
    shutil.copy(code.replace("CODE", "VARS"), vars_file)
    qemu = await asyncio.create_subprocess_exec(
        "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-nographic", "-no-reboot",
        "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
        "-drive", f"if=pflash,format=raw,file={vars_file}",
        "-drive", f"file={disk},if=virtio,format=qcow2,snapshot=on",
        "-nic", "user,model=virtio-net-pci",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    seen = b""
    try:
        async with asyncio.timeout(deadline):
            assert qemu.stdout is not None
            while f"{hostname} login:".encode() not in seen:
                chunk = await qemu.stdout.read(4096)
                if not chunk:
                    break
                seen += chunk
    except TimeoutError:
        pass
    finally:
        qemu.kill()
        await qemu.wait()
    return seen.decode(errors="replace")


def test_a_guest_image_boots_under_uefi_to_a_login_prompt_with_its_hostname(
    cache_dir: Path, tmp_path: Path
) -> None:
    request = {
        "distribution": "debian-12",
        "image": {"architecture": "x86_64", "image_type": "guest-image"},
        "customizations": {
            "hostname": "bootcheck",
            "users": [{"name": "alice", "key": KEY}],
        },
    }
    result, _ = asyncio.run(build(request, cache_dir, tmp_path / "work"))
    [artifact] = result.artifacts
    assert artifact.name == "disk.qcow2"
    started = time.monotonic()
    console = asyncio.run(
        boot_to_login(
            Path(artifact.path), tmp_path / "vars.fd", "bootcheck", BOOT_DEADLINE
        )
    )
    assert "bootcheck login:" in console, console[-3000:]
    print(f"booted to login in {time.monotonic() - started:.0f}s")
