"""The issuer's config file, and the first-run helper of the embedded mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from services.identity.config import IssuerConfig, create_initial_config, new_client, new_user
from services.identity.issuer import create_issuer_app
from services.identity.passwords import hash_secret, verify_secret
from tests.unit.identity.browser import authorization_params, new_verifier

pytestmark = pytest.mark.unit

TOML = """
issuer = "http://127.0.0.1:8080/oidc"
audiences = ["image-builder", "composer"]
token_lifetime = 600

[[users]]
username = "ada"
password_hash = "{hash}"
org_id = "org-a"
roles = ["user", "admin"]

[[clients]]
client_id = "web"
client_secret_hash = "{hash}"
org_id = "org-a"
grant_types = ["authorization_code"]
redirect_uris = ["http://127.0.0.1:8080/auth/callback"]
"""


def test_a_toml_config_file_is_read_with_its_folder_as_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "issuer.toml"
    path.write_text(TOML.format(hash=hash_secret("pw")))

    config = IssuerConfig.from_file(path)

    assert config.issuer == "http://127.0.0.1:8080/oidc"
    assert (config.audiences, config.token_lifetime, config.data_dir) == (("image-builder", "composer"), 600, tmp_path)
    assert config.users[0].roles == ("user", "admin")
    assert config.clients[0].redirect_uris == ("http://127.0.0.1:8080/auth/callback",)


def test_a_saved_config_reads_back_the_same_and_only_its_owner_can_read_it(tmp_path: Path) -> None:
    config, _ = create_initial_config("http://127.0.0.1:8080/oidc", tmp_path / "data")
    path = tmp_path / "data" / "issuer.json"

    config.save(path)

    assert IssuerConfig.from_file(path) == config
    assert path.stat().st_mode & 0o077 == 0


def test_the_issuer_url_can_be_overridden_when_reading(tmp_path: Path) -> None:
    config, _ = create_initial_config("http://127.0.0.1:8080/oidc", tmp_path)
    config.save(tmp_path / "issuer.json")

    assert IssuerConfig.from_file(tmp_path / "issuer.json", issuer="http://127.0.0.1:9090/oidc").issuer.endswith(
        ":9090/oidc"
    )


async def test_the_initial_secrets_are_shown_once_and_work(tmp_path: Path) -> None:
    config, secrets = create_initial_config("http://testserver.local", tmp_path, org_id="org-1")

    assert secrets.password not in config.users[0].password_hash
    assert secrets.client_secret not in config.clients[0].client_secret_hash
    assert verify_secret(secrets.password, config.users[0].password_hash)
    assert config.users[0].roles == ("user", "admin") and config.clients[0].roles == ("service",)
    async with AsyncTestClient(create_issuer_app(config)) as client:
        response = await client.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(secrets.client_id, secrets.client_secret)
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "change, message",
    [
        ({"issuer": "http://127.0.0.1:8080/oidc/"}, "slash"),
        ({"issuer": "ftp://example"}, "http"),
        ({"issuer": "http://h/oidc?x=1"}, "query"),
        ({"audiences": []}, "audience"),
        ({"token_lifetime": 0}, "positive"),
    ],
)
def test_a_config_with_a_mistake_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IssuerConfig(**{"issuer": "http://127.0.0.1/oidc", "data_dir": tmp_path, **change})  # type: ignore[arg-type]


def test_unknown_roles_and_grants_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        new_user("ada", "org-a", ("superuser",))
    with pytest.raises(ValueError, match="unsupported grant types"):
        new_client("c", "org-a", grant_types=("password",))
    with pytest.raises(ValueError, match="no redirect_uris"):
        new_client("c", "org-a", grant_types=("authorization_code",))


def test_a_config_file_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "issuer.json"
    path.write_text('{"issuer": "http://127.0.0.1/oidc", "users": [], "clients": [], "admins": []}')

    with pytest.raises(Exception, match="admins"):
        IssuerConfig.from_file(path)


def test_a_secret_hash_is_salted_and_verifies_only_its_secret() -> None:
    first, second = hash_secret("pw"), hash_secret("pw")

    assert first != second
    assert verify_secret("pw", first) and not verify_secret("pW", first)
    assert not verify_secret("pw", "md5$whatever") and not verify_secret("pw", "garbage")


async def test_the_sign_in_page_is_served_for_a_client_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "issuer.toml"
    path.write_text(
        TOML.format(hash=hash_secret("pw")).replace("http://127.0.0.1:8080/oidc", "http://testserver.local")
    )
    params = authorization_params("web", "http://127.0.0.1:8080/auth/callback", new_verifier())

    async with AsyncTestClient(create_issuer_app(IssuerConfig.from_file(path))) as client:
        page = await client.get("/authorize", params=params)

    assert page.status_code == 200 and "Sign in" in page.text
