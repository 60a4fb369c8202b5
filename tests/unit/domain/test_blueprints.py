"""The Blueprint aggregate, its body's validation, and the compose a blueprint makes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.blueprint_body import (
    ComposeChoice,
    body_dict,
    compose_request_for,
    parse_compose_choice,
    validate_blueprint,
)
from domain.blueprints import (
    Blueprint,
    BlueprintDeleted,
    BlueprintEvent,
    BlueprintRuleBroken,
    BlueprintVersionAdded,
    UnknownVersion,
)
from domain.compose_history import ComposeDeleted
from domain.events import DomainEvent, event_from
from domain.field_errors import ValidationFailed
from domain.validation import validate_compose_request


def body(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": "web-server",
        "description": "nginx behind a firewall",
        "distribution": "debian-12",
        "image_requests": [
            {"architecture": "x86_64", "image_type": "guest-image"},
            {"architecture": "x86_64", "image_type": "aws",
             "upload_targets": [{"type": "aws", "upload_options": {"region": "eu-central-1"}}]},
        ],
        "customizations": {"packages": ["nginx"], "hostname": "web-1", "firewall": {"ports": ["80/tcp"]}},
    }  # fmt: skip
    found.update(changes)
    return found


def fields_refused(raw: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        validate_blueprint(raw)
    assert "invalid blueprint" in str(refused.value)
    return {error.field: error.reason for error in refused.value.errors}


def created(**changes: Any) -> Blueprint:
    blueprint = Blueprint()
    blueprint.apply(Blueprint.create("bp-1", "org-a", body_dict(validate_blueprint(body(**changes)))))
    return blueprint


# -- the aggregate ------------------------------------------------------------------


def test_a_new_blueprint_is_version_1_of_its_org() -> None:
    blueprint = created()

    assert (blueprint.blueprint_id, blueprint.org_id, blueprint.latest_version) == ("bp-1", "org-a", 1)
    assert blueprint.name == "web-server" and blueprint.version == 1


def test_each_change_is_a_whole_new_version_and_old_versions_stay_as_they_were() -> None:
    blueprint = created()
    added = blueprint.add_version(body_dict(validate_blueprint(body(name="web-server-2", customizations={"hostname": "web-2"}))))
    blueprint.apply(added)

    assert added.version == 2 and blueprint.latest_version == 2 and blueprint.name == "web-server-2"
    assert blueprint.body(1)["customizations"]["hostname"] == "web-1"
    assert blueprint.body(2)["customizations"] == {"hostname": "web-2"}
    assert blueprint.body() == blueprint.body(2)
    with pytest.raises(UnknownVersion, match="no version 3; its versions are 1 to 2"):
        blueprint.body(3)


def test_a_deleted_blueprint_takes_no_more_versions_and_is_not_deleted_twice() -> None:
    blueprint = created()
    blueprint.apply(blueprint.delete())

    assert blueprint.deleted
    with pytest.raises(BlueprintRuleBroken, match="deleted"):
        blueprint.add_version(body())
    with pytest.raises(BlueprintRuleBroken, match="deleted"):
        blueprint.delete()


def test_a_blueprint_without_a_name_or_images_is_refused_by_the_aggregate_too() -> None:
    with pytest.raises(BlueprintRuleBroken, match="name"):
        Blueprint.create("bp-1", "org-a", body(name="  "))
    with pytest.raises(BlueprintRuleBroken, match="image request"):
        Blueprint.create("bp-1", "org-a", body(image_requests=[]))


def test_replaying_the_stored_events_gives_the_same_blueprint() -> None:
    live = created()
    events: list[DomainEvent] = [Blueprint.create("bp-1", "org-a", live.body(1))]
    for n in (2, 3):
        event = live.add_version(body(description=f"version {n}"))
        live.apply(event)
        events.append(event)
    live.apply(live.delete())
    events.append(BlueprintDeleted())

    stored = [(e.event_type, msgspec.json.decode(msgspec.json.encode(e.payload()))) for e in events]
    replayed = Blueprint.replay(event_from(kind, payload, BlueprintEvent) for kind, payload in stored)

    assert (replayed.bodies, replayed.deleted, replayed.version) == (live.bodies, True, 4)
    assert [kind for kind, _ in stored] == ["BlueprintCreated", "BlueprintVersionAdded", "BlueprintVersionAdded",
                                            "BlueprintDeleted"]  # fmt: skip


def test_blueprint_events_are_a_family_of_their_own() -> None:
    assert BlueprintEvent.registry.keys() == {"BlueprintCreated", "BlueprintVersionAdded", "BlueprintDeleted"}
    assert "BlueprintCreated" not in DomainEvent.registry
    with pytest.raises(ValueError, match="unknown event type"):
        event_from("BlueprintCreated", {}, DomainEvent)


def test_a_version_out_of_order_or_another_familys_event_is_not_applied() -> None:
    blueprint = created()
    with pytest.raises(ValueError, match="version 3 follows 1"):
        blueprint.apply(BlueprintVersionAdded(version=3, body=body()))
    with pytest.raises(TypeError, match="does not apply ComposeDeleted"):
        blueprint.apply(ComposeDeleted())


# -- the body ---------------------------------------------------------------------


def test_a_valid_body_is_normalized_as_a_compose_is() -> None:
    valid = validate_blueprint(msgspec.json.encode(body(customizations={"timezone": "Europe/Berlin"})))
    stored = body_dict(valid)

    assert stored["name"] == "web-server" and stored["description"] == "nginx behind a firewall"
    assert stored["image_requests"][0]["upload_targets"] == [{"type": "local"}]
    assert stored["customizations"] == {"timezone": {"timezone": "Europe/Berlin"}}


def test_an_invalid_body_is_refused_naming_every_field_in_the_bodys_own_words() -> None:
    bad = body(name="x" * 101, description=7, colour="blue", distribution="debian-11")
    bad["customizations"] = {"hostname": "-bad-", "users": [{"name": "root"}]}
    bad["image_requests"] = [{"architecture": "x86_64", "image_type": "floppy"}]

    refused = fields_refused(bad)

    assert set(refused) == {
        "name", "description", "colour", "distribution", "image_requests[0].image_type",
        "customizations.hostname", "customizations.users[0].name",
    }  # fmt: skip
    assert "1 to 100 characters" in refused["name"] and "unknown field" in refused["colour"]


def test_a_body_needs_a_name_and_an_object() -> None:
    nameless = body()
    del nameless["name"]

    assert fields_refused(nameless) == {"name": "missing required field"}
    assert fields_refused(body(name=None)) == {"name": "expected a string, got null"}
    assert fields_refused(b"[1, 2]") == {"": "expected an object, got a list"}
    assert "malformed JSON" in fields_refused(b"{nope")[""]


# -- composing a blueprint ----------------------------------------------------------


def stored_body() -> dict[str, Any]:
    return body_dict(validate_blueprint(body()))


def test_a_compose_from_a_blueprint_is_its_request_under_its_name() -> None:
    request = compose_request_for(stored_body(), ComposeChoice())

    assert request["image_name"] == "web-server" and request["distribution"] == "debian-12"
    assert [image["image_type"] for image in request["image_requests"]] == ["guest-image", "aws"]
    assert request["customizations"]["hostname"] == "web-1"
    assert validate_compose_request(request).image_name == "web-server"


def test_a_compose_may_pick_some_image_types_and_upload_targets() -> None:
    only_aws = compose_request_for(stored_body(), ComposeChoice(image_types=("aws",)))
    only_local = compose_request_for(stored_body(), ComposeChoice(upload_targets=("local",)))

    assert [image["image_type"] for image in only_aws["image_requests"]] == ["aws"]
    assert [image["image_type"] for image in only_local["image_requests"]] == ["guest-image"]


def test_picking_what_the_blueprint_does_not_have_is_refused_naming_the_choice() -> None:
    with pytest.raises(ValidationFailed) as refused:
        compose_request_for(stored_body(), ComposeChoice(image_types=("aws", "wsl"), upload_targets=("aws.s3",)))

    reasons = {error.field: error.reason for error in refused.value.errors}
    assert reasons.keys() == {"image_types[1]", "upload_targets[0]"}
    assert "has no wsl image; it has: aws, guest-image" in reasons["image_types[1]"]


def test_the_compose_choice_is_parsed_strictly_and_may_be_empty() -> None:
    assert parse_compose_choice(b"") == ComposeChoice()
    assert parse_compose_choice(b'{"version": 2, "image_types": ["aws"]}') == ComposeChoice(version=2, image_types=("aws",))
    for raw, field in ((b'{"version": 0}', "version"), (b'{"versions": 1}', "versions"), (b'{"image_types": "aws"}', "image_types")):
        with pytest.raises(ValidationFailed) as refused:
            parse_compose_choice(raw)
        assert [error.field for error in refused.value.errors] == [field]
