"""Set the time zone (the /etc/localtime link tzdata reads) and NTP servers for timesyncd."""

from __future__ import annotations

import os
import re

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "timezone"
ZONE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    zone: str | None = None
    ntpservers: tuple[str, ...] = ()


def check(options: Options) -> None:
    if options.zone is not None and not ZONE.fullmatch(options.zone):
        raise ValueError(f"{options.zone!r} is not a time zone name")
    for server in options.ntpservers:
        if not server or any(c.isspace() for c in server):
            raise ValueError(f"{server!r} is not a host name")


async def run(ctx: StageContext, options: Options) -> None:
    if options.zone is not None:
        if not ctx.path(f"/usr/share/zoneinfo/{options.zone}").is_file():
            raise ValueError(f"time zone {options.zone} is not in the image's tzdata")
        localtime = ctx.path("/etc/localtime", follow_last=False)
        localtime.unlink(missing_ok=True)
        os.symlink(f"/usr/share/zoneinfo/{options.zone}", localtime)
        write(ctx.path("/etc/timezone"), options.zone + "\n")
    if options.ntpservers:
        write(
            ctx.path("/etc/systemd/timesyncd.conf.d/50-image-builder.conf"),
            f"[Time]\nNTP={' '.join(options.ntpservers)}\n",
        )
