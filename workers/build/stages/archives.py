"""Reproducible gzip streams for the assemblers, written in a worker thread.

A gzip header holds a timestamp and a file name; both are left out (mtime 0,
no name), so equal input gives equal bytes, as `gzip -n` does. The functions
block: stages call them with `asyncio.to_thread`, and they stop between two
chunks once the build's cancel event is set.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from workers.build import process
from workers.build.process import CancelEvent

CHUNK = 1 << 20
LEVEL = 6  # gzip(1)'s default: most of level 9's ratio at a fraction of its time


@dataclass(frozen=True)
class Gzipped:
    """What an OCI descriptor needs of a compressed layer."""

    uncompressed_sha256: str
    sha256: str
    size: int


class CancellableReader:
    """A file's reads, refused once the build is cancelled."""

    def __init__(self, source: BinaryIO, cancel: CancelEvent | None) -> None:
        self.source = source
        self.cancel = cancel

    def read(self, size: int = -1) -> bytes:
        if process.is_cancelled(self.cancel):
            raise process.Cancelled()
        return self.source.read(size)


def _gzip_writer(target: BinaryIO) -> gzip.GzipFile:
    return gzip.GzipFile(
        filename="", mode="wb", fileobj=target, mtime=0, compresslevel=LEVEL
    )


def gzip_file(source: Path, target: Path, cancel: CancelEvent | None = None) -> Gzipped:
    """Compress `source` into `target`; the digests of both sides come back."""
    uncompressed = hashlib.sha256()
    with source.open("rb") as raw_in, target.open("wb") as raw_out:
        reader = CancellableReader(raw_in, cancel)
        with _gzip_writer(raw_out) as out:
            while chunk := reader.read(CHUNK):
                uncompressed.update(chunk)
                out.write(chunk)
    compressed = hashlib.sha256()
    with target.open("rb") as f:
        while chunk := f.read(CHUNK):
            compressed.update(chunk)
    return Gzipped(
        uncompressed_sha256=uncompressed.hexdigest(),
        sha256=compressed.hexdigest(),
        size=target.stat().st_size,
    )


def gce_tar_gz(
    raw_disk: Path, target: Path, mtime: int, cancel: CancelEvent | None = None
) -> None:
    """The archive GCE imports: a gzipped GNU tar holding exactly one file, `disk.raw`.

    Streamed (tar into gzip into the file), so the raw disk is never copied
    whole; holes are written as zeros, which gzip shrinks to almost nothing.
    (https://cloud.google.com/compute/docs/import/import-existing-image)
    """
    info = tarfile.TarInfo("disk.raw")
    info.size = raw_disk.stat().st_size
    info.mtime = mtime
    info.mode = 0o644
    with (
        raw_disk.open("rb") as raw_in,
        target.open("wb") as raw_out,
        _gzip_writer(raw_out) as out,
        tarfile.TarFile(fileobj=out, mode="w", format=tarfile.GNU_FORMAT, copybufsize=CHUNK) as archive,
    ):  # fmt: skip
        archive.addfile(info, CancellableReader(raw_in, cancel))  # type: ignore[arg-type]
