"""docker-compose.yml describes a deployment that can run: there is no container
engine here, so the file is checked against the Compose Specification's schema,
and every command, setting and build tool it relies on against the code."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from services.cli import _parser
from services.identity.config import IssuerConfig
from workers.build.tools import BUILD_TOOLS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "compose_spec" / "compose-spec.json"
SOURCE_DIRS = ("aptcache", "domain", "events", "services", "workers")
# Packages of the Debian base image (Essential or priority required in
# debian:bookworm-slim, which python:3.11-slim-bookworm is built on).
DEBIAN_BASE_PACKAGES = frozenset({"apt", "dpkg", "tar", "util-linux"})
SETTING = re.compile(r"\bIMAGE_BUILDER_[A-Z0-9_]+\b")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def image_builder_services() -> dict[str, dict]:
    """The services that run the image the Dockerfile builds."""
    return {name: service for name, service in compose()["services"].items() if "build" in service}


def settings_used() -> set[str]:
    return {
        variable
        for service in compose()["services"].values()
        for variable in service.get("environment", {})
        if variable.startswith("IMAGE_BUILDER_")
    }


def source_text() -> str:
    return "\n".join(path.read_text() for folder in SOURCE_DIRS for path in (ROOT / folder).rglob("*.py"))


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_catches_a_misspelt_service_key() -> None:
    broken = compose()
    broken["services"]["worker"]["privilegd"] = True
    assert not jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_the_whole_system_is_in_the_compose_file() -> None:
    commands = {name: tuple(service["command"][:2]) for name, service in image_builder_services().items()}
    assert set(commands.values()) >= {
        ("serve", "issuer"), ("serve", "composer"), ("serve", "backend"), ("serve", "frontend"),
        ("relay", "--service"), ("migrate", "--service"),
    }  # fmt: skip
    assert commands["worker"][0] == "worker"
    services = compose()["services"]
    assert services["composer"]["deploy"]["replicas"] >= 2
    assert services["worker"]["privileged"] is True
    assert services["s3"]["image"].startswith("minio/")


@pytest.mark.parametrize("name", sorted(image_builder_services()))
def test_each_service_runs_a_real_image_builder_command(name: str) -> None:
    command = image_builder_services()[name]["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    args = _parser().parse_args(argv)  # argparse exits (SystemExit) on anything it does not know
    assert callable(args.run)


def test_the_dockerfile_runs_image_builder_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["image-builder"\]$', dockerfile, re.MULTILINE)
    assert all(service["build"] == "." for service in image_builder_services().values())


def test_every_setting_in_the_compose_file_is_read_by_the_code() -> None:
    used = settings_used()
    read = set(SETTING.findall(source_text()))
    assert used, "the compose file configures the services with IMAGE_BUILDER_* settings"
    assert sorted(used - read) == []


def test_every_setting_in_the_compose_file_is_documented_in_the_readme() -> None:
    used = settings_used()
    readme = (ROOT / "README.md").read_text()
    assert sorted(name for name in used if name not in readme) == []


def test_the_dockerfile_installs_every_build_tool_a_worker_checks_for() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base and re.search(r"-(bookworm|trixie)$", base.group(1)), "the build tools come from Debian"
    install = re.search(r"apt-get install ([^&]+)", dockerfile.replace("\\\n", " "))
    assert install
    installed = {word for word in install.group(1).split() if not word.startswith("-")}
    assert sorted(set(BUILD_TOOLS.values()) - installed - DEBIAN_BASE_PACKAGES) == []
    # The Debian archive's keyring verifies the mirror (domain/distributions.py).
    assert "debian-archive-keyring" in installed


def test_the_issuer_config_the_compose_file_mounts_is_valid_and_has_every_client_it_names() -> None:
    services = compose()["services"]
    config = IssuerConfig.from_file(ROOT / "deploy" / "issuer.toml")
    clients = {client.client_id for client in config.clients}
    named = {
        services["backend"]["environment"]["IMAGE_BUILDER_BACKEND_CLIENT_ID"],
        services["worker"]["environment"]["IMAGE_BUILDER_WORKER_CLIENT_ID"],
        services["frontend"]["environment"]["IMAGE_BUILDER_FRONTEND_CLIENT_ID"],
    }
    assert named <= clients
    assert config.issuer == services["composer"]["environment"]["IMAGE_BUILDER_OIDC_ISSUER"]
    assert services["composer"]["environment"]["IMAGE_BUILDER_COMPOSER_TRUSTED_CLIENTS"] == "backend"
