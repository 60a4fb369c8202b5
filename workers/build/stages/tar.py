"""Assemble the tree into a reproducible tar: sorted names, one mtime, numeric owners.

Owners stay as they are in the tree (a user's home belongs to the user), but
as numbers, so the host's account database never leaks into the archive.
File capabilities (ping's cap_net_raw) travel as pax xattr records. With
`gzip`, the tar is compressed without a timestamp in the gzip header (a WSL
distribution is such a tarball).
(GNU tar's reproducibility recipe: https://www.gnu.org/software/tar/manual/html_section/Reproducibility.html)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from workers.build.context import StageContext
from workers.build.stages import archives

NAME = "tar"
TIMEOUT = 1800.0


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    filename: str
    gzip: bool = False


def check(options: Options) -> None:
    if "/" in options.filename or options.filename in ("", ".", ".."):
        raise ValueError(f"{options.filename!r} must be a plain file name")


def reproducible_options(epoch: int) -> list[str]:
    return [
        "--format=pax", "--sort=name", f"--mtime=@{epoch}", "--numeric-owner",
        "--xattrs", "--xattrs-include=security.capability",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
    ]  # fmt: skip


def argv(tree: Path, output: Path, epoch: int) -> list[str]:
    return [
        "tar", "--create", f"--file={output}", f"--directory={tree}",
        *reproducible_options(epoch), ".",
    ]  # fmt: skip


async def run(ctx: StageContext, options: Options) -> None:
    output = ctx.output_dir / options.filename
    plain = ctx.scratch / "root.tar" if options.gzip else output
    await ctx.run(argv(ctx.tree, plain, ctx.source_date_epoch), timeout=TIMEOUT)
    if options.gzip:
        await asyncio.to_thread(archives.gzip_file, plain, output, ctx.cancel)
