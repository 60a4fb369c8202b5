"""A blueprint file as the API's body: osbuild's TOML, or this API's JSON.

An osbuild blueprint names no image types (osbuild picks them when
composing), so the image requests come from the command line: ``--type``
(default guest-image), ``--arch``, ``--target``. The TOML is mapped by the
same code the server's ``POST /blueprints/import`` uses
(domain/blueprint_toml.py), here, so the client can also send it as a new
version of an existing blueprint (``PUT /blueprints/{id}`` takes JSON) and
with the chosen upload target, which the import route cannot. Whatever the
mapping accepts is then validated by the server, like any body.

A JSON file is the body itself, as ``blueprint export --format json`` writes
it; its image requests are its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from domain.blueprint_body import body_dict, validate_blueprint
from domain.blueprint_toml import body_from_toml
from domain.field_errors import FieldError, ValidationFailed
from services.client.session import ClientError

DEFAULT_IMAGE_TYPE = "guest-image"
DEFAULT_ARCH = "x86_64"


class BadBlueprint(ClientError):
    """The file cannot become a blueprint body: its problems, one line per field."""

    def __init__(self, path: Path, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(f"{path}: " + "; ".join(f"{error.field or 'file'}: {error.reason}" for error in errors))
        self.path = path

    def lines(self) -> list[str]:
        return [f"error: {self.path}: {e.reason}" + (f" ({e.field})" if e.field else "") for e in self.errors]


def is_toml(path: Path, text: str) -> bool:
    if path.suffix.lower() in (".toml", ".json"):
        return path.suffix.lower() == ".toml"
    return not text.lstrip().startswith("{")


def image_requests(image_types: list[str], arch: str, target: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One image request per type; without a target each type gets its default one (the server fills it in)."""
    extra = {"upload_targets": [target]} if target else {}
    return [{"architecture": arch, "image_type": kind, **extra} for kind in image_types or [DEFAULT_IMAGE_TYPE]]


def read_blueprint(path: Path, images: list[dict[str, Any]], name: str | None = None) -> tuple[dict[str, Any], bool]:
    """The body the file describes, and whether it was TOML (whose image requests are ``images``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ClientError(f"cannot read {path}: {error}") from error
    toml = is_toml(path, text)
    try:
        body = body_from_toml(text, images) if toml else json.loads(text)
    except ValidationFailed as failed:
        raise BadBlueprint(path, failed.errors) from failed
    except json.JSONDecodeError as error:
        raise BadBlueprint(path, [FieldError("", f"malformed JSON: {error}")]) from error
    if not isinstance(body, dict):
        raise BadBlueprint(path, [FieldError("", "a JSON blueprint is an object")])
    if name:
        body["name"] = name
    return body, toml


def normalized(body: dict[str, Any]) -> dict[str, Any] | None:
    """The body as the server would store it (defaults filled in), or None if the server will refuse it."""
    try:
        return body_dict(validate_blueprint(body))
    except ValidationFailed:
        return None
