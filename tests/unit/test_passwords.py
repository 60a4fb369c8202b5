"""Plain-text passwords become SHA-512 crypt hashes before anything is recorded."""

from __future__ import annotations

import pytest
from passlib.hash import sha512_crypt

from domain.blueprint_body import validate_blueprint
from domain.customization_rules import SHA512_CRYPT
from domain.validation import validate_compose_request
from services.passwords import seal_passwords

pytestmark = pytest.mark.unit
KNOWN_HASH = "$6$abcdefgh$" + "A" * 86


def request(*users: dict) -> dict:
    return {
        "distribution": "debian-12",
        "image_requests": [{"architecture": "x86_64", "image_type": "tar"}],
        "customizations": {"users": list(users)},
    }


def test_a_plain_password_is_replaced_by_a_hash_of_it_and_a_hash_is_kept() -> None:
    compose = validate_compose_request(
        request({"name": "alice", "password": "correct horse"}, {"name": "bob", "password": KNOWN_HASH}, {"name": "carol"})
    )

    alice, bob, carol = seal_passwords(compose).customizations.users

    assert SHA512_CRYPT.fullmatch(alice.password) and sha512_crypt.verify("correct horse", alice.password)
    assert bob.password == KNOWN_HASH
    assert carol.password is None


def test_two_seals_of_one_password_use_different_salts() -> None:
    compose = validate_compose_request(request({"name": "alice", "password": "correct horse"}))

    assert seal_passwords(compose).customizations.users[0].password != seal_passwords(compose).customizations.users[0].password


def test_a_request_without_passwords_is_returned_as_it_is() -> None:
    compose = validate_compose_request(request({"name": "alice", "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGv1Tj1K2X0DqTQ3S3l9rJ5O7n0b4xD7PZ3cJw9b2xYz a@b"}))

    assert seal_passwords(compose) is compose


def test_a_blueprints_passwords_are_sealed_too() -> None:
    body = validate_blueprint({"name": "web", **request({"name": "alice", "password": "correct horse"})})

    sealed = seal_passwords(body)

    assert sha512_crypt.verify("correct horse", sealed.customizations.users[0].password)
    assert sealed.name == "web"
