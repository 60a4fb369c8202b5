"""``image-builder compose create|list|status|logs|download``.

``create`` pushes the blueprint file first (see blueprint_commands.py) and
composes that version, so the compose is in the history with the blueprint's
id and version, and the next ``create`` of an unchanged file adds no version.

``status --watch`` and ``logs --follow`` read the compose every ``--interval``
seconds until it succeeds or fails: the status from the history, the build's
stage from ``/composes/{id}/progress``, new log lines from ``/logs``. They
exit 1 when the compose failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from services.client.blueprint_commands import images_from, push_blueprint, upload_target
from services.client.blueprint_files import read_blueprint
from services.client.output import ProgressLine, bar, print_json, size, table
from services.client.session import ApiError, ClientError, Session

FINAL = ("success", "failure")
CHUNK = 1 << 20
MAX_PAGE = 100


def create(session: Session, args: argparse.Namespace) -> int:
    body, toml = read_blueprint(Path(args.file), images_from(args), args.name)
    pushed = push_blueprint(session, body)
    choice: dict[str, Any] = {"version": pushed.version}
    if not toml:  # a JSON blueprint has its own images: the flags pick some of them
        if args.type:
            choice["image_types"] = args.type
        if target := upload_target(args.target, args.region, args.bucket):
            choice["upload_targets"] = [target["type"]]
    created = session.post(f"/blueprints/{pushed.id}/compose", choice)
    if args.json:
        print_json(created, lines=args.watch)  # with --watch, one document per line throughout
    else:
        print(f"compose {created['id']} requested: blueprint {body['name']} version {pushed.version} ({pushed.pushed})")
    return watch(session, created["id"], args.interval, args.json) if args.watch else 0


def listing(session: Session, args: argparse.Namespace) -> int:
    filters = {"status": args.status, "image_type": args.type, "image_name": args.name, "blueprint_id": args.blueprint}
    limit = MAX_PAGE if args.all else args.limit
    page = session.get("/composes", limit=limit, cursor=args.cursor, **filters)
    entries = list(page["data"])
    while args.all and page["meta"]["next_cursor"]:
        page = session.get("/composes", limit=limit, cursor=page["meta"]["next_cursor"], **filters)
        entries += page["data"]
    if args.json:
        print_json({**page, "data": entries, "meta": {**page["meta"], "count": len(entries)}} if args.all else page)
        return 0
    if not entries:
        print("no composes")
    else:
        rows = [_row(entry) for entry in entries]
        print(table(("ID", "CREATED", "NAME", "DISTRIBUTION", "TYPE", "TARGET", "STATUS"), rows))
    if page["meta"]["next_cursor"] and not args.all:
        print(f"more: --cursor {page['meta']['next_cursor']} (or --all)")
    return 0


def status(session: Session, args: argparse.Namespace) -> int:
    if args.watch:
        return watch(session, args.compose, args.interval, args.json)
    compose = session.get(f"/composes/{args.compose}")
    if args.json:
        print_json(compose)
        return 0
    words, _ = phase(compose, _progress(session, compose))
    image = (compose["request"].get("image_requests") or [{}])[0]
    upload = compose["image_status"]["upload_status"]
    fields = [
        ("id", compose["id"]),
        ("name", compose.get("image_name") or ""),
        ("created", compose["created_at"][:19].replace("T", " ")),
        ("status", words),
        ("image", f"{compose['request'].get('distribution', '')} {image.get('image_type', '')} {image.get('architecture', '')}"),
        ("upload", f"{upload['type']} {upload['status']}" + (f": {where(upload)}" if where(upload) else "")),
    ]
    if compose.get("blueprint_id"):
        fields.append(("blueprint", f"{compose['blueprint_id']} version {compose['blueprint_version']}"))
    print("\n".join(f"{label + ':':<11}{value}" for label, value in fields))
    return 0


def watch(session: Session, compose_id: str, interval: float, as_json: bool) -> int:
    """Follow the compose until it ends; 0 on success, 1 on failure."""
    line = ProgressLine()
    last: dict[str, Any] | None = None
    while True:
        compose = session.get(f"/composes/{compose_id}")
        if as_json:
            if compose != last:
                print_json(compose, lines=True)
        else:
            words, fraction = phase(compose, _progress(session, compose))
            line.show(words, bar(fraction) if fraction is not None else "")
        last = compose
        if compose["status"] in FINAL:
            break
        time.sleep(interval)
    line.end()
    if not as_json:
        print(_outcome(compose))
    return 0 if compose["status"] == "success" else 1


def logs(session: Session, args: argparse.Namespace) -> int:
    seen: dict[str, int] = {}
    current: str | None = None
    while True:
        # The status first: logs read after a final status are all there will be.
        compose = session.get(f"/composes/{args.compose}") if args.follow else None
        try:
            document = session.get(f"/composes/{args.compose}/logs")
        except ApiError as error:
            if not (args.follow and error.status == 409):  # 409: not at the composer yet
                raise
            document = {"image_builds": []}
        if args.json and not args.follow:
            print_json(document)
            return 0
        for build in document["image_builds"]:
            job = build["job_id"]
            new = build["log"][seen.get(job, 0) :]
            seen[job] = len(build["log"])
            for text in new:
                if args.json:
                    print_json({"job_id": job, "job_type": build["job_type"], "line": text}, lines=True)
                    continue
                if job != current:
                    print(f"==> {build['job_type']} job {job} <==", flush=True)
                    current = job
                print(text, flush=True)
        if compose is None:
            return 0
        if compose["status"] in FINAL:
            return 0 if compose["status"] == "success" else 1
        time.sleep(args.interval)


def download(session: Session, args: argparse.Namespace) -> int:
    compose = session.get(f"/composes/{args.compose}")
    upload = compose["image_status"]["upload_status"]
    if compose["status"] != "success":
        raise ClientError(f"compose {args.compose} is {compose['status']}: only a finished image can be downloaded")
    if upload["type"] != "local":
        raise ClientError(f"compose {args.compose} went to {upload['type']}, not kept here: {where(upload) or 'see its status'}")
    name = args.artifact or _artifact_name(upload.get("options") or {})
    if name is None:
        raise ClientError(f"the server does not say which file compose {args.compose} built; name it with --artifact")
    target = Path(args.output or name)
    if target.is_dir():
        target = target / name
    saved = _save(session, f"/composes/{args.compose}/artifacts/{name}", name, target)
    if args.json:
        print_json(saved)
    else:
        print(f"saved {saved['path']} ({size(saved['size'])}, sha256 {saved['sha256']})")
    return 0


def _save(session: Session, path: str, name: str, target: Path) -> dict[str, Any]:
    """Stream to a temporary file beside ``target``, renamed only once its sha256 is the server's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    digest, received, line = hashlib.sha256(), 0, ProgressLine()
    try:
        with os.fdopen(handle, "wb") as out, session.stream(path) as response:
            expected = response.headers.get("x-checksum-sha256")
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            try:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    detail = f"{bar(received / total)} {size(received)} of {size(total)}" if total else size(received)
                    line.show(f"downloading {name}", detail)
            finally:
                line.end()
        if total is not None and received != total:
            raise ClientError(f"{name}: the download stopped after {received} of {total} bytes")
        if expected is None:
            raise ClientError(f"{name}: the server sent no sha256 (X-Checksum-SHA256), so the download cannot be checked")
        if digest.hexdigest() != expected.lower():
            raise ClientError(f"{name}: the download's sha256 is {digest.hexdigest()}, the server's is {expected}")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {"path": str(target), "name": name, "size": received, "sha256": digest.hexdigest()}


