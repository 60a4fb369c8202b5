"""Manifests generated per image type, and stage ids that identify what a stage makes."""

from __future__ import annotations

from typing import Any

import pytest

from domain.image_types import IMAGE_TYPES
from workers.build.depsolve import PackageSpec
from workers.build.executor import validate
from workers.build.generate import (
    SUPPORTED,
    UnsupportedImage,
    generate_manifest,
    packages_for,
)
from workers.build.manifest import Manifest, StageSpec, stage_id, stage_ids

PACKAGES = [
    PackageSpec(
        name="bash",
        version="5.2.15-2+b2",
        arch="amd64",
        sha256="a" * 64,
        size=1,
        url="http://deb.debian.org/debian/pool/main/b/bash/bash_5.2.15-2+b2_amd64.deb",
    )
]


def request(image_type: str, **customizations: Any) -> dict[str, Any]:
    return {
        "distribution": "debian-12",
        "image": {"architecture": "x86_64", "image_type": image_type},
        "customizations": customizations,
        "image_index": 0,
    }


def stage_types(manifest: Manifest) -> list[list[str]]:
    return [[s.type for s in p.stages] for p in manifest.pipelines]


def test_a_plain_tar_is_a_bootstrap_a_finalize_and_a_tar() -> None:
    manifest = generate_manifest(request("tar"), PACKAGES, {})
    assert stage_types(manifest) == [["bootstrap", "finalize"], ["tar"]]
    assert manifest.pipelines[1].input == "os"
    assert manifest.pipelines[1].stages[0].options == {"filename": "root.tar"}


def test_customizations_become_stages_in_an_order_where_owners_exist_before_files() -> (
    None
):
    manifest = generate_manifest(request(
        "tar", hostname="web", users=[{"name": "alice", "password": "secret123"}],
        files=[{"path": "/etc/a", "user": "alice"}], services={"enabled": ["ssh"]}, timezone="Europe/Berlin",
        firewall={"ports": ["22/tcp"]}, first_boot_script="echo hi",
    ), PACKAGES, {"alice": "$6$s$h"})  # fmt: skip
    assert stage_types(manifest)[0] == [
        "bootstrap",
        "hostname",
        "timezone",
        "users",
        "files",
        "firewall",
        "first-boot",
        "services",
        "finalize",
    ]
    users = manifest.pipelines[0].stages[3].options["users"]
    assert users[0]["password_hash"] == "$6$s$h"
    assert b"secret123" not in manifest.to_json()


def test_a_guest_image_boots_by_label_from_a_gpt_disk() -> None:
    manifest = generate_manifest(
        request("guest-image", kernel={"append": "quiet"}), PACKAGES, {}
    )
    assert stage_types(manifest) == [
        ["bootstrap", "boot-config", "files", "services", "cloud-init", "finalize"],
        ["raw-disk", "disk-format"],
    ]
    raw_disk, disk_format = (s.options for s in manifest.pipelines[1].stages)
    assert (
        raw_disk["kernel_cmdline"]
        == "root=LABEL=root ro console=tty0 console=ttyS0 quiet"
    )
    assert (
        manifest.pipelines[0].stages[1].options["kernel_cmdline"]
        == raw_disk["kernel_cmdline"]
    )
    assert disk_format == {
        "source": raw_disk["filename"],
        "filename": "disk.qcow2",
        "format": "qcow2",
    }


@pytest.mark.parametrize(
    ("image_type", "image_stages", "disk_format"),
    [
        ("guest-image", ["raw-disk", "disk-format"], "qcow2"),
        ("aws", ["raw-disk"], None),
        ("azure", ["raw-disk", "disk-format"], "vhd"),
        ("vsphere", ["raw-disk", "disk-format"], "vmdk"),
        ("gcp", ["raw-disk", "disk-format"], "gce-tar"),
    ],
)
def test_every_disk_type_is_one_raw_disk_then_its_format(
    image_type: str, image_stages: list[str], disk_format: str | None
) -> None:
    manifest = generate_manifest(request(image_type), PACKAGES, {})
    os_stages, assemblers = stage_types(manifest)
    assert os_stages == [
        "bootstrap", "boot-config", "files", "services", "cloud-init", "finalize"
    ]
    assert assemblers == image_stages
    last = manifest.pipelines[1].stages[-1].options
    assert last["filename"] == IMAGE_TYPES[image_type].filename
    assert last.get("format") == disk_format


def test_an_aws_image_is_the_raw_disk_itself() -> None:
    manifest = generate_manifest(request("aws"), PACKAGES, {})
    [raw_disk] = manifest.pipelines[1].stages
    assert raw_disk.options["filename"] == "image.raw"
    assert raw_disk.options["size_multiple_mib"] == 1


def test_a_gcp_disk_is_a_whole_number_of_gib() -> None:
    manifest = generate_manifest(request("gcp"), PACKAGES, {})
    assert manifest.pipelines[1].stages[0].options["size_multiple_mib"] == 1024


@pytest.mark.parametrize(
    ("image_type", "datasources"),
    [
        ("guest-image", ["NoCloud", "ConfigDrive", "None"]),
        ("aws", ["Ec2", "None"]),
        ("azure", ["Azure", "None"]),
        ("gcp", ["GCE", "None"]),
        ("vsphere", ["VMware", "OVF", "None"]),
    ],
)
def test_cloud_init_looks_only_for_its_platforms_datasource(
    image_type: str, datasources: list[str]
) -> None:
    manifest = generate_manifest(request(image_type), PACKAGES, {})
    [cloud] = [s for s in manifest.pipelines[0].stages if s.type == "cloud-init"]
    assert cloud.options == {"datasources": datasources, "preserve_hostname": False}


