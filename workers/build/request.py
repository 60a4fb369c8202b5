"""The depsolve job's entry point: a request's packages, resolved against its repositories."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workers.build.depsolve import PackageSpec, depsolve
from workers.build.generate import packages_for, parse_request, sources_for
from workers.build.process import CancelEvent, LogCallback


async def depsolve_request(
    request: Mapping[str, Any],
    cache_dir: Path,
    *,
    on_log: LogCallback | None = None,
    cancel: CancelEvent | None = None,
) -> list[PackageSpec]:
    dist, image, _ = parse_request(request)
    return await depsolve(
        dist,
        packages_for(request),
        cache_dir,
        sources=sources_for(dist, image),
        architecture=image.architecture,
        on_log=on_log,
        cancel=cancel,
    )
