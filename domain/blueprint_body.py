"""A blueprint's body, checked exactly as a compose from it would be.

    body = validate_blueprint(raw)                  # raises ValidationFailed
    request = compose_request_for(body_dict, choice)  # the compose a blueprint makes

The body is a compose request under a name: `name`, `description`,
`distribution`, `image_requests`, `customizations`. It is checked by turning
it into the compose request that composing it sends (the name becomes the
image name) and validating that with `validate_compose_request`, so a
blueprint is valid exactly when a compose from it is, by the same rules.
Problems of the image name are reported at `name`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from domain.compose_request import ImageRequest
from domain.customizations import Customizations
from domain.field_errors import FieldError, ValidationFailed
from domain.request_rules import unknown_field_reason
from domain.request_struct import RequestStruct
from domain.shape import Walk, item, kind_of
from domain.validation import ROOT, parse_json, validate_compose_request

MAX_DESCRIPTION = 2000
# The compose request's fields a blueprint carries as they are.
COMPOSE_FIELDS = ("distribution", "image_requests", "customizations")
BODY_FIELDS = ("name", "description", *COMPOSE_FIELDS)
CHOICE = "compose from a blueprint"


class BlueprintBody(RequestStruct):
    name: str
    distribution: str
    image_requests: tuple[ImageRequest, ...]
    description: str = ""
    customizations: Customizations | None = None


class ComposeChoice(RequestStruct):
    """What a compose from a blueprint may pick: a version (default the latest), and
    some of its image types and upload target types (default all of them)."""

    version: int | None = None
    image_types: tuple[str, ...] = ()
    upload_targets: tuple[str, ...] = ()


def validate_blueprint(raw: bytes | bytearray | memoryview | str | dict[str, Any]) -> BlueprintBody:
    """The blueprint in `raw` (JSON text or parsed JSON), checked and normalized as a compose is."""
    data = parse_json(raw, "blueprint")
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError(ROOT, f"expected an object, got {kind_of(data)}")], "blueprint")
    errors = [
        FieldError(str(key), f"unknown field; expected one of: {', '.join(BODY_FIELDS)}")
        for key in data
        if key not in BODY_FIELDS
    ]
    if data.get("name") is None:
        errors.append(FieldError("name", "missing required field" if "name" not in data else "expected a string, got null"))
    description = data.get("description", "")
    if (problem := _description_problem(description)) is not None:
        errors.append(FieldError("description", problem))
    request = {key: data[key] for key in COMPOSE_FIELDS if key in data}
    if data.get("name") is not None:
        request["image_name"] = data["name"]
    try:
        compose = validate_compose_request(request)
    except ValidationFailed as failed:
        errors += [_at_body(error) for error in failed.errors]
    if errors:
        raise ValidationFailed(errors, "blueprint")
    assert compose.image_name is not None
    return BlueprintBody(
        name=compose.image_name, description=description, distribution=compose.distribution,
        image_requests=compose.image_requests, customizations=compose.customizations,
    )  # fmt: skip


def _description_problem(description: object) -> str | None:
    if not isinstance(description, str):
        return f"expected a string, got {kind_of(description)}"
    if len(description) > MAX_DESCRIPTION:
        return f"is {len(description)} characters; at most {MAX_DESCRIPTION} are allowed"
    if "\0" in description or any(0xD800 <= ord(c) <= 0xDFFF for c in description):
        return "must be text without NUL characters or unpaired surrogates"
    return None


def _at_body(error: FieldError) -> FieldError:
    if error.field == "image_name" or error.field.startswith("image_name."):
        return FieldError("name" + error.field.removeprefix("image_name"), error.reason)
    return error


def parse_compose_choice(raw: bytes | bytearray | memoryview | str | dict[str, Any]) -> ComposeChoice:
    """The body of a compose from a blueprint; empty means the latest version, everything in it."""
    content = raw.strip() if isinstance(raw, str) else bytes(raw).strip() if not isinstance(raw, dict) else raw
    walk = Walk({}, unknown_field_reason)
    choice = walk.build(parse_json(raw, CHOICE) if content else {}, ComposeChoice, ROOT)
    if not walk.errors and choice.version is not None and choice.version < 1:
        walk.refuse("version", "must be 1 or more")
    if walk.errors:
        raise ValidationFailed(walk.errors, CHOICE)
    return choice


def compose_request_for(body: dict[str, Any], choice: ComposeChoice) -> dict[str, Any]:
    """The compose request for the chosen images and targets of a stored (validated) body.

    Not yet validated: the caller validates it as any compose, so a blueprint
    stored under older rules cannot slip past newer ones.
    """
    images: list[dict[str, Any]] = list(body["image_requests"])
    errors: list[FieldError] = []
    if choice.image_types:
        offered = sorted({image["image_type"] for image in images})
        errors += [
            FieldError(item("image_types", i), f"the blueprint has no {wanted} image; it has: {', '.join(offered)}")
            for i, wanted in enumerate(choice.image_types)
            if wanted not in offered
        ]
        images = [image for image in images if image["image_type"] in choice.image_types]
    if choice.upload_targets:
        offered = sorted({target["type"] for image in images for target in image.get("upload_targets", ())})
        errors += [
            FieldError(item("upload_targets", i), f"no chosen image is uploaded to {wanted}; they go to: {', '.join(offered)}")
            for i, wanted in enumerate(choice.upload_targets)
            if wanted not in offered
        ]
        chosen = [
            {**image, "upload_targets": [t for t in image.get("upload_targets", ()) if t["type"] in choice.upload_targets]}
            for image in images
        ]
        images = [image for image in chosen if image["upload_targets"]]
    if errors:
        raise ValidationFailed(errors, CHOICE)
    request = {"distribution": body["distribution"], "image_name": body["name"], "image_requests": images}
    if body.get("customizations") is not None:
        request["customizations"] = body["customizations"]
    return request


def body_dict(body: BlueprintBody) -> dict[str, Any]:
    """The body as stored and shown: JSON-shaped (as replay reads it back), with its description even when empty."""
    return {"description": body.description, **msgspec.json.decode(msgspec.json.encode(body))}
