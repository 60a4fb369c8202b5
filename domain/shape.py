"""Turn untrusted JSON-shaped data into request Structs, reporting every shape problem.

msgspec stops at the first error it meets, but a user fixing a request wants
them all at once. So the walk goes through the Struct types field by field,
lets msgspec convert each leaf (its type rules stay the single source of
truth), and builds each Struct from parts that converted. Rules registered for
a Struct type, or for one of its fields, run on every one that could be built,
so a badly typed file does not hide a bad package name elsewhere.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable, Mapping
from typing import Any, Union, get_args, get_origin

import msgspec

from domain.field_errors import FieldError

# Returned in place of a value that could not be converted; its parents fail too.
INVALID: Any = object()

# A rule gets the built value, its path and the walk (to report or build more).
Rule = Callable[[Any, str, "Walk"], None]
# Keyed by Struct type (runs on each built instance) or (Struct type, field name).
Rules = Mapping[type | tuple[type, str], Rule]


def at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def item(path: str, index: int) -> str:
    return f"{path}[{index}]"


_JSON_KINDS = {dict: "an object", list: "a list", tuple: "a list", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "bool": "a boolean", "float": "a number",
               "array": "a list", "object": "an object", "null": "null"}
_MSGSPEC_PATH = re.compile(r" - at (?P<key>`key` in )?`\$(?P<sub>[^`]*)`$")


def kind_of(value: object) -> str:
    return _JSON_KINDS.get(type(value), f"a {type(value).__name__}")


def _human(message: str) -> tuple[str, str]:
    """msgspec's "Expected `str`, got `int` - at `$[1]`" -> ("[1]", "expected a string, got an integer")."""
    sub = ""
    if match := _MSGSPEC_PATH.search(message):
        sub, message = match["sub"], message[: match.start()]
        if match["key"]:
            message = f"a key: {message}"

    def words(m: re.Match[str]) -> str:
        return " or ".join(_TYPE_WORDS.get(t, t) for t in m[1].split(" | "))

    message = re.sub(r"`([^`]*)`", words, message)
    return sub, message[:1].lower() + message[1:]


@functools.cache
def _fields(cls: type) -> tuple[msgspec.structs.FieldInfo, ...]:
    # msgspec resolves the annotations again on every call; the types never change.
    return msgspec.structs.fields(cls)


def _is_struct(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


class Walk:
    def __init__(self, rules: Rules, unknown_field_reason: Callable[[type, str], str]) -> None:
        self.errors: list[FieldError] = []
        self._rules = rules
        self._unknown_field_reason = unknown_field_reason

    def refuse(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field=field, reason=reason))

    def build(self, value: Any, tp: Any, path: str) -> Any:
        """`value` converted to `tp`, or INVALID after reporting why not."""
        if _is_struct(tp):
            return self._struct(value, tp, path)
        origin = get_origin(tp)
        if origin is tuple and len(get_args(tp)) == 2 and get_args(tp)[1] is Ellipsis:
            return self._sequence(value, get_args(tp)[0], path)
        if origin in (Union, types.UnionType):
            return self._union(value, tp, path)
        return self._convert(value, tp, path)

    def _convert(self, value: Any, tp: Any, path: str) -> Any:
        try:
            return msgspec.convert(value, tp)
        except msgspec.ValidationError as error:
            sub, reason = _human(str(error))
            self.refuse(path + sub, reason)
        except UnicodeError:
            # Only parsed input can get here: JSON text with a lone surrogate
            # is already refused as malformed by the decoder.
            self.refuse(path, "is not valid Unicode text (it holds an unpaired surrogate)")
        return INVALID

    def _sequence(self, value: Any, element: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):
            self.refuse(path, f"expected a list, got {kind_of(value)}")
            return INVALID
        built = [self.build(v, element, item(path, i)) for i, v in enumerate(value)]
        return INVALID if any(b is INVALID for b in built) else tuple(built)

    def _union(self, value: Any, tp: Any, path: str) -> Any:
        members = get_args(tp)
        if value is None and type(None) in members:
            return None
        structs = [m for m in members if _is_struct(m)]
        if structs and isinstance(value, dict):
            if len(structs) == 1:
                return self._struct(value, structs[0], path)
            return self._tagged(value, structs, path)
        return self._convert(value, tp, path)

    def _tagged(self, value: dict[Any, Any], structs: list[type], path: str) -> Any:
        tag_field = structs[0].__struct_config__.tag_field
        by_tag = {s.__struct_config__.tag: s for s in structs}
        expected = ", ".join(sorted(by_tag))
        if tag_field not in value:
            self.refuse(at(path, tag_field), f"missing required field; one of: {expected}")
            return INVALID
        tag = value[tag_field]
        if not isinstance(tag, str) or tag not in by_tag:
            self.refuse(at(path, tag_field), f"unknown {tag_field} {tag!r}; expected one of: {expected}")
            return INVALID
        return self._struct(value, by_tag[tag], path)

    def _struct(self, value: Any, cls: type, path: str) -> Any:
        if not isinstance(value, dict):
            self.refuse(path, f"expected an object, got {kind_of(value)}")
            return INVALID
        fields = _fields(cls)
        known = {f.encode_name for f in fields} | {cls.__struct_config__.tag_field}
        for key in value:
            if key not in known:
                self.refuse(at(path, str(key)), self._unknown_field_reason(cls, str(key)))
        built: dict[str, Any] = {}
        complete = True
        for f in fields:
            field_path = at(path, f.encode_name)
            if f.encode_name not in value:
                if f.required:
                    self.refuse(field_path, "missing required field")
                    complete = False
                continue
            part = self.build(value[f.encode_name], f.type, field_path)
            if part is INVALID:
                complete = False
                continue
            # A null optional field means "not set": its rule has nothing to check.
            if part is not None and (rule := self._rules.get((cls, f.name))):
                rule(part, field_path, self)
            built[f.name] = part
        if not complete:
            return INVALID
        instance = cls(**built)
        if rule := self._rules.get(cls):
            rule(instance, path, self)
        return instance
