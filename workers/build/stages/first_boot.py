"""Run a user's script once, on the image's first boot, from a systemd oneshot unit.

The stamp is written before the script runs, so a failing script is not
retried on every later boot; its output stays in the journal.
"""

from __future__ import annotations

import os

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "first-boot"
SCRIPT = "/usr/local/sbin/image-builder-first-boot"
STAMP = "/var/lib/image-builder/first-boot-done"
UNIT = "image-builder-first-boot.service"
UNIT_TEXT = f"""\
[Unit]
Description=First boot script from the image request
ConditionPathExists=!{STAMP}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStartPre=/usr/bin/mkdir -p /var/lib/image-builder
ExecStartPre=/usr/bin/touch {STAMP}
ExecStart={SCRIPT}
RemainAfterExit=yes
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    script: str


def check(options: Options) -> None:
    if not options.script.strip():
        raise ValueError("script must not be empty")


async def run(ctx: StageContext, options: Options) -> None:
    script = (
        options.script
        if options.script.startswith("#!")
        else "#!/bin/sh\n" + options.script
    )
    write(ctx.path(SCRIPT), script if script.endswith("\n") else script + "\n", 0o755)
    write(ctx.path(f"/etc/systemd/system/{UNIT}"), UNIT_TEXT)
    await ctx.run(["systemctl", f"--root={ctx.tree}", "enable", UNIT], timeout=120)
    os.makedirs(ctx.path("/var/lib/image-builder"), exist_ok=True)
