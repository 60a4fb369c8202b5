"""Enable, disable and mask systemd units with `systemctl --root`, which only edits symlinks."""

from __future__ import annotations

import re

import msgspec

from workers.build.context import StageContext

NAME = "services"
UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+")


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()


def check(options: Options) -> None:
    for unit in (*options.enabled, *options.disabled, *options.masked):
        if not UNIT.fullmatch(unit) or unit.startswith("-"):
            raise ValueError(f"{unit!r} is not a unit name")


def argvs(tree: str, options: Options) -> list[list[str]]:
    commands = []
    for verb, units in (
        ("enable", options.enabled),
        ("disable", options.disabled),
        ("mask", options.masked),
    ):
        if units:
            commands.append(["systemctl", f"--root={tree}", verb, "--", *units])
    return commands


async def run(ctx: StageContext, options: Options) -> None:
    for argv in argvs(str(ctx.tree), options):
        await ctx.run(argv, timeout=120)
