"""Read an OCI image archive back, checking every digest and size on the way."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OciImage:
    outer: list[tarfile.TarInfo]
    index: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]
    layer_gz: bytes

    def layer(self) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
        """The layer's entries by name, with the content of each regular file."""
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.layer_gz))) as archive:
            return {
                m.name: (m, archive.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in archive
            }


def _blob(blobs: dict[str, bytes], descriptor: dict[str, Any]) -> bytes:
    algorithm, _, digest = descriptor["digest"].partition(":")
    assert algorithm == "sha256"
    data = blobs[f"blobs/sha256/{digest}"]
    assert hashlib.sha256(data).hexdigest() == digest, descriptor
    assert len(data) == descriptor["size"], descriptor
    return data


def read_image(path: Path) -> OciImage:
    with tarfile.open(path) as archive:
        outer = archive.getmembers()
        files = {m.name: archive.extractfile(m).read() for m in outer if m.isfile()}  # type: ignore[union-attr]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    [entry] = index["manifests"]
    manifest = json.loads(_blob(files, entry))
    config = json.loads(_blob(files, manifest["config"]))
    [layer] = manifest["layers"]
    layer_gz = _blob(files, layer)
    assert config["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(gzip.decompress(layer_gz)).hexdigest()
    ]
    return OciImage(outer, index, manifest, config, layer_gz)
