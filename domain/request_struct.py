"""The base of every compose-request Struct: immutable, strict, compact."""

from __future__ import annotations

import msgspec


class RequestStruct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """A part of a compose request.

    Unknown fields are refused rather than ignored, so a misspelt option
    (`hostnmae`) is an error the user sees instead of a setting silently lost.
    Defaults are left out when encoding, so a stored request reads like the one
    the user sent.
    """
