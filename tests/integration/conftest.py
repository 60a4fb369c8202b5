"""What the integration tier shares: one package cache for every real build of the
session, so each .deb is downloaded once (set IMAGE_BUILDER_TEST_CACHE to keep it
between runs), and the services' databases as two PostgreSQL databases."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    kept = os.environ.get("IMAGE_BUILDER_TEST_CACHE")
    yield Path(kept) if kept else tmp_path_factory.mktemp("build-cache")


@pytest.fixture
def composer_database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def backend_database_url(postgres_url_factory: Callable[..., str]) -> str:
    return postgres_url_factory("backend")
