"""Make the tree an image rather than one machine: nothing that must be unique, nothing of the host.

- /etc/machine-id empty: systemd generates one on first boot and treats that
  boot as the first (ConditionFirstBoot), as Debian's cloud images do.
- ssh host keys removed and regenerated on first boot by a oneshot unit;
  otherwise every machine made from the image would share one host key.
- mmdebstrap copied the host's /etc/resolv.conf; the image gets its own.
- logs and backup files written during the build go.
"""

from __future__ import annotations

import os

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "finalize"
HOST_KEYS_UNIT = "image-builder-ssh-host-keys.service"
HOST_KEYS_UNIT_TEXT = """\
[Unit]
Description=Generate ssh host keys missing from the image
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
"""
BUILD_LEFTOVERS = (
    "/etc/passwd-",
    "/etc/shadow-",
    "/etc/group-",
    "/etc/gshadow-",
    "/etc/subuid-",
    "/etc/subgid-",
    "/var/cache/ldconfig/aux-cache",
    "/var/log/dpkg.log",
    "/var/log/alternatives.log",
    "/var/log/apt/history.log",
    "/var/log/apt/term.log",
    "/var/log/apt/eipp.log.xz",
)


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


async def run(ctx: StageContext, options: Options) -> None:
    write(ctx.path("/etc/machine-id", follow_last=False), "", 0o444)
    dbus_id = ctx.tree / "var/lib/dbus/machine-id"
    if dbus_id.exists() and not dbus_id.is_symlink():
        dbus_id.unlink()
    ssh_dir = ctx.path("/etc/ssh")
    if ssh_dir.is_dir():
        for key in sorted(ssh_dir.glob("ssh_host_*")):
            key.unlink()
        if ctx.path("/usr/sbin/sshd").exists():
            write(
                ctx.path(f"/etc/systemd/system/{HOST_KEYS_UNIT}"), HOST_KEYS_UNIT_TEXT
            )
            await ctx.run(
                ["systemctl", f"--root={ctx.tree}", "enable", HOST_KEYS_UNIT],
                timeout=120,
            )
    resolv = ctx.tree / "etc/resolv.conf"
    if resolv.exists() or resolv.is_symlink():
        resolv.unlink()
    if ctx.path("/usr/lib/systemd/systemd-resolved").exists():
        os.symlink("../run/systemd/resolve/stub-resolv.conf", resolv)
    else:
        write(resolv, "")
    for leftover in BUILD_LEFTOVERS:
        path = ctx.tree / leftover.lstrip("/")
        if path.is_file() and not path.is_symlink():
            path.unlink()
