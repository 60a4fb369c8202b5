"""The quick start's promise: `image-builder up` builds a real image through its HTTP API."""

from __future__ import annotations

import io
import os
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_embedded_up import _call, _service_account, _token, start_up, stop
from tests.servers._util import free_port

pytestmark = pytest.mark.e2e

COMPOSE = "/api/image-builder-composer/v2"


def _download(base: str, path: str, token: str) -> bytes:
    request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def test_up_builds_a_tar_image_for_a_service_account(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Reuse the build tests' package cache when one is kept (CI sets none: a cold build).
    shared_cache = os.environ.get("IMAGE_BUILDER_TEST_CACHE")
    if shared_cache:
        os.environ["IMAGE_BUILDER_WORKER_CACHE_DIR"] = shared_cache
    base, process, banner = start_up(free_port(), data_dir)
    try:
        token = _token(base, *_service_account(banner))
        request = {
            "distribution": "debian-12",
            "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
            "customizations": {"packages": ["curl"], "hostname": "built-by-up"},
        }
        created, body = _call(base, f"{COMPOSE}/compose", token, request)
        assert created == 201, body
        compose_id = body["id"]

        deadline, status = time.monotonic() + 900, {}
        while time.monotonic() < deadline:
            _, status = _call(base, f"{COMPOSE}/composes/{compose_id}", token)
            if status["status"] in ("success", "failure"):
                break
            time.sleep(2)
        assert status.get("status") == "success", status

        _, metadata = _call(base, f"{COMPOSE}/composes/{compose_id}/metadata", token)
        assert "curl" in {package["name"] for package in metadata["packages"][0]}
        url = status["image_status"]["upload_status"]["options"]["url"]
        image = _download(base, url, token)
        with tarfile.open(fileobj=io.BytesIO(image)) as tree:
            hostname = tree.extractfile("./etc/hostname")
            assert hostname is not None and hostname.read().decode().strip() == "built-by-up"
    finally:
        stop(process)
        os.environ.pop("IMAGE_BUILDER_WORKER_CACHE_DIR", None)
