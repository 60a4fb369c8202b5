"""Resolve a path from a request inside a tree, refusing any way out of it.

The tree holds symlinks made by packages (and maybe by earlier customizations):
`/etc/foo` may be a link to `/../../host/etc`. Resolving component by
component, with absolute links taken relative to the tree root, is what a
process chrooted into the tree would see; the result must stay inside.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

MAX_LINKS = 40  # as the kernel's ELOOP limit


class PathEscapes(ValueError):
    pass


def resolve_in_tree(tree: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path of `path` (absolute, as seen from inside the tree) after following links.

    With `follow_last=False` a final symlink is itself the result (to replace
    the link, as /etc/localtime), and only its directory is resolved.
    """
    if not path.startswith("/"):
        raise PathEscapes(f"{path!r} is not an absolute path")
    parent, _, name = path.rpartition("/")
    if not follow_last and name not in ("", ".", ".."):
        return resolve_in_tree(tree, parent or "/") / name
    root = Path(os.path.realpath(tree))
    pending = list(PurePosixPath(path).parts[1:])
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise PathEscapes(f"{path!r} leads out of the image through '..'")
            resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > MAX_LINKS:
                raise PathEscapes(f"{path!r} has too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                # An absolute link points from the tree's own root, not the host's.
                resolved = []
            pending = (
                list(PurePosixPath(target).parts[1 if target.startswith("/") else 0 :])
                + pending
            )
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def inside(tree: Path, path: Path) -> bool:
    root = os.path.realpath(tree)
    return os.path.commonpath([root, os.path.realpath(path)]) == root
