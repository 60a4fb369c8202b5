"""The frontend in a real browser: Debian's Chromium, headless, driven by Playwright.

The stack is real and over HTTP (tests/frontend_service.py): issuer, composer,
backend on SQLite, the frontend. A real worker process loop takes the compose
(its depsolve waits for the test, so "building" can be seen; its build streams
a small image to the composer as a real build does; its upload job is the real
one), so the status moves exactly as the composer's events make it move.

Screenshots of every page go to $IMAGE_BUILDER_TEST_ARTIFACTS/frontend (a
temporary directory when unset); the path is printed.
"""

from __future__ import annotations

import asyncio
import os
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.frontend_service import Stack, running_stack
from tests.unit.domain.osbuild_blueprints import WEB_SERVER
from tests.upload_flow import uploading_worker
from workers.aws.config import AwsConfig

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
IMAGE = b"a small image, streamed as a real build streams it\n" * 2000


@pytest.fixture
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("IMAGE_BUILDER_TEST_ARTIFACTS")
    where = Path(root) / "frontend" if root else tmp_path_factory.mktemp("frontend-screenshots")
    where.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {where}")
    return where


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'composer.db'}",
                             f"sqlite+aiosqlite:///{tmp_path / 'image-builder.db'}") as stack:  # fmt: skip
        yield stack


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/setup --test installs Debian's chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        await chromium.close()


async def signed_in(browser: Browser, stack: Stack, name: str, **options: object) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(accept_downloads=True, **options)
    page = await context.new_page()
    await page.goto(f"{stack.url}/images")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Username").fill(name)
    await page.get_by_label("Password").fill(stack.passwords[name])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Images", exact=True)).to_be_visible()
    return context, page


async def shot(page: Page, artifacts: Path, name: str) -> None:
    await page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


