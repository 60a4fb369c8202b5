"""Real builds from the Debian mirror: a customized tar, its reproducibility, and a booting qcow2.

Every build shares the session's package cache (conftest.py).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.building import (
    KEY,
    assert_customized,
    build,
    customized_request,
    members,
)
from workers.build import BuildResult, DepsolveFailed, depsolve_request

pytestmark = pytest.mark.integration

OVMF_CODE = ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd")
BOOT_DEADLINE = 300.0


def tar_request(**extra: Any) -> dict[str, Any]:
    return customized_request("tar", "tarhost", **extra)


@pytest.fixture(scope="module")
def first_tar(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    result, _ = asyncio.run(
        build(tar_request(), cache_dir, tmp_path_factory.mktemp("tar1"))
    )
    return result


def test_a_tar_holds_the_requested_user_key_file_and_service(
    first_tar: BuildResult,
) -> None:
    [artifact] = first_tar.artifacts
    assert_customized(members(artifact.path), "tarhost", "./")


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
