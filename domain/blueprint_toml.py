"""osbuild's blueprint TOML format, to and from a blueprint body.

    body = body_from_toml(text, image_requests)  # ValidationFailed naming the TOML key
    document = toml_document(body, version)      # a dict for a TOML writer; NotInToml if it cannot say it all

An osbuild blueprint (osbuild.org, "Blueprint Reference") says what goes into
an image, not which images to build: those are picked at compose time. So an
import takes its image requests from the caller, and an export leaves them out.

TOML -> body:
- `name`, `description`; `version` (osbuild's semver) is accepted and not
  kept: the service numbers a blueprint's versions itself.
- `distro`: `debian-12` or `debian-13`; others are refused, and so is none
  (osbuild's "the host's distribution" means nothing to a service).
- `[[packages]]` and `[[modules]]` (osbuild installs both as packages): `name`,
  and `version` absent or `"*"` for the newest, or an exact Debian version,
  which pins it (`name=version`); any other pattern is refused.
- `[[groups]]` is refused: Debian has no package groups.
- `[customizations]`: `hostname`; `kernel` (`name`, `append`); `timezone`
  (`timezone`, `ntpservers`); `locale` (`languages`, `keyboard`);
  `[[customizations.user]]` (`name`, `key`, `password`, `groups`);
  `[[customizations.group]]` (`name` only, and only a group some user joins:
  a user's groups are created with the user); `services` (`enabled`,
  `disabled`, `masked`); `[[customizations.files]]` (`path`, `mode`, `user`,
  `group`, `data`); `[[customizations.directories]]` (the same but `data`,
  plus `ensure_parents`); `firewall` (`ports`); `[[customizations.filesystem]]`
  (`mountpoint`, `minsize` in bytes or like "2 GiB", which becomes `min_size`).
- Any other key is refused, naming it.

Values are carried over as they are: validate_blueprint then checks them with
the compose rules (and the body's names: `users`, `min_size`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from domain.distributions import DISTRIBUTIONS
from domain.field_errors import FieldError, ValidationFailed
from domain.names import package_name
from domain.shape import at, item, kind_of

TOP_LEVEL = ("name", "description", "version", "distro", "packages", "modules", "customizations")
CUSTOMIZATIONS = (
    "hostname", "kernel", "timezone", "locale", "user", "group", "services",
    "files", "directories", "firewall", "filesystem",
)  # fmt: skip
TABLES = {
    "kernel": ("name", "append"),
    "timezone": ("timezone", "ntpservers"),
    "locale": ("languages", "keyboard"),
    "services": ("enabled", "disabled", "masked"),
}
USER = ("name", "key", "password", "groups")
FILE = ("path", "mode", "user", "group", "data")
DIRECTORY = ("path", "mode", "user", "group", "ensure_parents")
FILESYSTEM = ("mountpoint", "minsize")
REASONS = {
    "groups": "package groups are not supported: Debian has none; list their packages under [[packages]]",
    "customizations.sshkey": "not supported; give the key in a [[customizations.user]] entry (osbuild's newer form)",
    "customizations.firewall.services": "firewalld services are not supported; open their ports under ports",
    "customizations.firewall.zones": "firewall zones are not supported; only ports can be opened",
    "customizations.group.gid": "fixed group ids are not supported; the group is created with the next free id",
}
# osbuild's data sizes: bytes, or a number with a decimal or binary unit.
SIZE = re.compile(r"\s*([0-9]+)\s*([A-Za-z]*)\s*")
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


class NotInToml(ValueError):
    """The body holds something osbuild's blueprint format has no place for."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(f"the osbuild blueprint format cannot hold {', '.join(fields)}; export as JSON instead")
        self.fields = fields


