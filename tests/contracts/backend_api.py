"""The backend against a real composer and issuer: API, submitter, and the history consumer.

Not collected by itself: each database (SQLite, PostgreSQL) subclasses
``BackendContract`` and provides ``composer_database_url`` and
``backend_database_url`` (see tests/contracts/backend_harness.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from events.engine import create_engine
from events.envelope import Actor
from events.inprocess import InProcessBroker
from events.migrations import upgrade_async
from events.store import EventStore
from services.backend.composer_client import Accepted, ComposerClient, ComposerUnreachable, Refused
from services.backend.composes import Composes
from services.backend.records import compose_stream
from services.backend.submitter import Submitter
from services.settings import SERVICE_TOPICS
from tests.backend_service import API, Backend, composer_client, running_backend
from tests.composer_service import Composer
from tests.contracts.backend_harness import REQUEST, BackendHarness, finish_job, request_for
from tests.contracts.composer_api import claim, register


class LosingAnswers:
    """The real composer client, but the answer never arrives: the backend dies mid-call."""

    def __init__(self, client: ComposerClient) -> None:
        self.client = client
        self.calls = 0

    async def submit(self, compose_id: str, org_id: str, request: dict[str, Any]) -> Accepted | Refused:
        self.calls += 1
        await self.client.submit(compose_id, org_id, request)
        raise ComposerUnreachable("connection reset before the answer (test)")


class BackendContract(BackendHarness):
    # -- the API ----------------------------------------------------------------------

    async def test_a_compose_is_recorded_then_handed_to_the_composer_exactly_once(
        self, backend: Backend, composer: Composer
    ) -> None:
        compose_id = await self.post(backend)

        await self.wait_until_submitted(backend, compose_id)

        on_composer = await self.composer_composes(composer)
        assert len(on_composer) == 1 and on_composer[0]["image_name"] == "web-server"
        status = await self.get(backend, f"/composes/{compose_id}")
        assert status["status"] == "pending" and status["request"]["image_name"] == "web-server"
        assert status["image_status"]["upload_status"] == {"type": "local", "status": "pending", "options": {}}
        assert (await self.event_types(backend, compose_id))[:2] == ["ComposeRequested", "ComposeSubmitted"]

    async def test_an_invalid_compose_is_refused_naming_each_field_and_nothing_is_stored(
        self, backend: Backend, composer: Composer
    ) -> None:
        bad = {
            "distribution": "debian-12",
            "image_requests": [{"architecture": "x86_64", "image_type": "floppy"}],
            "customizations": {"hostname": "-bad-", "packages": ["Not A Package"]},
            "colour": "blue",
        }
        async with backend.client("alice-cli") as http:
            refused = await http.post(f"{API}/compose", json=bad)
            malformed = await http.post(f"{API}/compose", content=b"{not json", headers={"content-type": "application/json"})

        assert refused.status_code == 400
        fields = {error["details"]["field"] for error in refused.json()["errors"]}
        assert fields == {"colour", "image_requests[0].image_type", "customizations.hostname", "customizations.packages[0]"}
        assert all(error["id"] == "400" and error["reason"] for error in refused.json()["errors"])
        assert malformed.status_code == 400 and malformed.json()["errors"][0]["reason"]
        assert (await self.get(backend, "/composes"))["data"] == []
        assert await self.composer_composes(composer) == []

    async def test_another_orgs_compose_is_not_found_on_any_path(self, backend: Backend) -> None:
        compose_id = await self.post(backend, client_id="alice-cli")

        async with backend.client("bob-cli") as bob:
            answers = [(await bob.get(f"{API}/composes/{compose_id}{path}")).status_code for path in ("", "/events")]
            answers.append((await bob.delete(f"{API}/composes/{compose_id}")).status_code)
            listed = (await bob.get(f"{API}/composes")).json()["data"]

        assert answers == [404, 404, 404]
        assert listed == []
        assert (await self.get(backend, f"/composes/{compose_id}"))["id"] == compose_id

    async def test_the_history_is_newest_first_one_page_at_a_time(self, backend: Backend) -> None:
        created = [await self.post(backend, request_for(image_name=f"image-{n}")) for n in range(5)]

        seen: list[str] = []
        pages = []
        query: dict[str, Any] = {"limit": 2}
        while True:
            page = await self.get(backend, "/composes", **query)
            pages.append(len(page["data"]))
            seen += [item["id"] for item in page["data"]]
            if "next" not in page["links"]:
                break
            assert page["links"]["next"].startswith(f"{API}/composes?")
            query = {"limit": 2, "cursor": page["meta"]["next_cursor"]}

        assert pages == [2, 2, 1]
        assert seen == list(reversed(created))

    async def test_the_history_filters_by_status_distribution_image_type_name_and_time(
        self, backend: Backend, composer: Composer
    ) -> None:
        web = await self.post(backend, request_for(image_name="Web-Server"))
        db = await self.post(backend, request_for(image_name="database", distribution="debian-13"))
        disk = await self.post(backend, request_for(image_name="web_disk", image_type="guest-image"))
        for compose_id in (web, db, disk):
            await self.wait_until_submitted(backend, compose_id)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            await claim(worker, worker_id, ["depsolve"])  # the oldest: web
        await self.wait_for_status(backend, web, "building")
        created_at = {item["id"]: item["created_at"] for item in (await self.get(backend, "/composes"))["data"]}

        async def ids(**params: Any) -> list[str]:
            return [item["id"] for item in (await self.get(backend, "/composes", **params))["data"]]

        assert await ids(status="building") == [web]
        assert await ids(status="pending") == [disk, db]
        assert await ids(distribution="debian-13") == [db]
        assert await ids(image_type="guest-image") == [disk]
        assert await ids(image_name="WEB") == [disk, web]
        assert await ids(image_name="_") == [disk]  # a LIKE wildcard is matched literally
        assert await ids(created_after=created_at[db]) == [disk, db]
        assert await ids(created_before=created_at[db]) == [web]
        assert await ids(image_name="web", status="pending") == [disk]

    async def test_a_bad_cursor_or_filter_is_a_400_with_the_error_shape(self, backend: Backend) -> None:
        async with backend.client("alice-cli") as http:
            answers = [
                await http.get(f"{API}/composes", params={"cursor": "not-a-cursor"}),
                await http.get(f"{API}/composes", params={"status": "sleeping"}),
                await http.get(f"{API}/composes", params={"created_after": "yesterday"}),
                await http.get(f"{API}/composes", params={"limit": 0}),
            ]

        assert [answer.status_code for answer in answers] == [400] * 4
        for answer in answers:
            (error,) = answer.json()["errors"]
            assert error["id"] == "400" and error["reason"]
        assert answers[0].json()["errors"][0]["details"] == {"field": "cursor"}

    async def test_a_deleted_compose_leaves_the_history_and_its_events_remain(self, backend: Backend) -> None:
        compose_id = await self.post(backend)

        async with backend.client("alice-cli") as http:
            deleted = await http.delete(f"{API}/composes/{compose_id}")
            again = await http.delete(f"{API}/composes/{compose_id}")
            gone = await http.get(f"{API}/composes/{compose_id}")

        assert (deleted.status_code, again.status_code, gone.status_code) == (200, 404, 404)
        assert (await self.get(backend, "/composes"))["data"] == []
        engine = create_engine(backend.database_url)
        try:
            stored = await EventStore(engine).read_stream(compose_stream(compose_id))
        finally:
            await engine.dispose()
        # The submitter may hand it over just after the deletion (deleting does not cancel).
        assert stored[0].event_type == "ComposeRequested" and "ComposeDeleted" in [e.event_type for e in stored]

    async def test_distributions_and_the_image_types_of_each_architecture(self, backend: Backend) -> None:
        distributions = await self.get(backend, "/distributions")
        architectures = await self.get(backend, "/architectures/debian-12")
        async with backend.client("alice-cli") as http:
            unknown = await http.get(f"{API}/architectures/windows-95")

        assert [d["name"] for d in distributions] == ["debian-12", "debian-13"]
        (x86,) = architectures
        assert x86["arch"] == "x86_64" and {"guest-image", "tar", "aws"} <= set(x86["image_types"])
        assert x86["repositories"][0]["suite"] == "bookworm"
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["details"] == {"distribution": "windows-95"}

    async def test_every_route_needs_a_users_token_but_probes_and_openapi_do_not(self, backend: Backend) -> None:
        paths = ["/distributions", "/architectures/debian-12", "/composes", "/composes/x", "/composes/x/events"]
        async with backend.client(None) as anonymous:
            assert [(await anonymous.get(f"{API}{path}")).status_code for path in paths] == [401] * len(paths)
            assert (await anonymous.post(f"{API}/compose", json=REQUEST)).status_code == 401
            assert (await anonymous.get("/health")).status_code == 200
            assert (await anonymous.get("/ready")).status_code == 200
            document = await anonymous.get(f"{API}/openapi.json")
        async with backend.client("worker") as worker:
            assert [(await worker.get(f"{API}{path}")).status_code for path in paths] == [403] * len(paths)

        assert document.status_code == 200
        assert {f"{API}/compose", f"{API}/composes", f"{API}/composes/{{compose_id}}/events"} <= set(document.json()["paths"])

    # -- the submitter ----------------------------------------------------------------

    async def test_a_compose_recorded_while_the_composer_is_down_is_handed_over_once_it_is_back(
        self, backend: Backend, composer: Composer
    ) -> None:
        async with composer.outage():
            compose_id = await self.post(backend)
            await asyncio.sleep(1.0)  # the submitter tries, fails and backs off
            assert await self.event_types(backend, compose_id) == ["ComposeRequested"]

        await self.wait_until_submitted(backend, compose_id)
        assert len(await self.composer_composes(composer)) == 1

    async def test_a_compose_recorded_before_a_crash_is_handed_over_when_the_backend_starts(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        await upgrade_async(backend_database_url, "backend")
        engine = create_engine(backend_database_url)
        try:
            compose_id = await Composes(EventStore(engine)).request("org-a", REQUEST, _user("org-a"))
        finally:
            await engine.dispose()

        async with running_backend(composer, backend_database_url, broker) as backend:
            await self.wait_until_submitted(backend, compose_id)

        assert len(await self.composer_composes(composer)) == 1

    async def test_a_submission_whose_answer_was_lost_is_retried_into_the_same_composer_compose(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        await upgrade_async(backend_database_url, "backend")  # no backend runs: only the submitters below
        engine = create_engine(backend_database_url)
        try:
            composes = Composes(EventStore(engine))
            compose_id = await composes.request("org-a", REQUEST, _user("org-a"))
            async with composer_client(composer) as client:
                losing = LosingAnswers(client)
                lost = await Submitter(engine, composes, losing).submit_pending()
                retried = await Submitter(engine, composes, client).submit_pending()
                rerun = await Submitter(engine, composes, client).submit_pending()
            stored = await EventStore(engine).read_stream(compose_stream(compose_id))
        finally:
            await engine.dispose()

        assert (losing.calls, lost.failed, retried.accepted, rerun.accepted + rerun.failed) == (1, 1, 1, 0)
        assert [event.event_type for event in stored] == ["ComposeRequested", "ComposeSubmitted"]
        on_composer = await self.composer_composes(composer)
        assert [item["id"] for item in on_composer] == [stored[1].payload["composer_id"]]

    async def test_a_compose_the_composer_refuses_fails_with_the_composers_reason(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        async with running_backend(composer, backend_database_url, broker) as backend:
            engine = create_engine(backend_database_url)
            try:
                # Recorded without the backend's validation, as an older backend might have.
                refusable = request_for(image_type="floppy")
                compose_id = await Composes(EventStore(engine)).request("org-a", refusable, _user("org-a"))
            finally:
                await engine.dispose()
            backend_status = await self.wait_for_status(backend, compose_id, "failure")

        assert "image_requests[0].image_type" in backend_status["image_status"]["error"]["reason"]
        assert await self.composer_composes(composer) == []

    # -- the history consumer ---------------------------------------------------------

    async def test_the_history_follows_the_composers_events_from_pending_to_success(
        self, backend: Backend, composer: Composer
    ) -> None:
        compose_id = await self.post(backend)
        await self.wait_until_submitted(backend, compose_id)
        statuses = [(await self.get(backend, f"/composes/{compose_id}"))["status"]]

        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            depsolve = await claim(worker, worker_id, ["depsolve"])
            statuses.append((await self.wait_for_status(backend, compose_id, "building"))["status"])
            await finish_job(worker, depsolve, {"packages": []})
            build = await claim(worker, worker_id, ["build"])
            await finish_job(worker, build, {"packages": [], "manifest": {}, "sbom": {}})
            upload = await claim(worker, worker_id, ["upload"])
            statuses.append((await self.wait_for_status(backend, compose_id, "uploading"))["status"])
            await finish_job(worker, upload, {"options": {}})
        final = await self.wait_for_status(backend, compose_id, "success")

        assert statuses == ["pending", "building", "uploading"]
        assert final["image_status"]["upload_status"]["status"] == "success"
        assert final["image_status"]["error"] is None
        timeline = (await self.get(backend, f"/composes/{compose_id}/events"))["data"]
        recorded = [event for event in timeline if event["type"] == "ComposeStatusRecorded"]
        assert [event["payload"]["status"] for event in recorded] == ["building", "uploading", "success"]
        assert all(event["causation_id"] for event in recorded)
        assert [event["version"] for event in timeline] == list(range(1, len(timeline) + 1))

    async def test_a_redelivered_composer_event_takes_effect_once(
        self, backend: Backend, composer: Composer, broker: InProcessBroker
    ) -> None:
        first = await self.post(backend)
        await self.wait_until_submitted(backend, first)
        async with composer.client("worker") as worker:
            worker_id = await register(worker)
            await claim(worker, worker_id, ["depsolve"])
            await self.wait_for_status(backend, first, "building")
            before = await self.event_types(backend, first)

            # Everything the topic holds, delivered a second time...
            await broker.publisher().publish(broker.messages(SERVICE_TOPICS["composer"]))
            # ...then news of another compose: once it shows, the copies before it were consumed.
            second = await self.post(backend)
            await self.wait_until_submitted(backend, second)
            await claim(worker, worker_id, ["depsolve"])
            await self.wait_for_status(backend, second, "building")

        assert await self.event_types(backend, first) == before
        assert before.count("ComposeStatusRecorded") == 1

    async def test_the_composers_own_event_tells_the_backend_a_compose_whose_answer_was_lost_was_taken(
        self, composer: Composer, backend_database_url: str, broker: InProcessBroker
    ) -> None:
        # This backend's submitter makes one pass at start and then sleeps: only the consumer acts.
        async with running_backend(composer, backend_database_url, broker, submit_poll_interval=3600) as backend:
            engine = create_engine(backend_database_url)
            try:
                composes = Composes(EventStore(engine))
                compose_id = await composes.request("org-a", REQUEST, _user("org-a"))
                async with composer_client(composer) as client:
                    await Submitter(engine, composes, LosingAnswers(client)).submit_pending()
            finally:
                await engine.dispose()

            await self.wait_until_submitted(backend, compose_id)
            timeline = (await self.get(backend, f"/composes/{compose_id}/events"))["data"]

        submitted = [event for event in timeline if event["type"] == "ComposeSubmitted"]
        assert len(submitted) == 1 and submitted[0]["causation_id"]  # caused by the composer's event
        on_composer = await self.composer_composes(composer)
        assert [item["id"] for item in on_composer] == [submitted[0]["payload"]["composer_id"]]


def _user(org_id: str) -> Actor:
    return Actor(subject="alice", org_id=org_id, client="alice-cli")