async def test_a_person_creates_an_image_watches_it_build_live_and_downloads_it(
    stack: Stack, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    context, page = await signed_in(browser, stack, "alice")
    await expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    await shot(page, artifacts, "01-images-empty")

    # Create image, step by step.
    await page.get_by_role("link", name="Create your first image").click()
    await page.get_by_label("Image name").fill("browser-made")
    await page.get_by_label("Image type").select_option("tar")
    await shot(page, artifacts, "02-create-image")
    await page.get_by_role("button", name="Next: Upload target").click()
    await expect(page.get_by_role("radio", name="Download from this service")).to_be_checked()
    await shot(page, artifacts, "03-create-target")
    await page.get_by_role("button", name="Next: Packages").click()
    await page.get_by_label("Packages to install").fill("nginx curl")
    await shot(page, artifacts, "04-create-packages")
    await page.get_by_role("button", name="Next: Users").click()
    await page.get_by_label("User name").fill("alice")
    await page.get_by_label("SSH public key").fill("not a key")
    await shot(page, artifacts, "05-create-users")
    await page.get_by_role("button", name="Next: System").click()
    await page.get_by_label("Host name").fill("web-1")
    await page.get_by_label("Time zone").fill("Europe/Berlin")
    await shot(page, artifacts, "06-create-system")
    await page.get_by_role("button", name="Next: Files and first boot").click()
    await page.get_by_label("Path").fill("/etc/motd")
    await page.get_by_label("Contents").fill("Built in a browser test\n")
    await shot(page, artifacts, "07-create-files")
    await page.get_by_role("button", name="Next: Review").click()
    await expect(page.get_by_text("nginx, curl")).to_be_visible()
    await shot(page, artifacts, "08-create-review")

    # The API refuses the key: the users step comes back with the error at the field.
    await page.get_by_role("button", name="Create image").click()
    key = page.get_by_label("SSH public key")
    await expect(key).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-users-0-key-error")).to_contain_text("not an OpenSSH public key")
    await expect(page.get_by_role("alert")).to_contain_text("The image could not be created")
    await shot(page, artifacts, "09-create-field-error")
    await key.fill("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop")
    await page.get_by_role("button", name="Review", exact=True).click()
    await page.get_by_role("button", name="Create image").click()

    await expect(page.get_by_role("heading", name="browser-made")).to_be_visible()
    await expect(page.get_by_text("Your image was requested")).to_be_visible()
    compose_id = page.url.split("/images/")[1].split("?")[0]
    await expect(page.locator("[data-cell=status]")).to_have_text("Pending")
    await shot(page, artifacts, "10-compose-pending")

    # The list, live: the status changes without a reload as the worker moves the compose.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Images").click()
    await expect(page.locator("body")).to_have_attribute("data-live", "on")
    await page.evaluate("window.notReloaded = true")
    row = page.locator(f'tr[data-compose-id="{compose_id}"]')
    gate = asyncio.Event()
    async with uploading_worker(stack.composer, tmp_path / "worker", AwsConfig(), "browser-made.tar", IMAGE, gate):
        await expect(row.locator("[data-cell=status]")).to_have_text("Building", timeout=20_000)
        await shot(page, artifacts, "11-images-building")
        gate.set()
        await expect(row.locator("[data-cell=status]")).to_have_text("Ready", timeout=30_000)
    assert await page.evaluate("window.notReloaded") is True
    # One connection carried it all: no reconnect was needed.
    await expect(page.locator("body")).to_have_attribute("data-live-connects", "1")
    await expect(page.get_by_role("status")).to_contain_text("is now Ready")
    await expect(row.get_by_role("link", name="Download browser-made")).to_be_visible()
    await shot(page, artifacts, "12-images-ready")

    # Its page: phase, timeline, log; the download is the image.
    await row.get_by_role("link", name="browser-made", exact=True).click()
    await expect(page.get_by_text("Step 4 of 4: Ready")).to_be_visible()
    timeline = page.locator("ol.timeline")
    await expect(timeline).to_contain_text("Requested")
    await expect(timeline).to_contain_text("Status changed: success")
    await expect(page.get_by_text("upload job: success")).to_be_visible()
    await shot(page, artifacts, "13-compose-ready")
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Download browser-made").click()
    download = await waiting.value
    assert download.suggested_filename == "browser-made.tar"
    assert Path(await download.path()).read_bytes() == IMAGE

    # Phone width: the same list, one card per image.
    phone, phone_page = await signed_in(browser, stack, "alice", viewport={"width": 390, "height": 844})
    await expect(phone_page.locator(f'tr[data-compose-id="{compose_id}"]')).to_be_visible()
    await shot(phone_page, artifacts, "14-images-phone")
    await phone.close()

    # Another org's person sees none of it.
    other, bob = await signed_in(browser, stack, "bob")
    await expect(bob.get_by_role("heading", name="No images yet")).to_be_visible()
    await shot(bob, artifacts, "15-other-org-images")
    await bob.goto(f"{stack.url}/images/{compose_id}")
    await expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(bob.locator("main")).not_to_contain_text("browser-made")
    await shot(bob, artifacts, "16-other-org-compose")
    await other.close()

    # Signing out.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    await shot(page, artifacts, "17-signed-out")
    await page.goto(f"{stack.url}/images")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert re.search(r"/oidc/authorize|/authorize", page.url)
    await context.close()


async def test_a_person_imports_an_osbuild_toml_blueprint_edits_it_and_builds_from_it(
    stack: Stack, browser: Browser, artifacts: Path, tmp_path: Path
) -> None:
    blueprint = tmp_path / "web-server.toml"
    blueprint.write_text(WEB_SERVER)
    context, page = await signed_in(browser, stack, "alice")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Blueprints").click()
    await expect(page.get_by_role("heading", name="No blueprints yet")).to_be_visible()
    await shot(page, artifacts, "20-blueprints-empty")

    await page.get_by_role("link", name="Import", exact=True).click()
    await page.get_by_label("Blueprint file").set_input_files(str(blueprint))
    await page.get_by_label("Image type (for a TOML file)").select_option("guest-image")
    await shot(page, artifacts, "21-blueprint-import")
    await page.get_by_role("button", name="Import").click()
    await expect(page.get_by_role("heading", name="web-server", exact=True)).to_be_visible()
    await expect(page.get_by_text("Imported as a new blueprint.")).to_be_visible()
    await shot(page, artifacts, "22-blueprint-imported")

    # Edit: the form opens on the latest version; saving makes version 2.
    await page.get_by_role("link", name="Edit (saves version 2)").click()
    await expect(page.get_by_label("Blueprint name")).to_have_value("web-server")
    await page.get_by_role("button", name="Review", exact=True).click()
    await page.get_by_role("button", name="Save as a new version").click()
    await expect(page.get_by_text("Saved as version 2.")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Versions").get_by_role("link")).to_have_count(2)
    await shot(page, artifacts, "23-blueprint-version-2")

    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Export TOML").click()
    exported = tomllib.loads(Path(await (await waiting.value).path()).read_text())
    assert exported["name"] == "web-server" and exported["version"]

    await page.get_by_role("button", name="Build image from version 2").click()
    await expect(page.get_by_role("heading", name="web-server")).to_be_visible()
    await expect(page.get_by_text("Your image was requested")).to_be_visible()
    await shot(page, artifacts, "24-compose-from-blueprint")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Blueprints").click()
    await expect(page.locator("tr[data-blueprint-id]")).to_have_count(1)
    await shot(page, artifacts, "25-blueprints")
    await context.close()
