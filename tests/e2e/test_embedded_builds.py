"""The quick start's promise: `image-builder up` builds a real image for the
service account it prints, here driven by the command-line client as a user
would: a TOML blueprint pushed and composed, watched to success, downloaded.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.e2e.test_embedded_up import _service_account, start_up, stop
from tests.servers._util import free_port

pytestmark = pytest.mark.e2e

BLUEPRINT = """\
name = "built-by-up"
distro = "debian-12"

[[packages]]
name = "curl"

[customizations]
hostname = "built-by-up"
"""


def test_up_builds_a_tar_image_for_a_service_account_with_the_cli(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    # The session's package cache: what other tests downloaded is not fetched again.
    monkeypatch.setenv("IMAGE_BUILDER_WORKER_CACHE_DIR", str(cache_dir))
    base, process, banner = start_up(free_port(), data_dir)
    try:
        client_id, secret = _service_account(banner)
        env = {"IMAGE_BUILDER_SERVER": base, "IMAGE_BUILDER_CLIENT_ID": client_id, "IMAGE_BUILDER_CLIENT_SECRET": secret}
        blueprint = tmp_path / "built-by-up.toml"
        blueprint.write_text(BLUEPRINT)

        created = run_cli("compose", "create", "--blueprint", str(blueprint), "--type", "tar", "--json", env=env)
        assert created.returncode == 0, created.stderr
        compose_id = json.loads(created.stdout)["id"]
        watched = run_cli("compose", "status", compose_id, "--watch", env=env, timeout=900)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert "building: stage" in watched.stderr and "succeeded" in watched.stdout
        downloaded = run_cli("compose", "download", compose_id, "-o", str(tmp_path / "image.tar"), env=env)
        assert downloaded.returncode == 0, downloaded.stderr

        with tarfile.open(tmp_path / "image.tar") as tree:
            hostname = tree.extractfile("./etc/hostname")
            assert hostname is not None and hostname.read().decode().strip() == "built-by-up"
            assert "./usr/bin/curl" in tree.getnames()
        listed = run_cli("compose", "list", "--json", env=env)
        assert json.loads(listed.stdout)["data"][0]["status"] == "success"
    finally:
        stop(process)
        os.environ.pop("IMAGE_BUILDER_WORKER_CACHE_DIR", None)
