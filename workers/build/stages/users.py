"""Create users with groups, ssh keys and password hashes, with the tree's own shadow tools.

`useradd --root TREE` chroots itself and edits the tree's /etc/passwd,
/etc/shadow and /etc/group with their locking and id allocation rules, which
needs no mounts. Passwords arrive already hashed (build_image hashes plain
ones before the manifest is written), so the manifest never holds a secret in
plain text; chpasswd reads them on stdin, not from the argument vector.
"""

from __future__ import annotations

import os
import re

import msgspec

from workers.build.context import StageContext
from workers.build.stages import tree_files

NAME = "users"
POSIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
CRYPT = re.compile(r"\$(6|y)\$[./0-9A-Za-z$=]+")


class User(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    groups: tuple[str, ...] = ()
    key: str | None = None
    password_hash: str | None = None


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    users: tuple[User, ...]


def check(options: Options) -> None:
    for user in options.users:
        for name in (user.name, *user.groups):
            if not POSIX_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a user or group name")
        if user.password_hash is not None and not CRYPT.fullmatch(user.password_hash):
            raise ValueError(
                f"{user.name}: password_hash must be a $6$ or $y$ crypt hash"
            )
        if user.key is not None and ("\n" in user.key.strip() or not user.key.strip()):
            raise ValueError(f"{user.name}: key must be one line")


async def run(ctx: StageContext, options: Options) -> None:
    for user in options.users:
        await _create(ctx, user)
    hashes = "".join(
        f"{u.name}:{u.password_hash}\n" for u in options.users if u.password_hash
    )
    if hashes:
        await ctx.run(
            ["chpasswd", "--root", ctx.tree, "--encrypted"], stdin=hashes.encode()
        )
    for user in options.users:
        if user.key is not None:
            _authorize(ctx, user.name, user.key)


async def _create(ctx: StageContext, user: User) -> None:
    if user.name == "root":
        return
    existing = tree_files.groups(ctx.tree)
    for group in user.groups:
        if group not in existing:
            # Debian has no `wheel`; a request naming a group gets it, as on upstream.
            await ctx.run(["groupadd", "--root", ctx.tree, group])
            existing.add(group)
    argv = [
        "useradd",
        "--root",
        ctx.tree,
        "--create-home",
        "--shell",
        "/bin/bash",
        "--user-group",
    ]
    if user.groups:
        argv += ["--groups", ",".join(user.groups)]
    await ctx.run([*argv, user.name])


def _authorize(ctx: StageContext, name: str, key: str) -> None:
    entry = tree_files.passwd_entry(ctx.tree, name)
    if entry is None:
        raise ValueError(f"user {name} does not exist in the image")
    uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
    ssh_dir = ctx.path(f"{home}/.ssh")
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    tree_files.write(keys, key.strip() + "\n", 0o600)
    for path in (ssh_dir, keys):
        os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(ssh_dir, 0o700)
