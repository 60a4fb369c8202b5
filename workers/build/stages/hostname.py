"""Set the host name: /etc/hostname, and /etc/hosts so the name resolves without DNS."""

from __future__ import annotations

import re

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "hostname"
LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    hostname: str


def check(options: Options) -> None:
    if len(options.hostname) > 253 or not all(
        LABEL.fullmatch(p) for p in options.hostname.split(".")
    ):
        raise ValueError(f"{options.hostname!r} is not a host name")


async def run(ctx: StageContext, options: Options) -> None:
    write(ctx.path("/etc/hostname"), options.hostname + "\n")
    short = options.hostname.split(".")[0]
    names = (
        options.hostname if short == options.hostname else f"{options.hostname} {short}"
    )
    write(ctx.path("/etc/hosts"), (
        "127.0.0.1\tlocalhost\n"
        f"127.0.1.1\t{names}\n"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\t\tip6-allnodes\n"
        "ff02::2\t\tip6-allrouters\n"
    ))  # fmt: skip
