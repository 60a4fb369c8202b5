"""Where each of the API's field errors belongs on the create form.

``POST /compose`` and ``POST /blueprints`` answer 400 with one error per field,
``details.field`` a JSON path (``customizations.users[0].key``); this maps
each to the form input it concerns, and each input to its step. Indices of
users and files count the rows sent, which skip the rows left empty.
"""

from __future__ import annotations

import re
from typing import Any

from services.frontend.compose_form import FIELD_STEPS, ROW, ComposeForm


def input_for(form: ComposeForm, api_field: str) -> str:
    """The input an API error's ``details.field`` concerns; "" when it is about the request as a whole."""
    for pattern, name in _FIELD_MAP:
        if match := pattern.match(api_field):
            return name(form, match) if callable(name) else name
    return ""


def step_of(input_name: str) -> str:
    """The step an input is on ("review" for errors that belong to none)."""
    if match := ROW.fullmatch(input_name):
        return match.group(1)
    return FIELD_STEPS.get(input_name, "review")


def _row_input(kind: str, field: str | None = None) -> Any:
    def name(form: ComposeForm, match: re.Match[str]) -> str:
        kept = form.kept_users() if kind == "users" else form.kept_files()
        index = int(match.group(1))
        row = kept[index] if index < len(kept) else 0
        return f"{kind}-{row}-{field or match.group(2)}"

    return name


def _region(form: ComposeForm, _: re.Match[str]) -> str:
    return "aws_region" if form.target == "aws" else "s3_region"


_OPTIONS = r"image_requests\[0\]\.upload_targets\[0\]\.upload_options\."
_FIELD_MAP: tuple[tuple[re.Pattern[str], Any], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"distribution\b", "distribution"),
        (r"image_name\b", "image_name"),
        (r"name\b", "image_name"),
        (r"description\b", "description"),
        (r"image_requests\[0\]\.architecture\b", "architecture"),
        (r"image_requests\[0\]\.image_type\b", "image_type"),
        (_OPTIONS + r"region\b", _region),
        (_OPTIONS + r"bucket\b", "s3_bucket"),
        (_OPTIONS + r"share_with_accounts\b", "aws_share_with"),
        (r"image_requests\b", "target"),
        (r"customizations\.packages\b", "packages"),
        (r"customizations\.users\[(\d+)\]\.(name|groups|key)\b", _row_input("users")),
        (r"customizations\.users\[(\d+)\]\.password\b", _row_input("users", "name")),
        (r"customizations\.users\[(\d+)\]", _row_input("users", "name")),
        (r"customizations\.users\b", "users-0-name"),
        (r"customizations\.hostname\b", "hostname"),
        (r"customizations\.timezone\b", "timezone"),
        (r"customizations\.locale\.keyboard\b", "keyboard"),
        (r"customizations\.locale\b", "languages"),
        (r"customizations\.services\.(enabled|disabled|masked)\b", lambda _, m: f"services_{m.group(1)}"),
        (r"customizations\.services\b", "services_enabled"),
        (r"customizations\.files\[(\d+)\]\.(path|mode|user|group|data)\b", _row_input("files")),
        (r"customizations\.files\[(\d+)\]", _row_input("files", "path")),
        (r"customizations\.files\b", "files-0-path"),
        (r"customizations\.first_boot_script\b", "first_boot_script"),
    )
)
