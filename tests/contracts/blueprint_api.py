"""Blueprints through the backend's API, beside a real composer and issuer.

Not collected by itself: each database (SQLite, PostgreSQL) subclasses
``BlueprintContract`` and provides ``composer_database_url`` and
``backend_database_url``, as for tests/contracts/backend_api.py.
"""

from __future__ import annotations

import copy
import tomllib
from typing import Any

from events.engine import create_engine
from events.store import EventStore
from services.backend.blueprint_records import blueprint_stream
from services.composer.records import compose_stream as composer_stream
from tests.backend_service import API, Backend
from tests.contracts.backend_harness import BackendFixtures
from tests.contracts.composer_api import every_stored_value
from tests.contracts.pipeline import eventually
from tests.unit.domain.osbuild_blueprints import WEB_SERVER

BLUEPRINTS = f"{API}/blueprints"

BLUEPRINT: dict[str, Any] = {
    "name": "web-server",
    "description": "nginx on a small disk",
    "distribution": "debian-12",
    "image_requests": [
        {"architecture": "x86_64", "image_type": "guest-image"},
        {"architecture": "x86_64", "image_type": "tar"},
    ],
    "customizations": {"packages": ["nginx"], "hostname": "web-1"},
}


def blueprint_with(**changes: Any) -> dict[str, Any]:
    found = copy.deepcopy(BLUEPRINT)
    found.update(changes)
    return found


