"""Built images the composer keeps: served for the ``local`` upload target, and
to the upload jobs that send them on to a cloud.

Uploads stream to a temporary file while their sha256 is computed, and only a
complete upload whose checksum matches what the worker declared is renamed
into place: a half-written or corrupted image is never served.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class ArtifactRejected(ValueError):
    """The upload is not acceptable: bad name, too large, or a checksum mismatch."""


class ArtifactNotFound(LookupError):
    def __init__(self, compose_id: str, name: str) -> None:
        super().__init__(f"compose {compose_id} has no artifact {name!r}")
        self.compose_id = compose_id
        self.name = name


class ArtifactStore:
    def __init__(self, root: Path, max_size: int = 64 * 1024**3) -> None:
        self.root = root
        self.max_size = max_size

    def path(self, compose_id: str, name: str) -> Path:
        if not NAME.match(name) or not NAME.match(compose_id):
            raise ArtifactRejected(f"{name!r} is not a valid artifact name")
        return self.root / compose_id / name

    async def store(self, compose_id: str, name: str, chunks: AsyncIterator[bytes], sha256: str) -> int:
        """Write the upload; returns its size once the checksum matched."""
        target = self.path(compose_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_size:
                        raise ArtifactRejected(f"{name} is larger than {self.max_size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256.lower():
                raise ArtifactRejected(f"{name}: sha256 is {digest.hexdigest()}, the worker declared {sha256}")
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return size
