"""Turn the raw disk `raw-disk` left in the output directory into the platform's format.

- qcow2 for qemu/KVM guests;
- vhd: a fixed-size VHD as Azure imports it. `force_size` keeps the virtual
  size exactly the raw size instead of rounding it to a CHS geometry, so a
  whole number of MiB stays one (Azure refuses anything else);
- vmdk: stream-optimised, the compressed variant vSphere imports (OVF/OVA);
- gce-tar: GCE's `disk.raw` inside a reproducible tar.gz.

The raw disk is removed once the converted one is written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import msgspec

from workers.build.context import StageContext
from workers.build.stages import archives
from workers.build.stages.disk import MIB

NAME = "disk-format"
TIMEOUT = 3600.0
# It reads only the output directory: the executor may remove the tree meanwhile.
USES_TREE = False
Format = Literal["qcow2", "vhd", "vmdk", "gce-tar"]
QEMU_IMG_OUTPUT: dict[str, list[str]] = {
    "qcow2": ["-O", "qcow2"],
    "vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
    "vmdk": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
}


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Both are names in the output directory.
    source: str
    filename: str
    format: Format


def check(options: Options) -> None:
    for name in (options.source, options.filename):
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"{name!r} must be a plain file name")
    if options.source == options.filename:
        raise ValueError("the converted disk needs a name of its own")


def qemu_img_argv(format: Format, source: Path, target: Path) -> list[str]:
    return ["qemu-img", "convert", "-f", "raw", *QEMU_IMG_OUTPUT[format], str(source), str(target)]  # fmt: skip


async def run(ctx: StageContext, options: Options) -> None:
    source = ctx.output_dir / options.source
    target = ctx.output_dir / options.filename
    if options.format == "gce-tar":
        await asyncio.to_thread(
            archives.gce_tar_gz, source, target, ctx.source_date_epoch, ctx.cancel
        )
    else:
        if options.format == "vhd" and source.stat().st_size % MIB:
            raise ValueError(
                f"{options.source} is not a whole number of MiB, which Azure needs"
            )
        await ctx.run(qemu_img_argv(options.format, source, target), timeout=TIMEOUT)
    source.unlink()
