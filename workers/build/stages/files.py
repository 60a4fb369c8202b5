"""Create directories and files with modes and owners, never outside the tree.

Each path is resolved inside the tree (links included) before anything is
written; owners are looked up in the tree's accounts, after the users stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from workers.build.context import StageContext
from workers.build.stages import tree_files

NAME = "files"


class Directory(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: str
    mode: str | None = None
    user: str | int | None = None
    group: str | int | None = None
    ensure_parents: bool = False


class File(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: str
    data: str = ""
    mode: str | None = None
    user: str | int | None = None
    group: str | int | None = None
    ensure_parents: bool = False


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    directories: tuple[Directory, ...] = ()
    files: tuple[File, ...] = ()


def check(options: Options) -> None:
    for entry in (*options.directories, *options.files):
        if (
            not entry.path.startswith("/")
            or ".." in entry.path.split("/")
            or "\0" in entry.path
        ):
            raise ValueError(f"{entry.path!r} must be an absolute path without '..'")
        if entry.mode is not None:
            try:
                if not 0 <= int(entry.mode, 8) <= 0o7777:
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"{entry.path}: {entry.mode!r} is not an octal mode"
                ) from None


async def run(ctx: StageContext, options: Options) -> None:
    for directory in options.directories:
        path = ctx.path(directory.path)
        _parent(path, directory.ensure_parents, directory.path)
        path.mkdir(exist_ok=True)
        _own(ctx.tree, path, directory.mode or "0755", directory.user, directory.group)
    for file in options.files:
        path = ctx.path(file.path)
        _parent(path, file.ensure_parents, file.path)
        if path.is_dir():
            raise ValueError(f"{file.path} is a directory in the image")
        path.write_text(file.data)
        _own(ctx.tree, path, file.mode or "0644", file.user, file.group)


def _parent(path: Path, ensure: bool, shown: str) -> None:
    if ensure:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise ValueError(
            f"the parent directory of {shown} does not exist (set ensure_parents)"
        )


def _own(
    tree: Path, path: Path, mode: str, user: str | int | None, group: str | int | None
) -> None:
    uid = tree_files.user_id(tree, user) if user is not None else 0
    gid = tree_files.group_id(tree, group) if group is not None else 0
    os.chown(path, uid, gid, follow_symlinks=False)
    # chmod after chown: chown clears setuid/setgid bits.
    os.chmod(path, int(mode, 8))
