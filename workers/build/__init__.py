"""The worker's build pipeline: depsolve, then a manifest of pipelines of stages, run by the executor.

Usage from a worker::

    packages = await depsolve_request(request, cache_dir)
    result = await build_image(request, packages, work_dir, cache_dir, on_stage, on_log, cancel)
"""

from workers.build.build import Artifact, BuildResult, build_image
from workers.build.depsolve import DepsolveFailed, PackageSpec, depsolve
from workers.build.executor import (
    BuildCancelled,
    ManifestInvalid,
    StageFailed,
    execute,
    validate,
)
from workers.build.generate import UnsupportedImage, generate_manifest, packages_for
from workers.build.manifest import Manifest
from workers.build.request import depsolve_request

__all__ = [
    "Artifact",
    "BuildCancelled",
    "BuildResult",
    "DepsolveFailed",
    "Manifest",
    "ManifestInvalid",
    "PackageSpec",
    "StageFailed",
    "UnsupportedImage",
    "build_image",
    "depsolve",
    "depsolve_request",
    "execute",
    "generate_manifest",
    "packages_for",
    "validate",
]
