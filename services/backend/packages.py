"""Package search for ``GET /packages``: the apt lists the workers' depsolve reads.

The backend runs apt itself (``aptcache``), in its own cache directory:
``IMAGE_BUILDER_BACKEND_PACKAGE_CACHE_DIR``, by default the worker's
``IMAGE_BUILDER_WORKER_CACHE_DIR``, so on a machine that runs both (and in
embedded mode) they share one apt root per distribution, and a search shows
what the next depsolve there resolves. Lists older than an hour are fetched
again by whichever comes first; the first search of a cold cache waits for
the download.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aptcache.run import AptFailed
from aptcache.search import SearchResult, search_packages
from domain.distributions import DISTRIBUTIONS, get_distribution
from domain.field_errors import FieldError, ValidationFailed

log = logging.getLogger(__name__)


class PackageListsUnavailable(RuntimeError):
    """apt could not fetch or read the lists (the mirror is down, say)."""


class PackageSearch:
    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir

    async def search(self, distribution: str, architecture: str, query: str, limit: int, offset: int) -> SearchResult:
        dist = get_distribution(distribution)
        if dist is None:
            reason = f"unknown distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}"
            raise ValidationFailed([FieldError("distribution", reason)], "package search")
        if architecture not in dist.architectures:
            reason = f"{distribution} is not built for {architecture!r}; it is for {', '.join(dist.architectures)}"
            raise ValidationFailed([FieldError("architecture", reason)], "package search")
        if self.cache_dir is None:
            raise PackageListsUnavailable("package search has no cache directory (IMAGE_BUILDER_BACKEND_PACKAGE_CACHE_DIR)")
        try:
            return await search_packages(
                dist, query, self.cache_dir, limit=limit, offset=offset, architecture=architecture
            )
        except AptFailed as failed:
            log.warning("package search in %s failed: %s", distribution, failed)
            raise PackageListsUnavailable(f"the package lists of {distribution} cannot be read: {failed}") from failed
