"""One package cache for every real build of the session, so each .deb is downloaded once.

Set IMAGE_BUILDER_TEST_CACHE to keep it between runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    kept = os.environ.get("IMAGE_BUILDER_TEST_CACHE")
    yield Path(kept) if kept else tmp_path_factory.mktemp("build-cache")
