"""The frontend's blueprint pages against the real stack (issuer, composer, backend on SQLite)."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from tests.backend_service import API
from tests.frontend_service import Person, Stack, forms
from tests.random_refs import random_suffix
from tests.unit.domain.osbuild_blueprints import WEB_SERVER


async def api(stack: Stack, method: str, path: str, **options: Any) -> Any:
    async with stack.backend.client("alice-cli") as http:
        response = await http.request(method, f"{API}{path}", **options)
    assert response.status_code < 300, response.text
    return response.json()


async def import_file(person: Person, name: str, content: bytes, image_type: str = "guest-image") -> Any:
    page = await person.page("/blueprints/import")
    return await person.http.post(
        "/blueprints/import", data={"_csrf_token": person.csrf_token(page), "image_type": image_type},
        files={"blueprint": (name, content, "application/octet-stream")},
    )  # fmt: skip


async def test_a_blueprint_is_made_with_the_form_built_and_its_image_listed_under_it(stack: Stack, alice: Person) -> None:
    empty = await alice.page("/blueprints")
    step = await alice.page("/blueprints/new")
    assert "Create blueprint" in step.text and "Blueprint name" in step.text
    fields = {**forms(step.text)["/images/new"], "image_name": "base-tar", "description": "the smallest",
              "image_type": "tar", "packages": "curl"}  # fmt: skip
    saved = await alice.http.post("/images/new", data={**fields, "go": "save"})
    blueprint_id = saved.url.path.rsplit("/", 1)[1]
    built = await alice.submit(saved, f"/blueprints/{blueprint_id}/build")
    again = await alice.page(f"/blueprints/{blueprint_id}")

    assert "No blueprints yet" in empty.text
    assert saved.url.path.startswith("/blueprints/") and "Saved as version 1." in saved.text
    assert "base-tar" in saved.text and "the smallest" in saved.text and "curl" in saved.text
    assert re.fullmatch(r"/images/[0-9a-f-]{36}", built.url.path) and "base-tar" in built.text
    compose = await api(stack, "GET", f"/composes/{built.url.path.rsplit('/', 1)[1]}")
    assert (compose["blueprint_id"], compose["blueprint_version"]) == (blueprint_id, 1)
    assert f'data-compose-id="{compose["id"]}"' in again.text


async def test_a_blueprint_without_a_name_is_refused_at_the_name(alice: Person) -> None:
    step = await alice.page("/blueprints/new")
    refused = await alice.http.post("/images/new", data={**forms(step.text)["/images/new"], "go": "save"})

    assert refused.status_code == 400 and "Step 1 of 7: Image" in refused.text
    assert re.search(r'id="f-image_name-error">.*</p>', refused.text)


async def test_editing_saves_the_next_version_and_keeps_what_the_form_has_no_inputs_for(stack: Stack, alice: Person) -> None:
    imported = await import_file(alice, "web-server.toml", WEB_SERVER.encode())
    blueprint_id = imported.url.path.rsplit("/", 1)[1]
    step = await alice.page(f"/blueprints/{blueprint_id}/edit")
    assert "Edit blueprint web-server" in step.text
    fields = forms(step.text)["/images/new"]
    saved = await alice.http.post("/images/new", data={**fields, "hostname": "web-2.example.org", "go": "save"})
    first = await alice.page(f"/blueprints/{blueprint_id}", version=1)

    assert "Imported as a new blueprint." in imported.text
    assert "Saved as version 2." in saved.text
    assert 'aria-current="page">Version 1</a>' in first.text and "Version 2</a> (latest)" in first.text
    old = await api(stack, "GET", f"/blueprints/{blueprint_id}", params={"version": 1})
    new = await api(stack, "GET", f"/blueprints/{blueprint_id}", params={"version": 2})
    assert new["customizations"]["hostname"] == "web-2.example.org"
    # Everything else, including what the form does not show, is as it was.
    for field in ("kernel", "timezone", "locale", "users", "services", "packages", "files", "directories", "firewall"):
        assert new["customizations"][field] == old["customizations"][field], field
    assert new["image_requests"] == old["image_requests"] and new["description"] == old["description"]


async def test_an_osbuild_toml_file_is_imported_and_exported_as_toml_and_json(alice: Person) -> None:
    imported = await import_file(alice, "web-server.toml", WEB_SERVER.encode(), image_type="vsphere")
    blueprint_id = imported.url.path.rsplit("/", 1)[1]
    as_toml = await alice.page(f"/blueprints/{blueprint_id}/export", export_format="toml")
    as_json = await alice.page(f"/blueprints/{blueprint_id}/export", export_format="json")

    assert "web-server" in imported.text and "VMware vSphere (VMDK)" in imported.text
    assert as_toml.headers["content-disposition"] == 'attachment; filename="web-server-v1.toml"'
    exported = tomllib.loads(as_toml.text)
    assert exported["name"] == "web-server" and {"name": "nginx", "version": "*"} in exported["packages"]
    assert as_json.headers["content-disposition"] == 'attachment; filename="web-server-v1.json"'
    body = json.loads(as_json.text)
    assert body["image_requests"][0]["image_type"] == "vsphere"
    renamed = json.dumps({**body, "name": "web-server-copy"}).encode()
    copy = await import_file(alice, "copy.json", renamed)
    assert "web-server-copy" in copy.text and "Imported as a new blueprint." in copy.text


async def test_a_file_the_api_refuses_is_shown_with_its_reasons(alice: Person) -> None:
    refused = await import_file(alice, "bad.toml", b'name = "x"\ndistro = "rhel-9"\n[[groups]]\nname = "y"\n')
    unbootable = await import_file(alice, "web-server.toml", WEB_SERVER.encode(), image_type="tar")
    nothing = await import_file(alice, "", b"")

    assert refused.status_code == 400 and "bad.toml could not be imported" in refused.text
    assert "distro" in refused.text and "groups" in refused.text
    # A tar does not boot: its kernel and filesystem settings are refused, by name.
    assert unbootable.status_code == 400 and "customizations.kernel" in unbootable.text
    assert nothing.status_code == 400 and "Choose a blueprint file" in nothing.text


async def test_the_list_searches_by_name_and_pages(stack: Stack, alice: Person) -> None:
    tag = random_suffix()
    for n in range(22):
        await api(stack, "POST", "/blueprints", json={
            "name": f"bp-{tag}-{n:02}", "distribution": "debian-12",
            "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
        })  # fmt: skip

    first = await alice.page("/blueprints")
    second = await alice.page("/blueprints", page_number=2)
    found = await alice.page("/blueprints", q=f"{tag}-07")
    none = await alice.page("/blueprints", q="no-such-blueprint")

    assert first.text.count("data-blueprint-id=") == 20 and "page 1 of 2" in first.text and 'rel="next"' in first.text
    assert second.text.count("data-blueprint-id=") == 2 and 'rel="prev"' in second.text
    assert found.text.count("data-blueprint-id=") == 1 and f"bp-{tag}-07" in found.text
    assert "No blueprints match" in none.text


async def test_another_orgs_person_sees_none_of_alices_blueprints(stack: Stack, alice: Person) -> None:
    imported = await import_file(alice, "web-server.toml", WEB_SERVER.encode())
    blueprint_id = imported.url.path.rsplit("/", 1)[1]
    bob = Person(stack, "bob")
    try:
        await bob.sign_in()
        listing = await bob.page("/blueprints")
        pages = {path: await bob.page(path) for path in (
            f"/blueprints/{blueprint_id}", f"/blueprints/{blueprint_id}/edit", f"/blueprints/{blueprint_id}/export",
        )}  # fmt: skip
        build = await bob.http.post(f"/blueprints/{blueprint_id}/build", data={"_csrf_token": bob.csrf_token(listing)})
    finally:
        await bob.close()

    assert "No blueprints yet" in listing.text
    for path, page in pages.items():
        assert page.status_code == 404 and "web-server" not in page.text, path
    assert build.status_code == 404
