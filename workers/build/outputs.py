"""What a build reports besides its artifacts: installed packages and an SPDX 2.3 SBOM.

Both are read from the tree's dpkg status, i.e. what is installed, not what
was asked for.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from aptcache.deb822 import parse_stanzas


class InstalledPackage(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    arch: str
    source: str | None = None
    homepage: str | None = None
    summary: str | None = None


def installed_packages(tree: Path) -> list[InstalledPackage]:
    status = (tree / "var/lib/dpkg/status").read_text()
    packages = [
        InstalledPackage(
            name=s["Package"], version=s["Version"], arch=s["Architecture"],
            source=s.get("Source", "").split(" ")[0] or None, homepage=s.get("Homepage"),
            summary=s.get("Description"),
        )
        for s in parse_stanzas(status)
        if s.get("Status", "").endswith(" installed")
    ]  # fmt: skip
    return sorted(packages, key=lambda p: p.name)


def _spdx_id(name: str) -> str:
    return "SPDXRef-Package-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def spdx_sbom(
    packages: list[InstalledPackage], image_name: str, distribution: str, created: int
) -> dict[str, Any]:
    """An SPDX 2.3 JSON document: one package per installed .deb, described by the image."""
    digest = hashlib.sha256(msgspec.json.encode(packages)).hexdigest()
    spdx_packages = []
    for p in packages:
        purl = (
            f"pkg:deb/debian/{p.name}@{p.version}?arch={p.arch}&distro={distribution}"
        )
        entry: dict[str, Any] = {
            "SPDXID": _spdx_id(p.name),
            "name": p.name,
            "versionInfo": p.version,
            "supplier": "Organization: Debian",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl,
                }
            ],
        }
        if p.homepage:
            entry["homepage"] = p.homepage
        if p.summary:
            entry["summary"] = p.summary
        if p.source and p.source != p.name:
            entry["sourceInfo"] = f"built from Debian source package {p.source}"
        spdx_packages.append(entry)
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image_name,
        # Derived from the content, so the same packages give the same document.
        "documentNamespace": f"https://image-builder.invalid/spdx/{uuid.UUID(digest[:32])}",
        "creationInfo": {
            "created": datetime.fromtimestamp(created, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "creators": ["Tool: image-builder-worker"],
        },
        "packages": spdx_packages,
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": _spdx_id(p.name),
            }
            for p in packages
        ],
    }
