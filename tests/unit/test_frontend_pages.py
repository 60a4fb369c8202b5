"""The frontend's pages against the real stack (issuer, composer, backend on SQLite),
as a person's browser uses them, without the browser (tests/e2e has that)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest

from services.frontend.sse import Message, messages
from tests.backend_service import API
from tests.composer_service import WORKER
from tests.contracts.composer_api import claim, register
from tests.contracts.pipeline import eventually
from tests.frontend_service import forms, Person, signed_in, Stack, worker_moves
from tests.random_refs import random_suffix
from tests.upload_flow import uploading_worker
from workers.aws.config import AwsConfig

TAR = {"distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}]}


@pytest.fixture
async def bob(stack: Stack) -> AsyncIterator[Person]:
    async with signed_in(stack, "bob") as person:
        yield person


async def compose(stack: Stack, client_id: str = "alice-cli", **changes: Any) -> str:
    """A compose recorded through the backend's API by a script of alice's org."""
    async with stack.backend.client(client_id) as http:
        response = await http.post(f"{API}/compose", json={**TAR, **changes})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def backend_compose(stack: Stack, compose_id: str) -> dict[str, Any]:
    async with stack.backend.client("alice-cli") as http:
        return (await http.get(f"{API}/composes/{compose_id}")).json()


async def submitted(stack: Stack, compose_id: str) -> None:
    async def done() -> bool:
        async with stack.backend.client("alice-cli") as http:
            events = (await http.get(f"{API}/composes/{compose_id}/events")).json()["data"]
        return "ComposeSubmitted" in [event["type"] for event in events]

    await eventually(done, f"compose {compose_id} reached the composer", timeout=20)


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-compose-id="([^"]+)"', html)


async def test_a_visitor_signs_in_at_the_issuer_and_lands_on_the_page_asked_for(stack: Stack) -> None:
    person = Person(stack, "alice")
    try:
        first = await person.http.get("/images/new", follow_redirects=False)
        assert first.status_code in (302, 303) and first.headers["location"].startswith("/signin?next=%2Fimages%2Fnew")
        landed = await person.sign_in("/images/new")
    finally:
        await person.close()
    assert landed.status_code == 200
    assert landed.url.path == "/images/new"
    assert "alice" in landed.text and "Step 1 of 7: Image" in landed.text


async def test_the_session_cookie_is_sealed_httponly_and_samesite_lax(stack: Stack) -> None:
    person = Person(stack, "alice")
    try:
        signed_in = await person.sign_in()
        callback = next(r for r in signed_in.history if r.url.path == "/auth/callback")
    finally:
        await person.close()
    cookies = [value for name, value in callback.headers.multi_items() if name == "set-cookie"]
    session = next(c for c in cookies if c.startswith("image_builder_session="))
    attributes = session.lower()
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    # The access token is inside, sealed (AES-GCM): neither it nor the user's name or org can be read.
    sealed = base64.b64decode(session.split(";")[0].split("=", 1)[1].strip('"'))
    assert b"eyJhbGci" not in sealed and b"alice" not in sealed and b"org-a" not in sealed


async def test_a_sign_in_answer_the_frontend_did_not_ask_for_is_refused(stack: Stack) -> None:
    person = Person(stack, "alice")
    try:
        answer = await person.http.get("/auth/callback", params={"code": "stolen", "state": "guessed"})
        after = await person.http.get("/images", follow_redirects=False)
    finally:
        await person.close()
    assert answer.status_code == 400
    assert "Sign-in failed" in answer.text and "not started here" in answer.text
    assert after.status_code in (302, 303)


async def test_a_form_posted_without_its_csrf_token_is_refused(alice: Person) -> None:
    refused = await alice.http.post("/signout", data={})
    still = await alice.page("/images")
    forged = await alice.http.post("/images/new", data={"go": "create", "_csrf_token": "forged" * 10})

    assert refused.status_code == 403 and "Form refused" in refused.text
    assert still.url.path == "/images" and "Sign out" in still.text
    assert forged.status_code == 403


async def test_signing_out_ends_the_session(alice: Person) -> None:
    images = await alice.page("/images")
    gone = await alice.submit(images, "/signout")
    after = await alice.http.get("/images", follow_redirects=False)

    assert gone.url.path == "/signed-out" and "You are signed out" in gone.text
    assert after.status_code in (302, 303) and after.headers["location"].startswith("/signin")


async def test_an_empty_history_says_how_to_create_the_first_image(bob: Person) -> None:
    page = await bob.page("/images")

    assert "No images yet" in page.text and 'href="/images/new"' in page.text
    assert "<table" not in page.text


async def test_the_history_shows_each_image_and_filters_searches_and_pages(stack: Stack, alice: Person) -> None:
    tag = random_suffix()
    web = [await compose(stack, image_name=f"web-{tag}-{n}") for n in range(21)]
    db = await compose(stack, image_name=f"db-{tag}", distribution="debian-13",
                       image_requests=[{"architecture": "x86_64", "image_type": "guest-image"}])  # fmt: skip

    first = await alice.page("/images")
    later = await alice.page(re.search(r'rel="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&"))
    by_name = await alice.page("/images", q=f"DB-{tag}")
    by_distribution = await alice.page("/images", distribution="debian-13")
    by_type = await alice.page("/images", image_type="guest-image")
    by_status = await alice.page("/images", status="failure")

    assert row_ids(first.text) == [db, *reversed(web)][:20]
    assert row_ids(later.text) == list(reversed(web))[19:] and "First page" in later.text
    assert 'rel="next"' not in later.text
    assert row_ids(by_name.text) == [db] and row_ids(by_distribution.text) == [db] and row_ids(by_type.text) == [db]
    assert "No images match" in by_status.text
    row = re.search(rf'<tr data-compose-id="{db}".*?</tr>', first.text, re.DOTALL).group(0)
    for shown in (f"db-{tag}", "debian-13", "guest-image", "Download from this service", "Pending", "None yet"):
        assert shown in row


async def test_an_image_is_created_step_by_step_and_opens_on_its_own_page(stack: Stack, alice: Person) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop"
    step = await alice.page("/images/new")
    step = await alice.submit(step, "/images/new", go="target", image_name="web-server", distribution="debian-13",
                              image_type="tar")  # fmt: skip
    assert "Step 2 of 7: Upload target" in step.text
    step = await alice.submit(step, "/images/new", go="packages")
    step = await alice.submit(step, "/images/new", go="users", packages="nginx, curl\nvim")
    step = await alice.submit(step, "/images/new", add="users", **{"users-0-name": "alice", "users-0-groups": "sudo",
                                                                     "users-0-key": key})  # fmt: skip
    assert 'name="users-1-name"' in step.text
    step = await alice.submit(step, "/images/new", go="system", **{"users-1-name": "bob"})
    step = await alice.submit(step, "/images/new", go="files", hostname="web-1", timezone="Europe/Berlin",
                              languages="en_US.UTF-8", keyboard="us", services_enabled="nginx.service")  # fmt: skip
    step = await alice.submit(step, "/images/new", go="review", first_boot_script="#!/bin/sh\necho hi\n",
                              **{"files-0-path": "/etc/motd", "files-0-mode": "0644", "files-0-data": "Hello\n"})  # fmt: skip
    assert "Step 7 of 7: Review" in step.text and "nginx, curl, vim" in step.text and "/etc/motd" in step.text
    created = await alice.submit(step, "/images/new", go="create")

    assert created.status_code == 200 and re.fullmatch(r"/images/[0-9a-f-]{36}", created.url.path)
    assert "web-server" in created.text and "Your image was requested" in created.text and "Pending" in created.text
    recorded = await backend_compose(stack, created.url.path.rsplit("/", 1)[1])
    assert recorded["request"]["distribution"] == "debian-13"
    image = recorded["request"]["image_requests"][0]
    assert (image["architecture"], image["image_type"], image["upload_targets"][0]["type"]) == ("x86_64", "tar", "local")
    custom = recorded["request"]["customizations"]
    assert custom["packages"] == ["nginx", "curl", "vim"]
    assert [(u["name"], u.get("groups", []), u.get("key")) for u in custom["users"]] == [("alice", ["sudo"], key), ("bob", [], None)]
    assert custom["hostname"] == "web-1" and custom["timezone"]["timezone"] == "Europe/Berlin"
    assert custom["locale"] == {"languages": ["en_US.UTF-8"], "keyboard": "us"}
    assert custom["services"]["enabled"] == ["nginx.service"]
    assert custom["files"][0]["path"] == "/etc/motd" and custom["files"][0]["data"] == "Hello\n"
    assert custom["first_boot_script"] == "#!/bin/sh\necho hi\n"


async def test_the_apis_field_errors_are_shown_next_to_their_fields(alice: Person) -> None:
    step = await alice.page("/images/new")
    fields = {**forms(step.text)["/images/new"], "hostname": "-bad-", "users-0-name": "alice",
              "users-0-key": "not a key", "target": "aws", "aws_region": "nowhere"}  # fmt: skip
    refused = await alice.http.post("/images/new", data={**fields, "go": "create"})

    assert refused.status_code == 400
    # The first step with a problem is shown: the upload target.
    assert "Step 2 of 7: Upload target" in refused.text
    region = re.search(r'<input type="text" id="f-aws_region"[^>]*>', refused.text).group(0)
    assert 'aria-invalid="true"' in region and "f-aws_region-error" in region
    assert re.search(r'id="f-aws_region-error"><span class="visually-hidden">Error: </span>.*AWS region', refused.text)
    summary = re.search(r'<div class="error-summary".*?</div>', refused.text, re.DOTALL).group(0)
    assert 'href="#f-aws_region"' in summary
    assert "Users: " in summary and "OpenSSH" in summary and "System: " in summary
    # What was typed is all still there.
    assert forms(refused.text)["/images/new"]["hostname"] == "-bad-"

    users = await alice.http.post("/images/new", data={**forms(refused.text)["/images/new"], "go": "users",
                                                        "aws_region": "eu-central-1"})  # fmt: skip
    assert 'value="alice"' in users.text and "not a key" in users.text


async def test_a_compose_page_shows_its_phase_timeline_and_why_it_failed(stack: Stack, alice: Person) -> None:
    compose_id = await compose(stack, image_name="doomed")
    await submitted(stack, compose_id)
    async with await worker_moves(stack.composer) as worker:
        job = await claim(worker, await register(worker), ["depsolve"])
        failed = await worker.patch(f"{WORKER}/jobs/{job['token']}",
                                    json={"error": {"reason": "package nginx-extras not found", "details": {"package": "nginx-extras"}}})  # fmt: skip
        assert failed.status_code == 200, failed.text

    async def shown_failed() -> bool:
        return "Failed" in (await alice.page(f"/images/{compose_id}")).text

    await eventually(shown_failed, "the compose page shows the failure", timeout=20)
    page = await alice.page(f"/images/{compose_id}")
    assert "package nginx-extras not found" in page.text and "Why it failed" in page.text
    assert "&#34;package&#34;: &#34;nginx-extras&#34;" in page.text or '"package": "nginx-extras"' in page.text
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page.text, re.DOTALL).group(1)
    assert [m for m in re.findall(r"<strong>(.*?)</strong>", timeline)][:2] == ["Requested", "Handed to the build queue"]
    assert "Status changed</strong>: building" in timeline and "Status changed</strong>: failure" in timeline
    row = await alice.page("/images")
    assert "package nginx-extras not found" in row.text


async def sse(person: Person, path: str) -> tuple[httpx2.Response, AsyncIterator[Message]]:
    request = person.http.build_request("GET", path)
    response = await person.http.send(request, stream=True)
    assert response.status_code == 200, response.status_code
    assert response.headers["content-type"].startswith("text/event-stream")
    return response, aiter(messages(response.aiter_lines()))


async def next_event(stream: AsyncIterator[Message], wanted: str = "compose", timeout: float = 20) -> Message:
    async def find() -> Message:
        async for message in stream:
            if message.event == wanted:
                return message
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_each_status_change_reaches_the_page_as_its_new_row(stack: Stack, alice: Person) -> None:
    response, stream = await sse(alice, "/images/updates")
    try:
        await next_event(stream, "ready")
        compose_id = await compose(stack, image_name="live-one")
        first = msgspec.json.decode((await next_event(stream)).data)
        await submitted(stack, compose_id)
        async with await worker_moves(stack.composer) as worker:
            await claim(worker, await register(worker), ["depsolve"])
            while (change := msgspec.json.decode((await next_event(stream)).data))["status"] != "building":
                pass
    finally:
        await response.aclose()

    assert first["id"] == compose_id and first["status"] == "pending"
    assert f'<tr data-compose-id="{compose_id}" data-status="pending">' in first["row"] and "live-one" in first["row"]
    assert change["id"] == compose_id and change["status_label"] == "Building"
    assert '<span class="status status-building">Building</span>' in change["row"]


async def test_another_orgs_user_sees_none_of_it(stack: Stack, alice: Person, bob: Person) -> None:
    response, stream = await sse(bob, "/images/updates")
    try:
        await next_event(stream, "ready")
        compose_id = await compose(stack, image_name="alices-secret")
        await submitted(stack, compose_id)
        heard = await alice.page(f"/images/{compose_id}")
        with pytest.raises(TimeoutError):
            await next_event(stream, timeout=2)
    finally:
        await response.aclose()

    assert "alices-secret" in heard.text
    assert "No images yet" in (await bob.page("/images")).text
    assert "alices-secret" not in (await bob.page("/images", q="alices")).text
    for path in (f"/images/{compose_id}", f"/images/{compose_id}/live", f"/images/{compose_id}/download",
                 f"/images/{compose_id}/sbom"):  # fmt: skip
        page = await bob.page(path)
        assert page.status_code == 404 and "alices-secret" not in page.text, path
    images = await bob.page("/images")
    removed = await bob.http.post(f"/images/{compose_id}/delete", data={"_csrf_token": bob.csrf_token(images)})
    assert removed.status_code == 404
    assert (await backend_compose(stack, compose_id))["image_name"] == "alices-secret"


async def test_a_built_image_downloads_through_the_frontend_and_the_row_offers_it(stack: Stack, alice: Person, tmp_path: Path) -> None:
    image = b"a small disk image" * 1000
    async with uploading_worker(stack.composer, tmp_path / "worker", AwsConfig(), "disk.tar", image):
        compose_id = await compose(stack, image_name="downloadable")

        async def ready() -> bool:
            return (await backend_compose(stack, compose_id))["status"] == "success"

        await eventually(ready, "the compose succeeded", timeout=60)

    page = await alice.page("/images")
    download = await alice.page(f"/images/{compose_id}/download")
    detail = await alice.page(f"/images/{compose_id}")

    row = re.search(rf'<tr data-compose-id="{compose_id}".*?</tr>', page.text, re.DOTALL).group(0)
    assert "Ready" in row and f'href="/images/{compose_id}/download"' in row
    assert download.status_code == 200 and download.content == image
    assert download.headers["content-disposition"] == 'attachment; filename="disk.tar"'
    assert "Step 4 of 4: Ready" in detail.text and "upload job: success" in detail.text


async def test_a_running_builds_stage_shows_on_its_page(stack: Stack, alice: Person) -> None:
    compose_id = await compose(stack, image_name="staged")
    await submitted(stack, compose_id)
    async with await worker_moves(stack.composer) as worker:
        worker_id = await register(worker)
        depsolve = await claim(worker, worker_id, ["depsolve"])
        done = await worker.patch(f"{WORKER}/jobs/{depsolve['token']}", json={"result": {"packages": []}})
        assert done.status_code == 200, done.text
        build = await claim(worker, worker_id, ["build"])
        reported = await worker.patch(f"{WORKER}/jobs/{build['token']}",
                                      json={"progress": {"stage": "org.osbuild.mkfs.ext4", "done": 2, "total": 5}})  # fmt: skip
        assert reported.status_code == 200, reported.text

        # The history follows the composer's events, so "building" arrives a moment later.
        async def building() -> bool:
            async with stack.backend.client("alice-cli") as http:
                return (await http.get(f"{API}/composes/{compose_id}")).json()["status"] == "building"

        await eventually(building, f"compose {compose_id} building in the history", timeout=20)
        page = await alice.page(f"/images/{compose_id}")

    assert "Step 2 of 4: Building" in page.text
    assert "Build stage 3 of 5: <code>org.osbuild.mkfs.ext4</code>" in page.text


async def test_without_package_lists_the_search_says_so_and_packages_are_still_typed(alice: Person) -> None:
    step = await alice.page("/images/new")
    fields = {**forms(step.text)["/images/new"], "go": "packages"}
    packages = await alice.http.post("/images/new", data=fields)
    searched = await alice.submit(packages, "/images/new", find="1", package_search="nginx", packages="curl")

    assert 'id="f-package_search"' in packages.text
    assert "Package search is unavailable" in searched.text and "Step 3 of 7: Packages" in searched.text
    assert forms(searched.text)["/images/new"]["packages"] == "curl"
