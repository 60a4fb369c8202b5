"""Assemble a UEFI-bootable raw disk from the tree without loop devices or mounts.

A GPT is written by sfdisk into a sparse raw file. The ESP is made as an
image file (mkfs.vfat + mtools fill it) and copied in at its partition offset
with `dd conv=notrunc`; the root filesystem is made by `mkfs.ext4 -d` (which
copies the tree in) right in its partition (`-E offset=`), as copying a
separate ~1 GB image in took as long as making it. Every disk image type
starts here; `disk-format` turns the raw disk into the platform's format.

systemd-boot (from the tree's own systemd-boot-efi) is the fallback loader
EFI/BOOT/BOOTX64.EFI, so firmware boots it without NVRAM entries; it reads
one loader entry with the kernel and initrd copied onto the ESP.
"""

from __future__ import annotations

import os

import msgspec

from workers.build.context import StageContext
from workers.build.stages import disk

NAME = "raw-disk"
TIMEOUT = 3600.0


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    filename: str
    kernel_cmdline: str
    title: str
    # Fixed identifiers make the disk's layout reproducible; the generator derives them.
    disk_guid: str
    esp_uuid: str
    root_uuid: str
    esp_volume_id: str
    esp_size_mib: int = 256
    # The root gets at least this size, and room for the tree plus a margin.
    root_min_size_mib: int = 2048
    # The whole disk is a multiple of this (the root partition takes the slack).
    size_multiple_mib: int = 1


def check(options: Options) -> None:
    disk.check_ids(
        options.disk_guid, options.esp_uuid, options.root_uuid, options.esp_volume_id
    )
    if "/" in options.filename or options.filename in ("", ".", ".."):
        raise ValueError(f"{options.filename!r} must be a plain file name")
    if not 64 <= options.esp_size_mib <= 4096 or options.root_min_size_mib < 256:
        raise ValueError(
            "esp_size_mib must be 64 to 4096 and root_min_size_mib at least 256"
        )
    if not 1 <= options.size_multiple_mib <= 65536:
        raise ValueError("size_multiple_mib must be 1 to 65536")
    if "\n" in options.kernel_cmdline or "\n" in options.title:
        raise ValueError("kernel_cmdline and title must be one line")


async def run(ctx: StageContext, options: Options) -> None:
    kernel, initrd = disk.find_kernel(ctx.tree)
    layout = disk.layout_for(
        disk.tree_size_mib(ctx.tree), options.esp_size_mib,
        options.root_min_size_mib, options.size_multiple_mib,
    )  # fmt: skip
    esp = ctx.scratch / "esp.img"
    raw = ctx.output_dir / options.filename

    await ctx.run(disk.mkfs_vfat_argv(esp, options.esp_volume_id, layout.esp_mib))
    loader = ctx.scratch / "loader"
    loader.mkdir()
    (loader / "loader.conf").write_text("default debian.conf\ntimeout 0\n")
    (loader / "debian.conf").write_text(
        f"title {options.title}\nlinux /debian/vmlinuz\ninitrd /debian/initrd.img\noptions {options.kernel_cmdline}\n"
    )
    boot_efi = ctx.path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
    if not boot_efi.exists():
        raise ValueError(
            "systemd-bootx64.efi is missing from the tree (package systemd-boot-efi)"
        )
    for argv in disk.esp_argvs(
        esp, boot_efi, kernel, initrd, loader / "loader.conf", loader / "debian.conf"
    ):
        await ctx.run(argv)

    with raw.open("wb") as f:
        f.truncate(layout.total_bytes)
    script = disk.sfdisk_script(
        layout, options.disk_guid, options.esp_uuid, options.root_uuid
    )
    await ctx.run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", raw], stdin=script.encode()
    )
    await ctx.run(disk.dd_argv(esp, raw, layout.esp_offset))
    os.unlink(esp)
    # Straight into the root partition: no ~1 GB image to copy in.
    await ctx.run(
        disk.mkfs_ext4_argv(raw, ctx.tree, options.root_uuid, layout.root_mib, layout.root_offset),
        timeout=TIMEOUT,
    )