class BlueprintContract(BackendFixtures):

    # -- helpers --------------------------------------------------------------------

    async def create(self, backend: Backend, body: dict[str, Any] = BLUEPRINT, client_id: str = "alice-cli") -> str:
        async with backend.client(client_id) as http:
            response = await http.post(BLUEPRINTS, json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def get(self, backend: Backend, path: str, client_id: str = "alice-cli", **params: Any) -> Any:
        async with backend.client(client_id) as http:
            response = await http.get(f"{API}{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def compose(self, backend: Backend, blueprint_id: str, choice: dict[str, Any] | None = None) -> dict[str, Any]:
        async with backend.client("alice-cli") as http:
            response = await http.post(f"{BLUEPRINTS}/{blueprint_id}/compose", json=choice or {})
        assert response.status_code == 201, response.text
        return response.json()

    async def composer_request(self, backend: Backend, composer_database_url: str, compose_id: str) -> dict[str, Any]:
        """The request as the composer stored it, once the backend has handed the compose over."""
        submitted: dict[str, Any] = {}

        async def handed_over() -> bool:
            events = (await self.get(backend, f"/composes/{compose_id}/events"))["data"]
            submitted.update(next((e["payload"] for e in events if e["type"] == "ComposeSubmitted"), {}))
            return bool(submitted)

        await eventually(handed_over, f"compose {compose_id} handed to the composer", timeout=20)
        engine = create_engine(composer_database_url)
        try:
            stored = await EventStore(engine).read_stream(composer_stream(submitted["composer_id"]))
        finally:
            await engine.dispose()
        assert stored[0].event_type == "ComposeRequested" and stored[0].payload["idempotency_key"] == compose_id
        return stored[0].payload["request"]

    # -- secrets ------------------------------------------------------------------------

    async def test_plain_passwords_reach_neither_database_only_their_hashes(
        self, backend: Backend, composer_database_url: str, backend_database_url: str
    ) -> None:
        plain = "correct horse battery"
        users = {"users": [{"name": "alice", "password": plain}]}
        blueprint_id = await self.create(backend, blueprint_with(customizations=users))
        async with backend.client("alice-cli") as http:
            toml = f'name = "imported"\ndistro = "debian-12"\n[[customizations.user]]\nname = "bob"\npassword = "{plain}"\n'
            imported = await http.post(f"{BLUEPRINTS}/import", content=toml, headers={"content-type": "application/toml"})
            direct = await http.post(f"{API}/compose", json={
                "distribution": "debian-12", "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
                "customizations": users,
            })  # fmt: skip
        assert imported.status_code == 201 and direct.status_code == 201, (imported.text, direct.text)
        composed = await self.compose(backend, blueprint_id)
        for compose_id in (composed["id"], direct.json()["id"]):
            await self.composer_request(backend, composer_database_url, compose_id)

        for url in (backend_database_url, composer_database_url):
            stored = await every_stored_value(url)
            assert plain not in stored
            assert "$6$" in stored

    # -- versions -----------------------------------------------------------------------

    async def test_a_blueprint_is_created_then_updated_and_each_version_reads_back(self, backend: Backend) -> None:
        blueprint_id = await self.create(backend)
        async with backend.client("alice-cli") as http:
            updated = await http.put(f"{BLUEPRINTS}/{blueprint_id}",
                                     json=blueprint_with(name="web-server-v2", customizations={"hostname": "web-2"}))
            beyond = await http.get(f"{BLUEPRINTS}/{blueprint_id}", params={"version": 3})
        latest = await self.get(backend, f"/blueprints/{blueprint_id}")
        first = await self.get(backend, f"/blueprints/{blueprint_id}", version=1)
        second = await self.get(backend, f"/blueprints/{blueprint_id}", version=2)

        assert updated.status_code == 200 and updated.json() == {"id": blueprint_id, "version": 2}
        assert latest == second
        assert (first["version"], first["latest_version"], second["version"]) == (1, 2, 2)
        assert first["name"] == "web-server" and first["customizations"] == {"packages": ["nginx"], "hostname": "web-1"}
        assert second["name"] == "web-server-v2" and second["customizations"] == {"hostname": "web-2"}
        assert first["image_requests"][0] == {"architecture": "x86_64", "image_type": "guest-image",
                                              "upload_targets": [{"type": "local"}]}  # fmt: skip
        assert first["created_at"] == second["created_at"] and second["last_modified_at"] >= first["last_modified_at"]
        assert beyond.status_code == 404
        assert beyond.json()["errors"][0]["details"] == {"blueprint_id": blueprint_id, "version": 3}

    async def test_the_list_holds_the_orgs_blueprints_newest_first_searchable_and_paged(self, backend: Backend) -> None:
        created = [await self.create(backend, blueprint_with(name=name)) for name in ("Web-Front", "database", "web_back")]
        await self.create(backend, blueprint_with(name="web-other-org"), client_id="bob-cli")

        first = await self.get(backend, "/blueprints", limit=2)
        rest = await self.get(backend, "/blueprints", limit=2, offset=2)
        web = await self.get(backend, "/blueprints", name="WEB")
        underscore = await self.get(backend, "/blueprints", name="_")

        assert first["meta"]["count"] == 3 and [item["id"] for item in first["data"]] == created[:0:-1]
        assert [item["id"] for item in rest["data"]] == created[:1]
        assert first["links"] == {"first": f"{BLUEPRINTS}?limit=2&offset=0", "last": f"{BLUEPRINTS}?limit=2&offset=2"}
        assert [item["name"] for item in web["data"]] == ["web_back", "Web-Front"] and web["meta"]["count"] == 2
        assert [item["name"] for item in underscore["data"]] == ["web_back"]  # a LIKE wildcard is matched literally
        assert set(first["data"][0]) == {"id", "name", "description", "version", "created_at", "last_modified_at"}

    # -- import and export -----------------------------------------------------------------

    async def test_an_osbuild_toml_blueprint_is_imported_and_exports_back(self, backend: Backend) -> None:
        async with backend.client("alice-cli") as http:
            imported = await http.post(f"{BLUEPRINTS}/import", content=WEB_SERVER.encode(),
                                       params=[("image_type", "guest-image"), ("image_type", "aws")],
                                       headers={"content-type": "application/toml"})  # fmt: skip
            assert imported.status_code == 201, imported.text
            blueprint_id = imported.json()["id"]
            as_toml = await http.get(f"{BLUEPRINTS}/{blueprint_id}/export", params={"format": "toml"})
            as_json = await http.get(f"{BLUEPRINTS}/{blueprint_id}/export")
            again = await http.post(f"{BLUEPRINTS}/import", content=as_toml.content,
                                    headers={"content-type": "text/x-toml"})  # fmt: skip
            json_again = await http.post(f"{BLUEPRINTS}/import", json={**as_json.json(), "name": "web-server-copy"})
        stored = await self.get(backend, f"/blueprints/{blueprint_id}")

        assert stored["name"] == "web-server" and stored["distribution"] == "debian-12"
        assert [image["image_type"] for image in stored["image_requests"]] == ["guest-image", "aws"]
        custom = stored["customizations"]
        assert custom["packages"] == ["nginx", "curl", "htop=3.2.2-2", "vim"]
        assert [user["name"] for user in custom["users"]] == ["admin", "deploy"]
        assert custom["filesystem"][0] == {"mountpoint": "/", "min_size": 10 * 2**30}
        assert as_toml.headers["content-type"].startswith("application/toml")
        exported = tomllib.loads(as_toml.text)
        assert (exported["name"], exported["version"], exported["distro"]) == ("web-server", "1.0.0", "debian-12")
        assert exported["customizations"]["user"][0]["name"] == "admin"
        assert exported["customizations"]["filesystem"][1] == {"mountpoint": "/var", "minsize": 2 * 2**30}
        # The same name again: the TOML round trip is refused as a duplicate, whole and valid.
        assert again.status_code == 409 and again.json()["errors"][0]["details"] == {"name": "web-server"}
        assert as_json.json() == {key: stored[key] for key in as_json.json()}
        assert json_again.status_code == 201, json_again.text
        copied = await self.get(backend, f"/blueprints/{json_again.json()['id']}")
        assert copied["customizations"] == custom and copied["image_requests"] == stored["image_requests"]

    async def test_an_export_osbuilds_format_cannot_hold_is_refused_naming_the_field(self, backend: Backend) -> None:
        custom = {"first_boot_script": "#!/bin/sh\ntrue\n"}
        blueprint_id = await self.create(backend, blueprint_with(customizations=custom))
        async with backend.client("alice-cli") as http:
            as_toml = await http.get(f"{BLUEPRINTS}/{blueprint_id}/export", params={"format": "toml"})
            unknown = await http.get(f"{BLUEPRINTS}/{blueprint_id}/export", params={"format": "yaml"})

        assert as_toml.status_code == 409
        assert as_toml.json()["errors"][0]["details"] == {"fields": ["customizations.first_boot_script"]}
        assert unknown.status_code == 400

    # -- refusals -------------------------------------------------------------------------

    async def test_an_invalid_blueprint_is_a_400_naming_each_field_and_nothing_is_stored(self, backend: Backend) -> None:
        bad = blueprint_with(customizations={"hostname": "-bad-"}, colour="blue")
        async with backend.client("alice-cli") as http:
            created = await http.post(BLUEPRINTS, json=bad)
            nameless = await http.post(BLUEPRINTS, json={k: v for k, v in BLUEPRINT.items() if k != "name"})
            toml = await http.post(f"{BLUEPRINTS}/import", content=b'name = "x"\ndistro = "rhel-9"\n[[groups]]\nname = "y"\n',
                                   headers={"content-type": "application/toml"})  # fmt: skip
            bad_type = await http.post(f"{BLUEPRINTS}/import", params={"image_type": "floppy"},
                                       content=b'name = "x"\ndistro = "debian-12"\n',
                                       headers={"content-type": "application/toml"})  # fmt: skip

        def fields(response: Any) -> set[str]:
            assert response.status_code == 400, response.text
            assert all(error["id"] == "400" and error["reason"] for error in response.json()["errors"])
            return {error["details"]["field"] for error in response.json()["errors"]}

        assert fields(created) == {"colour", "customizations.hostname"}
        assert fields(nameless) == {"name"}
        assert fields(toml) == {"distro", "groups"}
        assert fields(bad_type) == {"image_requests[0].image_type"}
        assert (await self.get(backend, "/blueprints"))["meta"]["count"] == 0

    async def test_a_name_is_taken_once_per_org_and_freed_by_deleting(self, backend: Backend) -> None:
        web = await self.create(backend)
        other = await self.create(backend, blueprint_with(name="other"))
        await self.create(backend, client_id="bob-cli")  # another org may use the name
        async with backend.client("alice-cli") as http:
            duplicate = await http.post(BLUEPRINTS, json=BLUEPRINT)
            renamed = await http.put(f"{BLUEPRINTS}/{other}", json=BLUEPRINT)
            same_name = await http.put(f"{BLUEPRINTS}/{web}", json=blueprint_with(description="kept its own name"))
            await http.delete(f"{BLUEPRINTS}/{web}")
            reused = await http.post(BLUEPRINTS, json=BLUEPRINT)

        for refused in (duplicate, renamed):
            assert refused.status_code == 409
            (error,) = refused.json()["errors"]
            assert error["details"] == {"name": "web-server"} and "web-server" in error["reason"]
        assert same_name.status_code == 200 and reused.status_code == 201

    # -- composing ----------------------------------------------------------------------

    async def test_a_compose_from_a_blueprint_carries_its_id_and_version_to_the_history_and_the_composer(
        self, backend: Backend, composer_database_url: str
    ) -> None:
        blueprint_id = await self.create(backend)
        async with backend.client("alice-cli") as http:
            await http.put(f"{BLUEPRINTS}/{blueprint_id}", json=blueprint_with(customizations={"hostname": "web-2"}))
            wrong_type = await http.post(f"{BLUEPRINTS}/{blueprint_id}/compose", json={"image_types": ["aws"]})
            no_version = await http.post(f"{BLUEPRINTS}/{blueprint_id}/compose", json={"version": 9})

        old = await self.compose(backend, blueprint_id, {"version": 1, "image_types": ["tar"]})
        latest = await self.compose(backend, blueprint_id)

        assert (old["blueprint_version"], latest["blueprint_version"]) == (1, 2)
        row = await self.get(backend, f"/composes/{old['id']}")
        assert (row["blueprint_id"], row["blueprint_version"], row["image_name"]) == (blueprint_id, 1, "web-server")
        sent = await self.composer_request(backend, composer_database_url, old["id"])
        assert sent["image_name"] == "web-server" and sent["distribution"] == "debian-12"
        assert [image["image_type"] for image in sent["image_requests"]] == ["tar"]
        assert sent["customizations"] == {"packages": ["nginx"], "hostname": "web-1"}
        sent_latest = await self.composer_request(backend, composer_database_url, latest["id"])
        assert [image["image_type"] for image in sent_latest["image_requests"]] == ["guest-image", "tar"]
        assert sent_latest["customizations"] == {"hostname": "web-2"}

        made = await self.get(backend, f"/blueprints/{blueprint_id}/composes")
        of_version_1 = await self.get(backend, f"/blueprints/{blueprint_id}/composes", blueprint_version=1)
        in_history = await self.get(backend, "/composes", blueprint_id=blueprint_id)
        assert [item["id"] for item in made["data"]] == [latest["id"], old["id"]] == [i["id"] for i in in_history["data"]]
        assert [item["id"] for item in of_version_1["data"]] == [old["id"]]
        assert made["links"]["first"] == f"{BLUEPRINTS}/{blueprint_id}/composes"
        assert wrong_type.status_code == 400 and wrong_type.json()["errors"][0]["details"] == {"field": "image_types[0]"}
        assert no_version.status_code == 404

    async def test_a_deleted_blueprint_is_gone_its_events_and_composes_remain(self, backend: Backend) -> None:
        blueprint_id = await self.create(backend)
        compose = await self.compose(backend, blueprint_id)
        async with backend.client("alice-cli") as http:
            deleted = await http.delete(f"{BLUEPRINTS}/{blueprint_id}")
            again = await http.delete(f"{BLUEPRINTS}/{blueprint_id}")
            gone = [(await http.get(f"{BLUEPRINTS}/{blueprint_id}{path}")).status_code for path in ("", "/export", "/composes")]

        assert (deleted.status_code, again.status_code, gone) == (200, 404, [404, 404, 404])
        assert (await self.get(backend, "/blueprints"))["data"] == []
        history = await self.get(backend, "/composes", blueprint_id=blueprint_id)
        assert [item["id"] for item in history["data"]] == [compose["id"]]
        engine = create_engine(backend.database_url)
        try:
            stored = await EventStore(engine).read_stream(blueprint_stream(blueprint_id))
        finally:
            await engine.dispose()
        assert [event.event_type for event in stored] == ["BlueprintCreated", "BlueprintDeleted"]
        assert all(event.correlation_id == blueprint_id and event.actor.org_id == "org-a" for event in stored)

    # -- tenancy and tokens -----------------------------------------------------------------

    async def test_another_orgs_blueprint_is_not_found_on_any_path(self, backend: Backend) -> None:
        blueprint_id = await self.create(backend)
        compose = await self.compose(backend, blueprint_id)
        here = f"{BLUEPRINTS}/{blueprint_id}"

        async with backend.client("bob-cli") as bob:
            answers = {
                "get": await bob.get(here),
                "get version": await bob.get(here, params={"version": 1}),
                "put": await bob.put(here, json=blueprint_with(name="bobs")),
                "export": await bob.get(f"{here}/export"),
                "export toml": await bob.get(f"{here}/export", params={"format": "toml"}),
                "compose": await bob.post(f"{here}/compose", json={}),
                "composes": await bob.get(f"{here}/composes"),
                "delete": await bob.delete(here),
            }
            listed = (await bob.get(BLUEPRINTS)).json()
            history = (await bob.get(f"{API}/composes", params={"blueprint_id": blueprint_id})).json()["data"]
            compose_row = await bob.get(f"{API}/composes/{compose['id']}")

        assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 404)
        assert all(answer.json()["errors"][0]["details"]["blueprint_id"] == blueprint_id for answer in answers.values())
        assert listed["meta"]["count"] == 0 and history == [] and compose_row.status_code == 404
        mine = await self.get(backend, f"/blueprints/{blueprint_id}")
        assert (mine["version"], mine["name"]) == (1, "web-server")

    async def test_every_blueprint_route_needs_a_users_token(self, backend: Backend) -> None:
        here = f"{BLUEPRINTS}/x"
        calls = [("GET", BLUEPRINTS), ("POST", BLUEPRINTS), ("POST", f"{BLUEPRINTS}/import"), ("GET", here),
                 ("PUT", here), ("DELETE", here), ("GET", f"{here}/export"), ("POST", f"{here}/compose"),
                 ("GET", f"{here}/composes")]  # fmt: skip
        async with backend.client(None) as anonymous:
            unauthenticated = [(await anonymous.request(method, url, json={})).status_code for method, url in calls]
            document = (await anonymous.get(f"{API}/openapi.json")).json()
        async with backend.client("worker") as worker:
            forbidden = [(await worker.request(method, url, json={})).status_code for method, url in calls]

        assert unauthenticated == [401] * len(calls) and forbidden == [403] * len(calls)
        assert {BLUEPRINTS, f"{BLUEPRINTS}/import", f"{BLUEPRINTS}/{{blueprint_id}}/compose"} <= set(document["paths"])