def phase(compose: dict[str, Any], progress: list[dict[str, Any]]) -> tuple[str, float | None]:
    """Words for where the compose is ("building: stage 3/12 bootstrap"), and how far as a fraction, if known."""
    state = compose["status"]
    if state == "building" and progress:
        image = next((image for image in progress if image.get("stage")), progress[0])
        done, total = image["done"], image["total"]
        fraction = done / total if total else None
        if image.get("stage"):
            return f"building: stage {min(done + 1, total)}/{total} {image['stage']}", fraction
        return f"building: {done}/{total} jobs done", fraction
    if state == "uploading":
        upload = compose["image_status"]["upload_status"]
        return f"uploading: {upload['type']} {upload['status']}", None
    if state == "failure":
        return f"failure: {_reason(compose)}", None
    return state, 1.0 if state == "success" else None


def where(upload: dict[str, Any]) -> str:
    """Where an uploaded image is: its file (``local``: `compose download` gets it), URL or AMI."""
    options = upload.get("options") or {}
    if options.get("ami"):
        return f"{options['ami']} in {options.get('region', '?')}"
    if upload["type"] == "local":
        return _artifact_name(options) or ""
    return str(options.get("url") or "")


def _progress(session: Session, compose: dict[str, Any]) -> list[dict[str, Any]]:
    """The images' progress while building; nothing if the server cannot say (the bar is only a nicety)."""
    if compose["status"] != "building":
        return []
    try:
        return list(session.get(f"/composes/{compose['id']}/progress")["images"])
    except ApiError:
        return []


def _outcome(compose: dict[str, Any]) -> str:
    if compose["status"] == "failure":
        return f"compose {compose['id']} failed: {_reason(compose)}"
    upload = compose["image_status"]["upload_status"]
    if upload["type"] == "local":
        return f"compose {compose['id']} succeeded: image-builder compose download {compose['id']}"
    return f"compose {compose['id']} succeeded: {upload['type']} {where(upload)}".rstrip()


def _reason(compose: dict[str, Any]) -> str:
    error = compose["image_status"].get("error") or {}
    return str(error.get("reason") or "no reason given")


def _artifact_name(options: dict[str, Any]) -> str | None:
    if options.get("url"):
        return str(options["url"]).rsplit("/", 1)[-1]
    artifacts = options.get("artifacts") or []
    return str(artifacts[0]) if artifacts else None


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    request = entry.get("request") or {}
    image = (request.get("image_requests") or [{}])[0]
    targets = image.get("upload_targets") or [{}]
    return (
        entry["id"], entry["created_at"][:16].replace("T", " "), entry.get("image_name") or "",
        request.get("distribution", ""), image.get("image_type", ""), targets[0].get("type", ""), entry["status"],
    )  # fmt: skip
