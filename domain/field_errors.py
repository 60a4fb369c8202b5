"""How a refused request says what is wrong with it."""

from __future__ import annotations

import msgspec


class FieldError(msgspec.Struct, frozen=True):
    """One problem with one field.

    `field` is a JSON path without the leading `$.`, e.g.
    `customizations.files[2].path`; the empty string means the request body
    as a whole (malformed JSON, not an object).
    """

    field: str
    reason: str


class ValidationFailed(ValueError):
    """A request was refused; `errors` lists every problem found, not just the first."""

    def __init__(self, errors: list[FieldError], what: str = "compose request") -> None:
        self.errors = errors
        summary = "; ".join(f"{e.field or '(request)'}: {e.reason}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"invalid {what}: {summary}{more}")
