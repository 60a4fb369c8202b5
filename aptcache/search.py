"""Package search in the cached lists a depsolve reads: what ``GET /packages`` answers.

The apt root is the one a depsolve of the same distribution, default
repositories and architecture uses (`aptcache.root`): same lists, refreshed
on the same schedule under the same lock, so where a worker and the backend
share the cache directory a search reads exactly what the last build read,
and it shows the candidate version, the one a depsolve would pick.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import msgspec

from aptcache.deb822 import parse_stanzas
from aptcache.root import LISTS_MAX_AGE, AptRoot, Source, default_sources
from aptcache.run import run_apt
from domain.distributions import Distribution

# apt-get update of a whole distribution takes seconds to a minute; a search itself well under one.
TIMEOUT = 600.0


class PackageInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    # The first line of the package's description.
    summary: str


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    # Every package matching, of which `packages` is the page asked for.
    count: int
    packages: list[PackageInfo]


async def search_packages(
    dist: Distribution, query: str, cache_dir: Path, *, limit: int = 100, offset: int = 0,
    architecture: str = "x86_64", sources: Sequence[Source] = (), max_age: float = LISTS_MAX_AGE,
) -> SearchResult:  # fmt: skip
    """Packages whose name contains `query` (any case), names starting with it first, then by name."""
    apt = AptRoot(cache_dir, dist, sources or default_sources(dist), architecture)
    run = functools.partial(run_apt, env=apt.env, timeout=TIMEOUT)
    async with apt.lock():
        apt.prepare()
        await apt.update(max_age, run)
        found = await run(["apt-cache", "search", "--names-only", re.escape(query)])
        names = ranked({line.partition(" - ")[0] for line in found.splitlines() if line}, query)
        page = names[offset : offset + limit]
        shown = await run(["apt-cache", "show", "--no-all-versions", *page]) if page else ""
    infos = {
        s["Package"]: PackageInfo(name=s["Package"], version=s["Version"], summary=s.get("Description", ""))
        for s in parse_stanzas(shown)
    }
    return SearchResult(count=len(names), packages=[infos[name] for name in page if name in infos])


def ranked(names: set[str], query: str) -> list[str]:
    """`openssh` finds openssh-server before libnet-openssh-perl."""
    prefix = query.lower()
    return sorted(names, key=lambda name: (not name.startswith(prefix), name))