def test_a_requested_hostname_is_kept_over_the_platforms_metadata() -> None:
    manifest = generate_manifest(request("aws", hostname="web"), PACKAGES, {})
    [cloud] = [s for s in manifest.pipelines[0].stages if s.type == "cloud-init"]
    assert cloud.options["preserve_hostname"] is True


@pytest.mark.parametrize("image_type", ["oci", "container"])
def test_a_container_image_is_an_oci_archive_of_a_tree_without_a_kernel(
    image_type: str,
) -> None:
    manifest = generate_manifest(request(image_type, hostname="c"), PACKAGES, {})
    assert stage_types(manifest) == [
        ["bootstrap", "hostname", "finalize"],
        ["oci-archive"],
    ]
    assert manifest.pipelines[1].stages[0].options == {
        "filename": IMAGE_TYPES[image_type].filename,
        "architecture": "amd64",
    }


def test_a_wsl_image_is_a_gzipped_tar_with_a_wsl_conf() -> None:
    manifest = generate_manifest(request(
        "wsl", hostname="box", users=[{"name": "root"}, {"name": "alice"}, {"name": "bob"}],
    ), PACKAGES, {})  # fmt: skip
    assert stage_types(manifest) == [
        ["bootstrap", "hostname", "users", "wsl-conf", "finalize"],
        ["tar"],
    ]
    assert manifest.pipelines[0].stages[3].options == {
        "systemd": False,
        "default_user": "alice",
        "hostname": "box",
    }
    assert manifest.pipelines[1].stages[0].options == {
        "filename": "image.wsl",
        "gzip": True,
    }


def test_wsl_boots_systemd_when_the_image_has_systemd_as_init() -> None:
    systemd = PackageSpec(
        name="systemd-sysv", version="252.38-1~deb12u1", arch="amd64",
        sha256="b" * 64, size=1, url="http://deb.debian.org/x.deb",
    )  # fmt: skip
    manifest = generate_manifest(request("wsl"), [*PACKAGES, systemd], {})
    [wsl] = [s for s in manifest.pipelines[0].stages if s.type == "wsl-conf"]
    assert wsl.options == {"systemd": True, "default_user": None, "hostname": None}


def test_every_image_type_can_be_built() -> None:
    assert set(SUPPORTED) == set(IMAGE_TYPES)


@pytest.mark.parametrize("image_type", ["tar", "wsl", "oci", "container"])
def test_a_tree_image_gets_no_kernel_boot_or_cloud_stages(image_type: str) -> None:
    manifest = generate_manifest(request(image_type), PACKAGES, {})
    types = {s.type for p in manifest.pipelines for s in p.stages}
    assert not types & {"boot-config", "cloud-init", "raw-disk", "disk-format"}


def test_the_same_request_gives_the_same_manifest() -> None:
    one = generate_manifest(request("guest-image"), PACKAGES, {})
    assert (
        one.to_json()
        == generate_manifest(request("guest-image"), PACKAGES, {}).to_json()
    )
    assert Manifest.from_json(one.to_json()) == one


def test_an_unknown_image_type_is_refused() -> None:
    with pytest.raises(UnsupportedImage, match="iso"):
        generate_manifest(request("iso"), PACKAGES, {})


@pytest.mark.parametrize("image_type", SUPPORTED)
def test_every_image_types_manifest_passes_validation(image_type: str) -> None:
    validate(generate_manifest(request(image_type, hostname="h"), PACKAGES, {}))


def test_a_guest_image_asks_for_a_kernel_systemd_and_an_initramfs() -> None:
    wanted = packages_for(request("guest-image"))
    assert {
        "linux-image-cloud-amd64",
        "systemd-sysv",
        "initramfs-tools",
        "systemd-boot",
    } <= set(wanted)


def test_a_requested_kernel_replaces_the_default_one_and_extras_follow_customizations() -> (
    None
):
    wanted = packages_for(
        request(
            "guest-image",
            kernel={"name": "linux-image-rt-amd64"},
            firewall={"ports": ["22/tcp"]},
            locale={"languages": ["de_DE.UTF-8"]},
            packages=["curl"],
        )
    )
    assert "linux-image-cloud-amd64" not in wanted
    assert {"linux-image-rt-amd64", "nftables", "locales", "curl"} <= set(wanted)


def test_a_stage_id_changes_with_its_options_and_its_inputs() -> None:
    stage = StageSpec(type="hostname", options={"hostname": "a"})
    assert stage_id(stage, ["x"]) == stage_id(
        StageSpec(type="hostname", options={"hostname": "a"}), ["x"]
    )
    assert stage_id(stage, ["x"]) != stage_id(
        StageSpec(type="hostname", options={"hostname": "b"}), ["x"]
    )
    assert stage_id(stage, ["x"]) != stage_id(stage, ["y"])


def test_the_assemblers_id_chains_from_the_trees_last_stage() -> None:
    manifest = generate_manifest(request("tar", hostname="a"), PACKAGES, {})
    other = generate_manifest(request("tar", hostname="b"), PACKAGES, {})
    assert stage_ids(manifest)["os"][0] == stage_ids(other)["os"][0]
    assert stage_ids(manifest)["image"] != stage_ids(other)["image"]
