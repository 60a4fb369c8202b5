"""`image-builder up` as a user starts it: a subprocess on a free port."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from events.engine import create_engine
from events.store import EventStore

from tests.cli import IMAGE_BUILDER, run_cli
from tests.random_refs import new_event, random_stream
from tests.servers._util import free_port

pytestmark = pytest.mark.e2e


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def start_up(port: int, data_dir: Path) -> tuple[str, subprocess.Popen[str], list[str]]:
    """Start `image-builder up`; returns its URL, the process and what it printed first."""
    process = subprocess.Popen(
        [str(IMAGE_BUILDER), "up", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(f"{base}/ready")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"image-builder up did not become ready:\n{process.communicate()[0]}")
        time.sleep(0.2)
    assert process.stdout is not None
    banner = [process.stdout.readline() for _ in range(7)]
    return base, process, banner


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    data_dir = tmp_path / "data"
    base, process, _ = start_up(free_port(), data_dir)
    yield base, process, data_dir
    stop(process)


def test_up_migrates_both_stores_and_reports_them_healthy(embedded: tuple[str, subprocess.Popen[str], Path]) -> None:
    base, _, data_dir = embedded

    assert _get(f"{base}/health") == (200, {"status": "ok"})
    status, stores = _get(f"{base}/status")

    assert status == 200
    assert [(s["service"], s["topic"], s["chain"]["intact"], s["outbox"]) for s in stores] == [
        ("composer", "composer.events.v1", True, {"pending": 0, "published": 0}),
        ("backend", "image-builder.events.v1", True, {"pending": 0, "published": 0}),
    ]
    assert (data_dir / "composer.db").exists() and (data_dir / "image-builder.db").exists()


def test_ctrl_c_stops_up_cleanly(embedded: tuple[str, subprocess.Popen[str], Path]) -> None:
    _, process, _ = embedded

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=30) == 0
    assert "Application shutdown complete" in process.communicate()[0]


async def test_up_relays_events_committed_to_a_store(embedded: tuple[str, subprocess.Popen[str], Path]) -> None:
    base, _, data_dir = embedded
    engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'composer.db'}")
    try:
        await EventStore(engine, outbox_topic="composer.events.v1").append(random_stream(), 0, [new_event()])
    finally:
        await engine.dispose()

    deadline = time.monotonic() + 30
    while (outbox := _get(f"{base}/status")[1][0]["outbox"]) != {"pending": 0, "published": 1}:
        assert time.monotonic() < deadline, f"not relayed: {outbox}"
        time.sleep(0.2)


def test_serve_composer_refuses_to_start_without_an_issuer(tmp_path: Path) -> None:
    refused = run_cli("serve", "composer", env={"IMAGE_BUILDER_OIDC_ISSUER": "", "IMAGE_BUILDER_DATA_DIR": str(tmp_path)})

    assert refused.returncode == 2
    assert "IMAGE_BUILDER_OIDC_ISSUER" in refused.stderr


def _service_account(banner: list[str]) -> tuple[str, str]:
    line = next(line for line in banner if "service account:" in line)
    _, _, rest = line.partition("client id ")
    client_id, _, secret = rest.strip().partition(", secret ")
    return client_id, secret


def _token(base: str, client_id: str, secret: str) -> str:
    request = urllib.request.Request(
        f"{base}/oidc/token", data=b"grant_type=client_credentials", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def _call(base: str, path: str, token: str, body: object | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{base}{path}", data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_up_prints_accounts_that_work_and_keeps_them_and_the_history_across_restarts(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    base, process, banner = start_up(port, data_dir)
    try:
        assert any(f"on {base}" in line for line in banner)
        assert any("sign in as:" in line for line in banner)
        client_id, secret = _service_account(banner)
        token = _token(base, client_id, secret)
        assert _call(base, "/api/image-builder-composer/v2/composes", "not-a-token")[0] == 401
        request = {"distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}
        created, body = _call(base, "/api/image-builder-composer/v2/compose", token, request)
        assert created == 201, body
    finally:
        stop(process)
    assert process.returncode == 0

    base, process, second_banner = start_up(port, data_dir)
    try:
        assert second_banner == banner
        token = _token(base, client_id, secret)
        status, listed = _call(base, "/api/image-builder-composer/v2/composes", token)
        assert status == 200 and [item["id"] for item in listed["items"]] == [body["id"]]
    finally:
        stop(process)


def test_up_serves_the_image_builder_api_whose_history_follows_the_composer(tmp_path: Path) -> None:
    base, process, banner = start_up(free_port(), tmp_path / "data")
    try:
        token = _token(base, *_service_account(banner))
        api = "/api/image-builder/v1"
        request = {"distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}
        created, body = _call(base, f"{api}/compose", token, request)
        assert created == 201, body
        compose_id = body["id"]
        timeline = _wait(base, f"{api}/composes/{compose_id}/events", token, lambda found: len(found["data"]) >= 2)
        assert [event["type"] for event in timeline["data"][:2]] == ["ComposeRequested", "ComposeSubmitted"]
        composer_id = timeline["data"][1]["payload"]["composer_id"]

        # The embedded worker starts on it; canceling on the composer ends it in the backend's history too.
        canceled, _ = _call(base, f"/api/image-builder-composer/v2/composes/{composer_id}/cancel", token, {})
        assert canceled == 200
        final = _wait(base, f"{api}/composes/{compose_id}", token, lambda found: found["status"] == "failure")
        assert final["image_status"]["error"]["reason"] == "canceled"
        assert _get(f"{base}{api}/openapi.json")[0] == 200
    finally:
        stop(process)


def _wait(base: str, path: str, token: str, done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, found = _call(base, path, token)
        if status == 200 and done(found):
            return found
        assert time.monotonic() < deadline, f"{path} never got there: {status} {found}"
        time.sleep(0.2)
