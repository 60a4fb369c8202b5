"""Helpers the customization stages share: files and account ids as the tree sees them."""

from __future__ import annotations

import os
from pathlib import Path


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    os.chmod(path, mode)


def _ids(tree: Path, database: str) -> dict[str, int]:
    ids = {}
    for line in (tree / "etc" / database).read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            ids[fields[0]] = int(fields[2])
    return ids


def user_id(tree: Path, owner: str | int) -> int:
    """A user name resolved in the tree's own /etc/passwd, never the host's."""
    if isinstance(owner, int):
        return owner
    ids = _ids(tree, "passwd")
    if owner not in ids:
        raise ValueError(f"user {owner!r} does not exist in the image")
    return ids[owner]


def group_id(tree: Path, owner: str | int) -> int:
    if isinstance(owner, int):
        return owner
    ids = _ids(tree, "group")
    if owner not in ids:
        raise ValueError(f"group {owner!r} does not exist in the image")
    return ids[owner]


def passwd_entry(tree: Path, name: str) -> list[str] | None:
    for line in (tree / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    return None


def groups(tree: Path) -> set[str]:
    return set(_ids(tree, "group"))
