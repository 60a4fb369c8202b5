"""`image-builder up` serves the web frontend at `/`, signed into with the user it prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2
import pytest

from tests.e2e.test_embedded_up import start_up, stop
from tests.frontend_service import forms
from tests.servers._util import free_port

pytestmark = pytest.mark.e2e


async def test_up_serves_the_frontend_and_its_printed_user_signs_in(tmp_path: Path) -> None:
    base, process, banner = start_up(free_port(), tmp_path / "data")
    try:
        assert any(f"web frontend:      {base}/" in line for line in banner)
        username, password = re.search(r"sign in as:\s+(\S+) / (\S+)", "".join(banner)).groups()
        secrets = json.loads((tmp_path / "data" / "embedded-secrets.json").read_text())
        async with httpx2.AsyncClient(base_url=base, follow_redirects=True, timeout=30) as browser:
            login = await browser.get("/")
            action, fields = next((a, f) for a, f in forms(login.text).items() if "csrf_token" in f)
            images = await browser.post(action, data={**fields, "username": username, "password": password})
            new = await browser.get("/images/new")
            css = await browser.get("/static/app.css")
            api = await browser.get("/api/image-builder/v1/composes")
    finally:
        stop(process)

    assert login.url.path == "/oidc/authorize" and "embedded-frontend" in login.text
    assert secrets["frontend_client_secret"] and len(secrets["frontend_session_secret"]) >= 32
    assert images.url.path == "/images" and "No images yet" in images.text and username in images.text
    assert "Step 1 of 7: Image" in new.text and css.status_code == 200
    # The session cookie is the frontend's: the API still wants a bearer token.
    assert api.status_code == 401
