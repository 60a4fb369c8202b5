"""Write /etc/wsl.conf, which WSL reads when it starts the distribution.

- `[boot] systemd=true` only when systemd is the image's init: WSL would
  otherwise try to start a systemd that is not there;
- `[user] default`: who `wsl -d` logs in as, instead of root;
- `[network] hostname`: WSL names the instance after Windows' computer
  unless told otherwise.
(https://learn.microsoft.com/windows/wsl/wsl-config)
"""

from __future__ import annotations

import msgspec

from workers.build.context import StageContext
from workers.build.stages import hostname, tree_files
from workers.build.stages.users import POSIX_NAME

NAME = "wsl-conf"
SYSTEMD = "/usr/lib/systemd/systemd"


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    systemd: bool = False
    default_user: str | None = None
    hostname: str | None = None


def check(options: Options) -> None:
    if options.default_user is not None and not POSIX_NAME.fullmatch(options.default_user):
        raise ValueError(f"{options.default_user!r} is not a user name")
    if options.hostname is not None:
        hostname.check(hostname.Options(hostname=options.hostname))


def config(options: Options) -> str:
    sections = ["# Written by image-builder.\n"]
    if options.systemd:
        sections.append("[boot]\nsystemd=true\n")
    if options.default_user is not None:
        sections.append(f"[user]\ndefault={options.default_user}\n")
    if options.hostname is not None:
        sections.append(f"[network]\nhostname={options.hostname}\n")
    return "\n".join(sections)


async def run(ctx: StageContext, options: Options) -> None:
    if options.systemd and not ctx.path(SYSTEMD).exists():
        raise ValueError(f"systemd=true, but {SYSTEMD} is missing (package systemd-sysv)")
    if options.default_user is not None and tree_files.passwd_entry(ctx.tree, options.default_user) is None:
        raise ValueError(f"default user {options.default_user} does not exist in the image")
    tree_files.write(ctx.path("/etc/wsl.conf"), config(options))
