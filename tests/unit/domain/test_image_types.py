"""What each image type produces and needs, and the distributions it is built from."""

from __future__ import annotations

import pytest

from domain.distributions import DISTRIBUTIONS, debian_architecture, get_distribution
from domain.image_types import IMAGE_TYPES, get_image_type

DISKS = ("guest-image", "aws", "azure", "vsphere", "gcp")
NOT_DISKS = ("oci", "container", "wsl", "tar")


def test_the_image_types_are_upstreams_names() -> None:
    assert set(IMAGE_TYPES) == set(DISKS + NOT_DISKS)


@pytest.mark.parametrize(
    ("name", "filename", "extension", "mime_type"),
    [
        ("guest-image", "disk.qcow2", "qcow2", "application/x-qemu-disk"),
        ("aws", "image.raw", "raw", "application/octet-stream"),
        ("azure", "disk.vhd", "vhd", "application/x-vhd"),
        ("vsphere", "disk.vmdk", "vmdk", "application/x-vmdk"),
        ("gcp", "image.tar.gz", "tar.gz", "application/gzip"),
        ("oci", "image.oci.tar", "oci.tar", "application/x-tar"),
        ("container", "container.tar", "tar", "application/x-tar"),
        ("wsl", "image.wsl", "wsl", "application/gzip"),
        ("tar", "root.tar", "tar", "application/x-tar"),
    ],
)
def test_each_image_type_names_its_artifact(name: str, filename: str, extension: str, mime_type: str) -> None:
    image_type = IMAGE_TYPES[name]
    assert (image_type.filename, image_type.extension, image_type.mime_type) == (filename, extension, mime_type)


@pytest.mark.parametrize("name", DISKS)
def test_a_disk_image_boots_on_its_own(name: str) -> None:
    image_type = IMAGE_TYPES[name]
    assert image_type.bootable
    assert image_type.kernel is not None
    assert {image_type.kernel, "systemd-sysv", "systemd-boot"} <= set(image_type.packages)


@pytest.mark.parametrize("name", ["guest-image", "aws", "azure", "gcp"])
def test_a_cloud_image_runs_debians_cloud_kernel_as_debians_own_cloud_images_do(name: str) -> None:
    assert IMAGE_TYPES[name].kernel == "linux-image-cloud-amd64"
    assert "linux-image-amd64" not in IMAGE_TYPES[name].packages


def test_a_vsphere_image_keeps_the_generic_kernel() -> None:
    assert IMAGE_TYPES["vsphere"].kernel == "linux-image-amd64"
    assert "linux-image-cloud-amd64" not in IMAGE_TYPES["vsphere"].packages


@pytest.mark.parametrize("name", ["guest-image", "aws", "azure", "gcp", "vsphere"])
def test_a_cloud_image_gets_cloud_init(name: str) -> None:
    assert "cloud-init" in IMAGE_TYPES[name].packages


@pytest.mark.parametrize("name", NOT_DISKS)
def test_a_tree_image_has_no_kernel_or_bootloader(name: str) -> None:
    image_type = IMAGE_TYPES[name]
    assert not image_type.bootable
    assert image_type.kernel is None
    assert not {"linux-image-amd64", "linux-image-cloud-amd64", "systemd-boot"} & set(image_type.packages)


@pytest.mark.parametrize("name", ["oci", "container", "tar"])
def test_a_container_image_adds_nothing_to_a_minimal_tree(name: str) -> None:
    assert IMAGE_TYPES[name].packages == ()


@pytest.mark.parametrize("name", DISKS + NOT_DISKS)
def test_every_image_type_can_be_downloaded_or_put_in_s3(name: str) -> None:
    assert IMAGE_TYPES[name].allows_upload_to("local")
    assert IMAGE_TYPES[name].allows_upload_to("aws.s3")


def test_only_the_aws_image_can_be_imported_into_ec2() -> None:
    assert [name for name, t in IMAGE_TYPES.items() if t.allows_upload_to("aws")] == ["aws"]


def test_upstream_single_upload_options_target_ec2_for_aws_and_s3_otherwise() -> None:
    assert {n: t.default_upload_target for n, t in IMAGE_TYPES.items()} == {
        n: ("aws" if n == "aws" else "aws.s3") for n in IMAGE_TYPES
    }


def test_an_unknown_image_type_is_none() -> None:
    assert get_image_type("iso") is None
    assert get_image_type("aws") is IMAGE_TYPES["aws"]


def test_bookworm_and_trixie_are_built_for_x86_64_from_the_debian_mirrors() -> None:
    named = {(d.name, d.codename) for d in DISTRIBUTIONS.values()}
    assert named == {("debian-12", "bookworm"), ("debian-13", "trixie")}
    for distribution in DISTRIBUTIONS.values():
        assert distribution.architectures == ("x86_64",)
        assert distribution.mirror == "http://deb.debian.org/debian"
        assert distribution.security_suite == f"{distribution.codename}-security"


def test_x86_64_is_amd64_to_debian() -> None:
    assert debian_architecture("x86_64") == "amd64"
    assert get_distribution("debian-11") is None
