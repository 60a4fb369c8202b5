"""What can be built: ``GET /distributions``, ``GET /architectures/{distribution}`` and ``GET /packages``.

Distributions and architectures are answered from the domain's tables of
distributions and image types, packages from the cached apt lists
(services/backend/packages.py); the shapes follow the public Image Builder API
(``arch``, ``image_types``, ``repositories``; ``data``, ``meta.count``, ``links``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, Parameter

from domain.distributions import DISTRIBUTIONS, Distribution, get_distribution
from domain.image_types import IMAGE_TYPES
from services.backend.paths import PREFIX
from services.identity.guards import require_roles

PACKAGE_LIMIT = 100


class UnknownDistribution(LookupError):
    def __init__(self, distribution: str) -> None:
        super().__init__(f"distribution {distribution} not found; known: {', '.join(DISTRIBUTIONS)}")
        self.distribution = distribution


class CatalogController(Controller):
    path = PREFIX
    guards = [require_roles("user", "admin")]
    tags = ["catalog"]

    @get("/distributions", sync_to_thread=False)
    def distributions(self) -> list[dict[str, str]]:
        return [{"name": d.name, "description": f"Debian {d.version} ({d.codename})"} for d in DISTRIBUTIONS.values()]

    @get("/architectures/{distribution:str}", sync_to_thread=False)
    def architectures(self, distribution: FromPath[str]) -> list[dict[str, Any]]:
        """Per architecture: the image types it builds and the repositories it builds from."""
        found = get_distribution(distribution)
        if found is None:
            raise UnknownDistribution(distribution)
        return [
            {"arch": arch, "image_types": sorted(IMAGE_TYPES), "repositories": _repositories(found)}
            for arch in found.architectures
        ]

    @get("/packages")
    async def packages(
        self, state: State,
        distribution: FromQuery[str],
        search: str = Parameter(min_length=1, max_length=100, description="part of the package name, any case"),
        architecture: FromQuery[str] = "x86_64",
        limit: int = Parameter(default=PACKAGE_LIMIT, ge=1, le=PACKAGE_LIMIT),
        offset: int = Parameter(default=0, ge=0),
    ) -> dict[str, Any]:  # fmt: skip
        """Packages of the distribution's repositories whose name contains ``search``, with the
        version a build would install; names starting with it first. ``meta.count`` counts every match."""
        found = await state.backend.packages.search(distribution, architecture, search, limit, offset)
        query = {"distribution": distribution, "architecture": architecture, "search": search}
        last = max(0, (found.count - 1) // limit * limit)
        return {
            "meta": {"count": found.count},
            "links": {"first": _packages_link(query, limit, 0), "last": _packages_link(query, limit, last)},
            "data": [{"name": p.name, "summary": p.summary, "version": p.version} for p in found.packages],
        }


def _packages_link(query: dict[str, str], limit: int, offset: int) -> str:
    return f"{PREFIX}/packages?{urlencode({**query, 'limit': limit, 'offset': offset})}"


def _repositories(distribution: Distribution) -> list[dict[str, Any]]:
    return [
        {"baseurl": distribution.mirror, "suite": distribution.codename, "components": ["main"]},
        {"baseurl": distribution.mirror, "suite": distribution.updates_suite, "components": ["main"]},
        {"baseurl": distribution.security_mirror, "suite": distribution.security_suite, "components": ["main"]},
    ]