class _Reader:
    """Walks the parsed TOML, collecting every problem with the key it is at."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def refuse(self, path: str, reason: str) -> None:
        self.errors.append(FieldError(path, reason))

    def table(self, value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any] | None:
        """``value`` as a table holding only ``known`` keys (each other key refused), or None."""
        if not isinstance(value, dict):
            self.refuse(path, f"expected a table, got {kind_of(value)}")
            return None
        where = path.replace("[", " ").split(" ")[0] or "a blueprint"
        for key in value:
            here = at(path, key)
            if key not in known:
                generic = re.sub(r"\[[0-9]+\]", "", here)
                self.refuse(here, REASONS.get(generic) or f"not supported; {where} takes: {', '.join(known)}")
        return value

    def tables(self, value: Any, path: str, known: tuple[str, ...]) -> list[dict[str, Any]]:
        """An array of tables ([[path]]); the entries that are tables."""
        if not isinstance(value, list):
            self.refuse(path, f"expected an array of tables ([[{path}]]), got {kind_of(value)}")
            return []
        found = [self.table(entry, item(path, i), known) for i, entry in enumerate(value)]
        return [entry for entry in found if entry is not None]


def body_from_toml(text: str | bytes, image_requests: list[dict[str, Any]]) -> dict[str, Any]:
    """The blueprint body an osbuild blueprint describes, building ``image_requests``; not yet validated."""
    reader = _Reader()
    document = reader.table(_parse(text), "", TOP_LEVEL)
    assert document is not None  # tomllib always gives a table
    body: dict[str, Any] = {"image_requests": image_requests}
    if "name" not in document:
        reader.refuse("name", "missing required key")
    for key in ("name", "description"):
        if key in document:
            body[key] = document[key]
    if "version" in document and not isinstance(document["version"], str):
        reader.refuse("version", f"expected a string like \"1.0.0\", got {kind_of(document['version'])}")
    distribution = _distribution(reader, document.get("distro"))
    if distribution is not None:
        body["distribution"] = distribution
    customizations = _customizations(reader, document["customizations"]) if "customizations" in document else {}
    packages = [*_packages(reader, document, "packages"), *_packages(reader, document, "modules")]
    if packages:
        customizations = {"packages": packages, **customizations}
    if customizations:
        body["customizations"] = customizations
    if reader.errors:
        raise ValidationFailed(reader.errors, "osbuild blueprint")
    return body


def _parse(text: str | bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise ValidationFailed([FieldError("", "malformed TOML: not UTF-8 text")], "osbuild blueprint") from None
    except tomllib.TOMLDecodeError as error:
        raise ValidationFailed([FieldError("", f"malformed TOML: {error}")], "osbuild blueprint") from None


def _distribution(reader: _Reader, distro: Any) -> str | None:
    supported = ", ".join(DISTRIBUTIONS)
    if distro is None:
        reader.refuse("distro", f"required here (there is no host distribution to default to); one of: {supported}")
    elif not isinstance(distro, str) or distro not in DISTRIBUTIONS:
        reader.refuse("distro", f"{distro!r} is not built here; this service builds Debian only: {supported}")
    else:
        return distro
    return None


def _packages(reader: _Reader, document: Mapping[str, Any], key: str) -> list[Any]:
    found: list[Any] = []
    for i, entry in enumerate(reader.tables(document.get(key, []), key, ("name", "version"))):
        here = item(key, i)
        if "name" not in entry:
            reader.refuse(at(here, "name"), "missing required key")
            continue
        version = entry.get("version", "*")
        if not isinstance(version, str):
            reader.refuse(at(here, "version"), f"expected a string, got {kind_of(version)}")
        elif version in ("", "*"):
            found.append(entry["name"])
        elif any(glob in version for glob in "*?["):
            reader.refuse(at(here, "version"),
                          f"{version!r} is a pattern; give \"*\" for the newest or an exact Debian version to pin")
        else:
            found.append(f"{entry['name']}={version}")
    return found


def _customizations(reader: _Reader, value: Any) -> dict[str, Any]:
    path = "customizations"
    table = reader.table(value, path, CUSTOMIZATIONS)
    if table is None:
        return {}
    found: dict[str, Any] = {}
    if "hostname" in table:
        found["hostname"] = table["hostname"]
    for key, known in TABLES.items():
        if key in table and (sub := reader.table(table[key], at(path, key), known)) is not None:
            found[key] = dict(sub)
    if "user" in table:
        found["users"] = reader.tables(table["user"], at(path, "user"), USER)
    if "group" in table:
        _groups(reader, table["group"], found.get("users", []))
    if "files" in table:
        found["files"] = reader.tables(table["files"], at(path, "files"), FILE)
    if "directories" in table:
        found["directories"] = reader.tables(table["directories"], at(path, "directories"), DIRECTORY)
    if "firewall" in table and (firewall := reader.table(table["firewall"], at(path, "firewall"), ("ports",))):
        found["firewall"] = {"ports": firewall.get("ports", [])}
    if "filesystem" in table:
        found["filesystem"] = _filesystems(reader, table["filesystem"])
    return found


def _groups(reader: _Reader, value: Any, users: list[dict[str, Any]]) -> None:
    """Only a group some user joins: users' groups are created with them, and the body has no other kind."""
    joined = {group for user in users if isinstance(user.get("groups"), list) for group in user["groups"]}
    path = "customizations.group"
    for i, entry in enumerate(reader.tables(value, path, ("name",))):
        name = entry.get("name")
        if name is None:
            reader.refuse(at(item(path, i), "name"), "missing required key")
        elif name not in joined:
            reader.refuse(at(item(path, i), "name"),
                          f"a group no user joins cannot be created here; add {name!r} to a user's groups")


