"""What can be built: ``GET /distributions`` and ``GET /architectures/{distribution}``.

Answered from the domain's tables of distributions and image types; the
shapes follow the public Image Builder API (``arch``, ``image_types``,
``repositories``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import FromPath

from domain.distributions import DISTRIBUTIONS, Distribution, get_distribution
from domain.image_types import IMAGE_TYPES
from services.backend.paths import PREFIX
from services.identity.guards import require_roles


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


def _repositories(distribution: Distribution) -> list[dict[str, Any]]:
    return [
        {"baseurl": distribution.mirror, "suite": distribution.codename, "components": ["main"]},
        {"baseurl": distribution.mirror, "suite": distribution.updates_suite, "components": ["main"]},
        {"baseurl": distribution.security_mirror, "suite": distribution.security_suite, "components": ["main"]},
    ]
