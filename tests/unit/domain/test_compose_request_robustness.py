"""Whatever arrives, validation answers with ValidationFailed or a request, never a crash."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import msgspec

from domain.field_errors import ValidationFailed
from domain.validation import validate_compose_request
from tests.unit.domain.compose_requests import full_request

# Values a careless or hostile client might send in place of any field.
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 10**30, 1.5, "", "x" * 5000, "\ud800", "\0", "[", "http://[::1", "https://a:b@[x]/",
    "$6$", "$y$", "=", "/", "..", "0-0/tcp", "99999999999999999999/tcp", "ssh-ed25519 ====", "/proc",
    [], {}, [1], {"a": 1}, {1: 2}, {"type": "aws"}, set(), b"x", object(),
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _validate(raw: Any) -> None:
    try:
        validate_compose_request(raw)
    except ValidationFailed as refused:
        assert refused.errors


def test_odd_values_anywhere_in_a_request_are_refused_not_raised() -> None:
    rng = random.Random(20240601)  # fixed, so a failure reproduces
    paths = [p for p in _paths(full_request()) if p]
    for _ in range(1500):
        request = full_request()
        for path in rng.sample(paths, rng.randint(1, 3)):
            parent = request
            try:
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = copy.copy(rng.choice(ODD_VALUES))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier replacement removed this path
        _validate(request)


def test_corrupted_json_bytes_are_refused_not_raised() -> None:
    rng = random.Random(7)
    original = msgspec.json.encode(full_request())
    for _ in range(3000):
        corrupted = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(corrupted))
            choice = rng.random()
            if choice < 0.4:
                corrupted[at] = rng.randrange(256)
            elif choice < 0.7:
                del corrupted[at]
            else:
                corrupted.insert(at, rng.choice(b'{}[]",:0\\u-'))
        _validate(bytes(corrupted))
