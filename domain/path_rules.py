"""Rules for the files and directories a request puts into the image."""

from __future__ import annotations

import posixpath
import re

from domain.customizations import Directory, File, Owner
from domain.names import posix_name_problem, utf8_size
from domain.shape import Walk, at, item

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 1000
# Kernel-provided filesystems mounted over the tree at boot: anything written
# there during the build is hidden, so asking for it is a mistake.
VIRTUAL_TREES = ("/proc", "/sys", "/dev", "/run")
# Files the build writes from other customizations; a raw copy would be
# overwritten or would fight them.
MANAGED_FILES = {
    "/etc/fstab": "filesystem",
    "/etc/passwd": "users",
    "/etc/shadow": "users",
    "/etc/group": "users",
    "/etc/gshadow": "users",
    "/etc/hostname": "hostname",
}
# Octal with an optional leading 0, at most 07777 (setuid, setgid, sticky + rwx).
MODE = re.compile(r"0?[0-7]{3,4}")
MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown


def path_problem(path: str) -> str | None:
    if not path.isprintable():
        return "must not contain NUL, newlines or other control characters"
    if not path.startswith("/"):
        return "must be an absolute path (starting with '/')"
    if ".." in path.split("/"):
        return "must not contain '..' components"
    if "//" in path or (path != "/" and path.endswith("/")) or posixpath.normpath(path) != path:
        return "must be normalized: no '//', '.' components or trailing '/'"
    if path == "/":
        return "must name something below '/'"
    if len(path) > 4096 or any(len(part.encode("utf-8")) > 255 for part in path.split("/")):
        return "is too long (a path at most 4096 characters, each name at most 255 bytes)"
    for tree in VIRTUAL_TREES:
        if path == tree or path.startswith(tree + "/"):
            return f"is under {tree}, a virtual filesystem mounted at boot; nothing written there survives"
    return None


def _check_common(entry: File | Directory, path: str, walk: Walk) -> None:
    if problem := path_problem(entry.path):
        walk.refuse(at(path, "path"), problem)
    if entry.mode is not None and not MODE.fullmatch(entry.mode):
        walk.refuse(at(path, "mode"), f"{entry.mode!r} is not an octal mode like '0644' (at most '07777')")
    for name in ("user", "group"):
        if (problem := _owner_problem(getattr(entry, name))) is not None:
            walk.refuse(at(path, name), problem)


def _owner_problem(owner: Owner | None) -> str | None:
    if owner is None:
        return None
    if isinstance(owner, int):
        return None if 0 <= owner <= MAX_ID else f"an id must be between 0 and {MAX_ID}"
    return posix_name_problem(owner)


def check_file(entry: File, path: str, walk: Walk) -> None:
    _check_common(entry, path, walk)
    if entry.path in MANAGED_FILES:
        walk.refuse(at(path, "path"), f"is written by the build; use the {MANAGED_FILES[entry.path]} customization")
    size = utf8_size(entry.data)
    if size is None:
        walk.refuse(at(path, "data"), "is not valid Unicode text (it holds an unpaired surrogate)")
    elif size > MAX_FILE_BYTES:
        walk.refuse(at(path, "data"), f"is {size} bytes; a file may hold at most {MAX_FILE_BYTES} bytes (1 MiB)")


def check_directory(entry: Directory, path: str, walk: Walk) -> None:
    _check_common(entry, path, walk)


def check_files(files: tuple[File, ...], path: str, walk: Walk) -> None:
    _check_count(len(files), path, walk)
    _check_unique([f.path for f in files], path, walk)
    total = sum(utf8_size(f.data) or 0 for f in files)
    if total > MAX_FILES_BYTES:
        walk.refuse(path, f"hold {total} bytes together; at most {MAX_FILES_BYTES} bytes (16 MiB) are allowed")


def check_directories(directories: tuple[Directory, ...], path: str, walk: Walk) -> None:
    _check_count(len(directories), path, walk)
    _check_unique([d.path for d in directories], path, walk)


def check_files_against_directories(files: tuple[File, ...], directories: tuple[Directory, ...],
                                    path: str, walk: Walk) -> None:
    """A path cannot be both a file and a directory."""
    directory_paths = {d.path for d in directories}
    for i, f in enumerate(files):
        if f.path in directory_paths:
            walk.refuse(at(item(at(path, "files"), i), "path"), f"{f.path} is also listed as a directory")


def _check_count(count: int, path: str, walk: Walk) -> None:
    if count > MAX_ENTRIES:
        walk.refuse(path, f"has {count} entries; at most {MAX_ENTRIES} are allowed")


def _check_unique(paths: list[str], path: str, walk: Walk) -> None:
    seen: set[str] = set()
    for i, p in enumerate(paths):
        if p in seen:
            walk.refuse(at(item(path, i), "path"), f"{p} is listed more than once")
        seen.add(p)
