"""``image-builder blueprint push|list|export``.

A push creates the blueprint, or, when the org has one of that name, adds
its next version (``PUT``), unless the latest version already is this body.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec

from services.client.blueprint_files import image_requests, normalized, read_blueprint
from services.client.output import print_json, table
from services.client.session import ApiError, ClientError, Session, UsageError

PAGE = 100


class Pushed(msgspec.Struct, frozen=True):
    id: str
    version: int
    # created | new version | unchanged
    pushed: str


def push_blueprint(session: Session, body: dict[str, Any]) -> Pushed:
    name = body.get("name")
    existing = find_blueprint(session, name) if isinstance(name, str) else None
    if existing is None:
        created = session.post("/blueprints", body)
        return Pushed(created["id"], created["version"], "created")
    latest = session.get(f"/blueprints/{existing['id']}/export")
    if normalized(body) == latest:
        return Pushed(existing["id"], existing["version"], "unchanged")
    added = session.put(f"/blueprints/{existing['id']}", body)
    return Pushed(added["id"], added["version"], "new version")


def find_blueprint(session: Session, name: str) -> dict[str, Any] | None:
    """The org's blueprint of exactly this name (the API's ``name`` filter matches parts of names)."""
    for item in blueprints(session, name):
        if item["name"] == name:
            return item
    return None


def blueprints(session: Session, name: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = session.get("/blueprints", name=name, limit=PAGE, offset=len(found))
        found += page["data"]
        if not page["data"] or len(found) >= page["meta"]["count"]:
            return found


def resolve(session: Session, reference: str) -> str:
    """A blueprint id from an id or a name."""
    try:
        session.get(f"/blueprints/{reference}")
        return reference
    except ApiError as error:
        if error.status != 404:
            raise
        named = find_blueprint(session, reference)
        if named is None:
            raise ClientError(f"no blueprint has the id or name {reference!r}") from None
        return str(named["id"])


def upload_target(kind: str | None, region: str | None, bucket: str | None) -> dict[str, Any] | None:
    if kind is None:
        if region or bucket:
            raise UsageError("--region and --bucket go with --target aws or aws.s3")
        return None
    options = {key: value for key, value in (("region", region), ("bucket", bucket)) if value}
    return {"type": kind, "upload_options": options}


def images_from(args: argparse.Namespace) -> list[dict[str, Any]]:
    return image_requests(args.type, args.arch, upload_target(args.target, args.region, args.bucket))


def push(session: Session, args: argparse.Namespace) -> int:
    body, _ = read_blueprint(Path(args.file), images_from(args), args.name)
    pushed = push_blueprint(session, body)
    if args.json:
        print_json(msgspec.to_builtins(pushed))
    else:
        print(f"blueprint {body['name']}: {pushed.pushed}, version {pushed.version} (id {pushed.id})")
    return 0


def listing(session: Session, args: argparse.Namespace) -> int:
    found = blueprints(session, args.name)
    if args.json:
        print_json({"meta": {"count": len(found)}, "data": found})
        return 0
    if not found:
        print("no blueprints" + (f" matching {args.name!r}" if args.name else ""))
        return 0
    rows = [
        (item["id"], item["name"], str(item["version"]), _when(item["last_modified_at"]), _short(item["description"]))
        for item in found
    ]
    print(table(("ID", "NAME", "VERSION", "MODIFIED", "DESCRIPTION"), rows))
    return 0


def export(session: Session, args: argparse.Namespace) -> int:
    blueprint_id = resolve(session, args.blueprint)
    form = "json" if args.json else args.format
    exported = session.get(f"/blueprints/{blueprint_id}/export", format=form, version=args.version)
    if form == "json":
        text = msgspec.json.format(msgspec.json.encode(exported), indent=2).decode() + "\n"
    else:
        text = exported
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _when(timestamp: str) -> str:
    return timestamp[:16].replace("T", " ")


def _short(text: str, width: int = 40) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
