"""The pieces of a GPT disk with an ESP and an ext4 root, as argument vectors and a layout."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
SECTOR = 512
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
# The Discoverable Partitions Specification's type for an x86-64 root.
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
VOLUME_ID = re.compile(r"[0-9A-F]{8}")


@dataclass(frozen=True)
class Layout:
    """1 MiB for the GPT, the ESP, the root, then 1 MiB for the backup GPT."""

    esp_mib: int
    root_mib: int

    @property
    def esp_offset(self) -> int:
        return MIB

    @property
    def root_offset(self) -> int:
        return self.esp_offset + self.esp_mib * MIB

    @property
    def total_bytes(self) -> int:
        return self.root_offset + self.root_mib * MIB + MIB


def layout_for(tree_mib: int, esp_mib: int, root_min_mib: int, multiple_mib: int) -> Layout:
    """Room for the tree plus a quarter and 256 MiB, at least `root_min_mib`;
    the root grows until the whole disk is a multiple of `multiple_mib`."""
    root_mib = max(root_min_mib, tree_mib * 5 // 4 + 256)
    root_mib += -(esp_mib + root_mib + 2) % multiple_mib
    return Layout(esp_mib=esp_mib, root_mib=root_mib)


def check_ids(disk_guid: str, esp_uuid: str, root_uuid: str, volume_id: str) -> None:
    for value in (disk_guid, esp_uuid, root_uuid):
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a UUID") from None
    if not VOLUME_ID.fullmatch(volume_id):
        raise ValueError(
            f"{volume_id!r} is not a FAT volume id (8 upper case hex digits)"
        )


def find_kernel(tree: Path) -> tuple[Path, Path]:
    """The newest kernel in /boot and its initrd."""
    kernels = sorted(
        (tree / "boot").glob("vmlinuz-*"), key=lambda p: _version_key(p.name)
    )
    if not kernels:
        raise ValueError("no kernel in /boot: the image needs a linux-image package")
    kernel = kernels[-1]
    initrd = tree / "boot" / kernel.name.replace("vmlinuz-", "initrd.img-", 1)
    if not initrd.exists():
        raise ValueError(
            f"no initrd for {kernel.name}: the image needs initramfs-tools"
        )
    return kernel, initrd


def _version_key(name: str) -> list[int | str]:
    return [
        int(part) if part.isdigit() else part
        for part in re.split(r"[.-]", name.removeprefix("vmlinuz-"))
    ]


def tree_size_mib(tree: Path) -> int:
    total = 0
    for directory, dirs, files in os.walk(tree):
        for name in dirs + files:
            total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total // MIB + 1


def mkfs_vfat_argv(image: Path, volume_id: str, size_mib: int) -> list[str]:
    # -C creates the image file; its size is given in KiB blocks.
    return [
        "mkfs.vfat",
        "-F",
        "32",
        "-n",
        "ESP",
        "-i",
        volume_id,
        "-C",
        str(image),
        str(size_mib * 1024),
    ]


def esp_argvs(
    esp: Path,
    boot_efi: Path,
    kernel: Path,
    initrd: Path,
    loader_conf: Path,
    entry: Path,
) -> list[list[str]]:
    image = str(esp)
    dirs = [
        "::/EFI",
        "::/EFI/BOOT",
        "::/EFI/systemd",
        "::/loader",
        "::/loader/entries",
        "::/debian",
    ]
    copies = [
        (boot_efi, "::/EFI/BOOT/BOOTX64.EFI"),
        (boot_efi, "::/EFI/systemd/systemd-bootx64.efi"),
        (kernel, "::/debian/vmlinuz"),
        (initrd, "::/debian/initrd.img"),
        (loader_conf, "::/loader/loader.conf"),
        (entry, "::/loader/entries/debian.conf"),
    ]
    return [["mmd", "-i", image, *dirs]] + [
        ["mcopy", "-i", image, str(src), dst] for src, dst in copies
    ]


def mkfs_ext4_argv(image: Path, tree: Path, root_uuid: str, size_mib: int, offset: int = 0) -> list[str]:
    """`offset`: where in `image` the filesystem starts, so it can go straight into its partition."""
    return [
        "mkfs.ext4", "-q", "-F", "-L", "root", "-U", root_uuid,
        # A fixed hash seed and root owner keep the filesystem reproducible and
        # independent of who runs the build.
        "-E", f"root_owner=0:0,hash_seed={root_uuid},offset={offset}",
        "-d", str(tree), str(image), f"{size_mib}M",
    ]  # fmt: skip


def sfdisk_script(layout: Layout, disk_guid: str, esp_uuid: str, root_uuid: str) -> str:
    esp_start, root_start = layout.esp_offset // SECTOR, layout.root_offset // SECTOR
    return (
        "label: gpt\n"
        f"label-id: {disk_guid}\n"
        "unit: sectors\n"
        f'start={esp_start}, size={layout.esp_mib * MIB // SECTOR}, type={ESP_TYPE}, uuid={esp_uuid}, name="ESP"\n'
        f"start={root_start}, size={layout.root_mib * MIB // SECTOR}, type={ROOT_TYPE}, uuid={root_uuid}, "
        'name="root"\n'
    )


def dd_argv(image: Path, disk: Path, offset: int) -> list[str]:
    # conv=sparse keeps the raw disk sparse where the filesystem images are empty.
    return [
        "dd",
        f"if={image}",
        f"of={disk}",
        "bs=1M",
        f"seek={offset}",
        "oflag=seek_bytes",
        "conv=notrunc,sparse",
        "status=none",
    ]
