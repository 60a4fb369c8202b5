"""The create-image form: its steps, what it holds, the compose request it makes,
and where each of the API's field errors belongs on it.

The form is plain HTML posted step by step; the server keeps nothing between
steps. Each step posts every field: its own as inputs, the others' as hidden
inputs, so Back, Next and Review lose nothing and work without JavaScript.
Validation is the backend's (``POST /compose`` answers 400 with one error per
field); form_errors.py maps those errors back to the inputs they concern.

The same form saves a blueprint (a compose request under a name, with a
description) and edits one: ``from_blueprint`` fills it from a stored body,
and what the form has no inputs for (more images, repositories, directories,
kernel, firewall, filesystems, a user's password hash) is carried along in a
hidden field and put back, so saving a version never drops it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

STEPS: tuple[tuple[str, str], ...] = (
    ("image", "Image"),
    ("target", "Upload target"),
    ("packages", "Packages"),
    ("users", "Users"),
    ("system", "System"),
    ("files", "Files and first boot"),
    ("review", "Review"),
)
STEP_KEYS = tuple(key for key, _ in STEPS)
TARGETS = (("local", "Download from this service"), ("aws.s3", "Amazon S3"), ("aws", "Amazon EC2 (AMI)"))

USER_FIELDS = ("name", "groups", "key", "password")
FILE_FIELDS = ("path", "mode", "user", "group", "data")
FIELD_STEPS = {
    **dict.fromkeys(("image_name", "description", "distribution", "architecture", "image_type"), "image"),
    **dict.fromkeys(("target", "s3_region", "s3_bucket", "s3_public", "aws_region", "aws_share_with"), "target"),
    "packages": "packages",
    **dict.fromkeys(
        ("hostname", "timezone", "languages", "keyboard", "services_enabled", "services_disabled", "services_masked"),
        "system",
    ),
    "first_boot_script": "files",
    # On no step: always carried as hidden inputs.
    **dict.fromkeys(("blueprint_id", "carried", "purpose"), "meta"),
}
# What the form has inputs for; the rest of a blueprint is carried along.
MODELLED_CUSTOMIZATIONS = ("packages", "users", "services", "files", "hostname", "timezone", "locale", "first_boot_script")
ROW = re.compile(r"(users|files)-(\d+)-(\w+)")
# More rows than anyone types by hand; bounds what a crafted form can make us render.
MAX_ROWS = 50


class UserRow(msgspec.Struct, kw_only=True):
    name: str = ""
    groups: str = ""
    key: str = ""
    # Only from a stored blueprint (a crypt hash): kept, never shown.
    password: str = ""

    @property
    def empty(self) -> bool:
        return not (self.name.strip() or self.groups.strip() or self.key.strip() or self.password)


class FileRow(msgspec.Struct, kw_only=True):
    path: str = ""
    mode: str = ""
    user: str = ""
    group: str = ""
    data: str = ""

    @property
    def empty(self) -> bool:
        return not (self.path.strip() or self.mode.strip() or self.user.strip() or self.group.strip() or self.data)


class ComposeForm(msgspec.Struct, kw_only=True):
    image_name: str = ""
    description: str = ""
    distribution: str = "debian-12"
    architecture: str = "x86_64"
    image_type: str = "guest-image"
    target: str = "local"
    s3_region: str = ""
    s3_bucket: str = ""
    s3_public: bool = False
    aws_region: str = ""
    aws_share_with: str = ""
    packages: str = ""
    users: list[UserRow] = msgspec.field(default_factory=lambda: [UserRow()])
    hostname: str = ""
    timezone: str = ""
    languages: str = ""
    keyboard: str = ""
    services_enabled: str = ""
    services_disabled: str = ""
    services_masked: str = ""
    files: list[FileRow] = msgspec.field(default_factory=lambda: [FileRow()])
    first_boot_script: str = ""
    # The blueprint being edited, if any, and what of it the form has no inputs for (JSON).
    blueprint_id: str = ""
    carried: str = ""
    # "blueprint" when the form was opened to make a blueprint: it is saved rather than built.
    purpose: str = ""

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> ComposeForm:
        values: dict[str, Any] = {}
        rows: dict[str, dict[int, dict[str, str]]] = {"users": {}, "files": {}}
        for name, value in form.items():
            text = value if isinstance(value, str) else ""
            if match := ROW.fullmatch(name):
                kind, index, field = match.group(1), int(match.group(2)), match.group(3)
                if index < MAX_ROWS and field in (USER_FIELDS if kind == "users" else FILE_FIELDS):
                    rows[kind].setdefault(index, {})[field] = text
            elif name == "s3_public":
                values[name] = text == "on"
            elif name in FIELD_STEPS:
                values[name] = text
        form_values = cls(**values)
        if rows["users"]:
            form_values.users = [UserRow(**rows["users"].get(i, {})) for i in range(max(rows["users"]) + 1)]
        if rows["files"]:
            form_values.files = [FileRow(**rows["files"].get(i, {})) for i in range(max(rows["files"]) + 1)]
        return form_values

    def add_row(self, kind: str) -> None:
        if kind == "users" and len(self.users) < MAX_ROWS:
            self.users.append(UserRow())
        elif kind == "files" and len(self.files) < MAX_ROWS:
            self.files.append(FileRow())

    def fields(self) -> Iterator[tuple[str, str, str]]:
        """Every field as (step, input name, value): what a step carries of the others."""
        for name, step in FIELD_STEPS.items():
            value = getattr(self, name)
            if isinstance(value, bool):
                if value:
                    yield step, name, "on"
            else:
                yield step, name, value
        for index, user in enumerate(self.users):
            for field in USER_FIELDS:
                yield "users", f"users-{index}-{field}", getattr(user, field)
        for index, file in enumerate(self.files):
            for field in FILE_FIELDS:
                yield "files", f"files-{index}-{field}", getattr(file, field)

    def hidden(self, step: str) -> list[tuple[str, str]]:
        return [(name, value) for field_step, name, value in self.fields() if field_step != step]

    def kept_users(self) -> list[int]:
        return [index for index, user in enumerate(self.users) if not user.empty]

    def kept_files(self) -> list[int]:
        return [index for index, file in enumerate(self.files) if not file.empty]

    def compose_request(self) -> dict[str, Any]:
        """The ``POST /compose`` body: blank fields are left out, the API judges the rest."""
        carried = self._carried()
        first = {"architecture": self.architecture, "image_type": self.image_type, "upload_targets": [self._target()]}
        request: dict[str, Any] = {
            "distribution": self.distribution,
            "image_requests": [{**carried.get("first_image", {}), **first}, *carried.get("more_images", [])],
        }
        if self.image_name.strip():
            request["image_name"] = self.image_name.strip()
        kept, own = carried.get("customizations", {}), self._customizations()
        customizations = {**kept, **own}
        if isinstance(kept.get("timezone"), dict) and "timezone" in own:  # the zone typed, the NTP servers kept
            customizations["timezone"] = {**kept["timezone"], "timezone": own["timezone"]}
        if customizations:
            request["customizations"] = customizations
        return request

    def blueprint_body(self) -> dict[str, Any]:
        """The ``POST /blueprints`` (or ``PUT``) body: the compose request under a name."""
        request = self.compose_request()
        body = {"name": request.pop("image_name", ""), "description": self.description.strip(), **request}
        return body

    @classmethod
    def from_blueprint(cls, blueprint_id: str, body: Mapping[str, Any]) -> ComposeForm:
        """The form for editing a stored blueprint body (as ``GET /blueprints/{id}`` shows it)."""
        images = list(body.get("image_requests") or [{}])
        image = dict(images[0])
        custom = dict(body.get("customizations") or {})
        target = (image.pop("upload_targets", None) or [{"type": "local"}])[0]
        options = target.get("upload_options") or {}
        timezone = custom.get("timezone")
        locale = custom.get("locale") or {}
        services = custom.get("services") or {}
        carried: dict[str, Any] = {
            "first_image": {k: v for k, v in image.items() if k not in ("architecture", "image_type", "upload_options")},
            "more_images": images[1:],
            "customizations": {k: v for k, v in custom.items() if k not in MODELLED_CUSTOMIZATIONS},
        }
        if isinstance(timezone, dict) and timezone.get("ntpservers"):
            carried["customizations"]["timezone"] = {"ntpservers": timezone["ntpservers"]}
        return cls(
            image_name=str(body.get("name", "")), description=str(body.get("description", "")),
            distribution=str(body.get("distribution", "")), architecture=str(image.get("architecture", "x86_64")),
            image_type=str(image.get("image_type", "")), target=str(target.get("type", "local")),
            s3_region=str(options.get("region", "")) if target.get("type") == "aws.s3" else "",
            s3_bucket=str(options.get("bucket", "")), s3_public=bool(options.get("public", False)),
            aws_region=str(options.get("region", "")) if target.get("type") == "aws" else "",
            aws_share_with=" ".join(options.get("share_with_accounts", ())),
            packages="\n".join(custom.get("packages", ())),
            users=[
                UserRow(name=u.get("name", ""), groups=" ".join(u.get("groups", ())), key=u.get("key") or "",
                        password=u.get("password") or "")
                for u in custom.get("users", ())
            ] or [UserRow()],
            hostname=custom.get("hostname") or "",
            timezone=(timezone.get("timezone") or "") if isinstance(timezone, dict) else (timezone or ""),
            languages=" ".join(locale.get("languages", ())), keyboard=locale.get("keyboard") or "",
            services_enabled=" ".join(services.get("enabled", ())),
            services_disabled=" ".join(services.get("disabled", ())),
            services_masked=" ".join(services.get("masked", ())),
            files=[
                FileRow(path=f.get("path", ""), mode=f.get("mode") or "", user=str(f.get("user") or ""),
                        group=str(f.get("group") or ""), data=f.get("data", ""))
                for f in custom.get("files", ())
            ] or [FileRow()],
            first_boot_script=custom.get("first_boot_script") or "",
            blueprint_id=blueprint_id, carried=json.dumps(carried),
        )  # fmt: skip

    def _carried(self) -> dict[str, Any]:
        try:
            carried = json.loads(self.carried) if self.carried else {}
        except ValueError:
            return {}
        return carried if isinstance(carried, dict) else {}

    def _target(self) -> dict[str, Any]:
        if self.target == "aws.s3":
            options: dict[str, Any] = {
                name: value.strip()
                for name, value in (("region", self.s3_region), ("bucket", self.s3_bucket))
                if value.strip()
            }
            if self.s3_public:
                options["public"] = True
            return {"type": "aws.s3", "upload_options": options}
        if self.target == "aws":
            options = {"region": self.aws_region.strip()}
            if accounts := words(self.aws_share_with):
                options["share_with_accounts"] = accounts
            return {"type": "aws", "upload_options": options}
        return {"type": self.target or "local"}

    def _customizations(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if packages := words(self.packages):
            found["packages"] = packages
        users = []
        for index in self.kept_users():
            user = self.users[index]
            entry: dict[str, Any] = {"name": user.name.strip()}
            if groups := words(user.groups):
                entry["groups"] = groups
            if user.key.strip():
                entry["key"] = user.key.strip()
            if user.password:
                entry["password"] = user.password
            users.append(entry)
        if users:
            found["users"] = users
        for name in ("hostname", "timezone"):
            if value := getattr(self, name).strip():
                found[name] = value
        locale: dict[str, Any] = {}
        if languages := words(self.languages):
            locale["languages"] = languages
        if self.keyboard.strip():
            locale["keyboard"] = self.keyboard.strip()
        if locale:
            found["locale"] = locale
        services = {
            kind: units
            for kind in ("enabled", "disabled", "masked")
            if (units := words(getattr(self, f"services_{kind}")))
        }
        if services:
            found["services"] = services
        files = []
        for index in self.kept_files():
            file = self.files[index]
            entry = {"path": file.path.strip(), "data": file.data}
            if file.mode.strip():
                entry["mode"] = file.mode.strip()
            for name in ("user", "group"):  # a number is a uid or gid, as upstream allows
                if owner := getattr(file, name).strip():
                    entry[name] = int(owner) if owner.isdigit() else owner
            files.append(entry)
        if files:
            found["files"] = files
        if self.first_boot_script.strip():
            found["first_boot_script"] = self.first_boot_script
        return found


def words(text: str) -> list[str]:
    """A list typed as words separated by commas, spaces or lines."""
    return [word for word in re.split(r"[\s,]+", text) if word]
