"""The kinds of artifact a compose can produce, and what each one needs.

Names follow the upstream compose API (`guest-image`, `aws`, ...). Every tree
starts as mmdebstrap's `minbase` variant; `packages` is what an image type adds
on top of it, before the user's own packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from domain.upload_targets import UPLOAD_AWS, UPLOAD_AWS_S3, UPLOAD_LOCAL

# The kernel a bootable image gets unless the request names another. Debian's
# own cloud images (genericcloud, ec2, azure, gce) run the cloud flavour: built
# for virtual machines (virtio, NVMe, Xen/Hyper-V/GCE drivers), with about a
# quarter of the generic kernel's modules, so the image is ~300 MB smaller and
# its initramfs is made in ~5 s instead of ~16 s. vSphere keeps the generic
# kernel, whose VMware drivers the cloud flavour does not promise.
GENERIC_KERNEL = "linux-image-amd64"
CLOUD_KERNEL = "linux-image-cloud-amd64"
# What a disk needs to boot on its own under UEFI besides its kernel: an initramfs,
# systemd as init, systemd-boot (its kernel-install hooks keep the ESP's loader
# entries current on kernel upgrades), fsck tools for the ext4 root and the FAT
# ESP, and networking through systemd-networkd/-resolved with ssh to reach it.
# zstd is a Recommends of initramfs-tools-core, which apt would install on a
# stock Debian: without it mkinitramfs falls back from its default COMPRESS=zstd
# to gzip, a larger initramfs that is also slower to make.
BOOTABLE_PACKAGES: tuple[str, ...] = (
    "systemd-sysv",
    "systemd-boot",
    "initramfs-tools",
    "zstd",
    "udev",
    "e2fsprogs",
    "dosfstools",
    "netbase",
    "systemd-resolved",
    "openssh-server",
)
# Cloud instances learn their users, keys and hostname from the platform's
# metadata service; cloud-guest-utils' growpart grows the root to the volume.
CLOUD_PACKAGES: tuple[str, ...] = ("cloud-init", "cloud-guest-utils")

_EVERYWHERE = (UPLOAD_LOCAL, UPLOAD_AWS_S3)


class ImageType(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    filename: str
    mime_type: str
    bootable: bool
    packages: tuple[str, ...]
    # The kernel package among `packages` (None: the image boots no kernel of its own).
    kernel: str | None = None
    upload_targets: tuple[str, ...] = _EVERYWHERE
    # The target a request's lone `upload_options` is meant for, as upstream's
    # getDefaultTarget: EC2 for `aws`, S3 for the rest (upstream sends azure,
    # gcp and oci to their own clouds, which this builder does not upload to).
    default_upload_target: str = UPLOAD_AWS_S3

    @property
    def extension(self) -> str:
        """Everything after the first dot: `qcow2`, `tar.gz`, `oci.tar`."""
        return self.filename.partition(".")[2]

    def allows_upload_to(self, target_type: str) -> bool:
        return target_type in self.upload_targets


def _disk(
    name: str,
    filename: str,
    mime_type: str,
    extra: tuple[str, ...],
    upload_targets: tuple[str, ...] = _EVERYWHERE,
    default_upload_target: str = UPLOAD_AWS_S3,
    kernel: str = CLOUD_KERNEL,
) -> ImageType:
    return ImageType(
        name=name,
        filename=filename,
        mime_type=mime_type,
        bootable=True,
        packages=(kernel, *BOOTABLE_PACKAGES, *extra),
        kernel=kernel,
        upload_targets=upload_targets,
        default_upload_target=default_upload_target,
    )


IMAGE_TYPES: Mapping[str, ImageType] = MappingProxyType(
    {
        t.name: t
        for t in (
            _disk("guest-image", "disk.qcow2", "application/x-qemu-disk", CLOUD_PACKAGES + ("qemu-guest-agent",)),
            _disk("aws", "image.raw", "application/octet-stream", CLOUD_PACKAGES,
                  upload_targets=_EVERYWHERE + (UPLOAD_AWS,), default_upload_target=UPLOAD_AWS),
            # Azure only imports fixed-size VHDs, whose size is a whole number of MiB.
            _disk("azure", "disk.vhd", "application/x-vhd", CLOUD_PACKAGES),
            _disk("vsphere", "disk.vmdk", "application/x-vmdk", ("open-vm-tools", "cloud-init"), kernel=GENERIC_KERNEL),
            # GCE imports a gzipped tar holding exactly one file named disk.raw.
            _disk("gcp", "image.tar.gz", "application/gzip", CLOUD_PACKAGES),
            # `oci` and `container` are both OCI image archives (podman load,
            # skopeo copy oci-archive:); `container` keeps upstream's name.
            ImageType(name="oci", filename="image.oci.tar", mime_type="application/x-tar", bootable=False, packages=()),
            ImageType(name="container", filename="container.tar", mime_type="application/x-tar", bootable=False,
                      packages=()),
            # A WSL distribution is a gzipped root tarball; WSL brings its own kernel
            # and starts systemd when /etc/wsl.conf asks for it (wsl-conf stage).
            ImageType(name="wsl", filename="image.wsl", mime_type="application/gzip", bootable=False,
                      packages=("systemd-sysv", "sudo", "locales", "ca-certificates")),
            ImageType(name="tar", filename="root.tar", mime_type="application/x-tar", bootable=False, packages=()),
        )
    }
)


def get_image_type(name: str) -> ImageType | None:
    return IMAGE_TYPES.get(name)
