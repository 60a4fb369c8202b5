"""Search package names in the same cached lists the depsolve uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import msgspec

from domain.distributions import Distribution
from workers.build import process
from workers.build.deb822 import parse_stanzas
from workers.build.depsolve import (
    LISTS_MAX_AGE,
    TIMEOUT,
    AptRoot,
    Source,
    default_sources,
)


class PackageInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    summary: str


async def search_packages(
    dist: Distribution, query: str, cache_dir: Path, limit: int = 100, *, sources: Sequence[Source] = (),
    architecture: str = "x86_64", max_age: float = LISTS_MAX_AGE,
) -> list[PackageInfo]:  # fmt: skip
    """Packages whose name contains `query`, from the same cached lists as depsolve."""
    apt = AptRoot(cache_dir, dist, sources or default_sources(dist), architecture)
    async with apt.lock():
        apt.prepare()
        await apt.update(max_age, None, None)
        found = await process.run(
            ["apt-cache", "search", "--names-only", re.escape(query)],
            timeout=TIMEOUT,
            env=apt.env,
            capture=True,
        )
        # Names starting with the query first: `openssh` should find openssh-server
        # before libnet-openssh-perl.
        matches = {line.partition(" - ")[0] for line in found.splitlines() if line}
        names = sorted(matches, key=lambda n: (not n.startswith(query), n))[:limit]
        if not names:
            return []
        shown = await process.run(
            ["apt-cache", "show", "--no-all-versions", *names],
            timeout=TIMEOUT,
            env=apt.env,
            capture=True,
        )
    infos = {
        s["Package"]: PackageInfo(
            name=s["Package"], version=s["Version"], summary=s.get("Description", "")
        )
        for s in parse_stanzas(shown)
    }
    return [infos[n] for n in names if n in infos]
