"""What can be built (distributions, architectures, image types), asked of the backend and kept a while.

The catalog is the same for every user, so one copy per process serves all
pages; it is read with the first user's token and refreshed every few minutes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from services.frontend.backend_api import UserApi

TTL = 300.0


class Architecture(msgspec.Struct, frozen=True):
    name: str
    image_types: tuple[str, ...]


class Distribution(msgspec.Struct, frozen=True):
    name: str
    description: str
    architectures: tuple[Architecture, ...]


class CatalogView(msgspec.Struct, frozen=True):
    distributions: tuple[Distribution, ...]

    @property
    def image_types(self) -> list[str]:
        return sorted({t for d in self.distributions for a in d.architectures for t in a.image_types})

    @property
    def architectures(self) -> list[str]:
        return sorted({a.name for d in self.distributions for a in d.architectures})


class Catalog:
    def __init__(self) -> None:
        self._view: CatalogView | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def view(self, api: UserApi) -> CatalogView:
        async with self._lock:
            if self._view is None or time.monotonic() - self._read_at > TTL:
                self._view = await _read(api)
                self._read_at = time.monotonic()
            return self._view


async def _read(api: UserApi) -> CatalogView:
    distributions: list[dict[str, Any]] = await api.get("/distributions")
    architectures = await asyncio.gather(*(api.get(f"/architectures/{d['name']}") for d in distributions))
    return CatalogView(
        tuple(
            Distribution(
                name=d["name"], description=d.get("description", d["name"]),
                architectures=tuple(Architecture(a["arch"], tuple(a.get("image_types", ()))) for a in arches),
            )
            for d, arches in zip(distributions, architectures, strict=True)
        )
    )  # fmt: skip
