"""Real builds beyond debian-12 tar and guest-image: an OCI archive, an AWS raw disk, a debian-13 tar.

The other disk types share the raw disk the aws build checks here (and the
guest-image boot test boots); their conversions are tested on a tiny disk in
tests/unit/build/test_disk_formats.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.building import assert_customized, build, customized_request, members
from tests.oci_layout import read_image
from workers.build import BuildResult
from workers.build.stages import cloud_init, disk

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def first_oci(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    request = customized_request("oci", "ocihost")
    result, _ = asyncio.run(build(request, cache_dir, tmp_path_factory.mktemp("oci1")))
    return result


def test_an_oci_archives_layer_holds_the_requested_user_key_file_and_service(
    first_oci: BuildResult,
) -> None:
    [artifact] = first_oci.artifacts
    assert artifact.name == "image.oci.tar"
    image = read_image(Path(artifact.path))
    assert_customized(image.layer(), "ocihost", "")
    assert (image.config["architecture"], image.config["os"]) == ("amd64", "linux")
    assert image.config["created"] == "2023-06-10T00:00:00Z"


def test_skopeo_reads_the_oci_archive_and_verifies_its_blobs(
    first_oci: BuildResult, tmp_path: Path
) -> None:
    archive = f"oci-archive:{first_oci.artifacts[0].path}"
    inspected = subprocess.run(
        ["skopeo", "inspect", archive], check=True, capture_output=True, text=True
    )
    details = json.loads(inspected.stdout)
    assert (details["Architecture"], details["Os"]) == ("amd64", "linux")
    assert len(details["Layers"]) == 1
    # A copy reads every blob and checks it against its digest.
    subprocess.run(
        ["skopeo", "copy", "--quiet", archive, f"dir:{tmp_path / 'copy'}"], check=True
    )


def test_an_oci_archive_built_again_is_the_same_to_the_byte(
    first_oci: BuildResult, cache_dir: Path, tmp_path: Path
) -> None:
    request = customized_request("oci", "ocihost")
    again, _ = asyncio.run(build(request, cache_dir, tmp_path))
    assert again.downloaded == 0
    assert [a.sha256 for a in again.artifacts] == [a.sha256 for a in first_oci.artifacts]


def test_an_aws_image_is_a_raw_gpt_disk_with_cloud_init_for_ec2(
    cache_dir: Path, tmp_path: Path
) -> None:
    request = {
        "distribution": "debian-12",
        "image": {"architecture": "x86_64", "image_type": "aws"},
        "customizations": {"hostname": "ec2host"},
    }
    result, stages = asyncio.run(build(request, cache_dir, tmp_path / "work"))
    [artifact] = result.artifacts
    assert artifact.name == "image.raw" and artifact.size % disk.MIB == 0
    assert stages[-1][2] == "raw-disk"

    listed = subprocess.run(
        ["sfdisk", "--json", artifact.path], check=True, capture_output=True, text=True
    )
    table = json.loads(listed.stdout)["partitiontable"]
    assert table["label"] == "gpt"
    esp, root = table["partitions"]
    assert (esp["type"], esp["start"], esp["name"]) == (disk.ESP_TYPE, 2048, "ESP")
    assert (root["type"], root["name"]) == (disk.ROOT_TYPE, "root")
    assert (root["start"] + root["size"]) * disk.SECTOR == artifact.size - disk.MIB

    # debugfs reads the root filesystem at its offset in the disk, without a mount.
    offset = root["start"] * disk.SECTOR
    shown = subprocess.run(
        ["debugfs", "-R", f"cat {cloud_init.CONFIG_FILE}", f"{artifact.path}?offset={offset}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "datasource_list: [ Ec2, None ]\n" in shown.stdout
    assert "preserve_hostname: true\n" in shown.stdout


def test_a_debian_13_tar_is_trixie_with_the_requested_customizations(cache_dir: Path, tmp_path: Path) -> None:
    request = {**customized_request("tar", "trixiehost"), "distribution": "debian-13"}

    result, _ = asyncio.run(build(request, cache_dir, tmp_path))

    [artifact] = result.artifacts
    tree = members(artifact.path)
    assert_customized(tree, "trixiehost", "./")
    assert b"VERSION_CODENAME=trixie" in tree["./usr/lib/os-release"][1]
    assert any(p.name == "base-files" and p.version.startswith("13") for p in result.packages)
