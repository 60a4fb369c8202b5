"""The root filesystem's boot configuration: /etc/fstab and /etc/kernel/cmdline.

/etc/kernel/cmdline is what systemd-boot's kernel-install hook uses when a
later kernel update writes new loader entries, so it must match the entry the
raw-disk assembler writes now.
"""

from __future__ import annotations

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "boot-config"


class Mount(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    source: str
    target: str
    type: str
    options: str = "defaults"
    passno: int = 0


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    mounts: tuple[Mount, ...]
    kernel_cmdline: str


def check(options: Options) -> None:
    for mount in options.mounts:
        fields = (mount.source, mount.target, mount.type, mount.options)
        if any(
            not f or any(c.isspace() for c in f) for f in fields
        ) or not mount.target.startswith("/"):
            raise ValueError(
                f"{mount.target!r}: fstab fields must be non-empty, without spaces"
            )
    if "\n" in options.kernel_cmdline:
        raise ValueError("kernel_cmdline must be one line")


async def run(ctx: StageContext, options: Options) -> None:
    lines = [
        f"{m.source}\t{m.target}\t{m.type}\t{m.options}\t0\t{m.passno}"
        for m in options.mounts
    ]
    write(ctx.path("/etc/fstab"), "\n".join(lines) + "\n")
    for mount in options.mounts:
        ctx.path(mount.target).mkdir(parents=True, exist_ok=True)
    write(ctx.path("/etc/kernel/cmdline"), options.kernel_cmdline + "\n")