def _filesystems(reader: _Reader, value: Any) -> list[dict[str, Any]]:
    path = "customizations.filesystem"
    found: list[dict[str, Any]] = []
    for i, entry in enumerate(reader.tables(value, path, FILESYSTEM)):
        here = item(path, i)
        converted = {key: entry[key] for key in ("mountpoint",) if key in entry}
        if "minsize" not in entry:
            reader.refuse(at(here, "minsize"), "missing required key")
        elif (size := _size(entry["minsize"])) is None:
            reader.refuse(at(here, "minsize"), f"{entry['minsize']!r} is not a size: bytes, or a number and a "
                                               "unit like \"2 GiB\" (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")
        else:
            converted["min_size"] = size
        found.append(converted)
    return found


def _size(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not (match := SIZE.fullmatch(value)):
        return None
    unit = UNITS.get(match[2].lower())
    return None if unit is None else int(match[1]) * unit


def toml_document(body: Mapping[str, Any], version: int) -> dict[str, Any]:
    """The osbuild blueprint of a stored body, as a dict for a TOML writer.

    Image requests are left out (osbuild picks image types at compose time);
    whatever else has no place in the format raises NotInToml.
    """
    document: dict[str, Any] = {
        "name": body["name"],
        "description": body.get("description", ""),
        # osbuild wants semver; ours is one number per version.
        "version": f"{version}.0.0",
        "distro": body["distribution"],
    }
    custom = dict(body.get("customizations") or {})
    packages = custom.pop("packages", [])
    if packages:
        document["packages"] = [_package(spec) for spec in packages]
    out: dict[str, Any] = {}
    lost: list[str] = []
    for key, value in custom.items():
        here = at("customizations", key)
        if key in ("hostname", "firewall", "directories", *TABLES):
            out[key] = {"timezone": value} if key == "timezone" and isinstance(value, str) else value
        elif key == "users":
            out["user"] = value
        elif key == "files":
            out[key] = value
            lost += [at(item(here, i), extra) for i, entry in enumerate(value) for extra in entry if extra not in FILE]
        elif key == "filesystem":
            out[key] = [{"mountpoint": entry["mountpoint"], "minsize": entry["min_size"]} for entry in value]
        else:
            lost.append(here)
    if lost:
        raise NotInToml(lost)
    if out:
        document["customizations"] = out
    return document


def _package(spec: str) -> dict[str, str]:
    name = package_name(spec)
    return {"name": name, "version": spec[len(name) + 1 :] or "*"}
