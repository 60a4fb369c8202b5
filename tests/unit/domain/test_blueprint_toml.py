"""osbuild blueprint TOML to a blueprint body and back."""

from __future__ import annotations

from typing import Any

import pytest
import tomli_w

from domain.blueprint_body import body_dict, validate_blueprint
from domain.blueprint_toml import NotInToml, body_from_toml, toml_document
from domain.field_errors import ValidationFailed
from tests.unit.domain.compose_requests import SHA512_HASH, ssh_key
from tests.unit.domain.osbuild_blueprints import WEB_SERVER

GUEST_IMAGE = [{"architecture": "x86_64", "image_type": "guest-image"}]


def refused(text: str | bytes) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as failed:
        body_from_toml(text, GUEST_IMAGE)
    assert "invalid osbuild blueprint" in str(failed.value)
    return {error.field: error.reason for error in failed.value.errors}


def minimal(extra: str = "") -> str:
    return f'name = "tiny"\ndistro = "debian-13"\n{extra}'


def test_a_real_world_blueprint_maps_field_by_field() -> None:
    body = body_from_toml(WEB_SERVER, GUEST_IMAGE)
    custom = body["customizations"]

    assert (body["name"], body["distribution"]) == ("web-server", "debian-12")
    assert body["description"] == "nginx, an admin with a key, and a separate /var"
    assert body["image_requests"] == GUEST_IMAGE
    assert "version" not in body  # the service numbers versions itself
    assert custom["packages"] == ["nginx", "curl", "htop=3.2.2-2", "vim"]
    assert custom["hostname"] == "web-1.example.org"
    assert custom["kernel"] == {"append": "console=ttyS0 quiet"}
    assert custom["timezone"] == {"timezone": "Europe/Berlin",
                                  "ntpservers": ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]}  # fmt: skip
    assert custom["locale"] == {"languages": ["en_US.UTF-8", "de_DE.UTF-8"], "keyboard": "de"}
    assert custom["users"] == [
        {"name": "admin", "key": ssh_key(), "password": SHA512_HASH, "groups": ["sudo", "webadmins"]},
        {"name": "deploy", "groups": ["webadmins"], "key": ssh_key("ssh-rsa", "deploy@ci")},
    ]
    assert "group" not in custom and "groups" not in custom  # webadmins is created with its users
    assert custom["services"] == {"enabled": ["nginx.service", "ssh"], "disabled": ["apt-daily.timer"],
                                  "masked": ["getty@tty2"]}  # fmt: skip
    assert custom["directories"] == [
        {"path": "/srv/www", "mode": "0755", "user": "admin", "group": "www-data", "ensure_parents": True}
    ]
    assert custom["files"] == [
        {"path": "/srv/www/index.html", "mode": "0644", "user": "admin", "group": 33, "data": "<h1>It works</h1>\n"}
    ]
    assert custom["firewall"] == {"ports": ["22:tcp", "80:tcp", "443/tcp", "60000-61000:udp"]}
    assert custom["filesystem"] == [{"mountpoint": "/", "min_size": 10 * 2**30},
                                    {"mountpoint": "/var", "min_size": 2 * 2**30}]  # fmt: skip


def test_the_mapped_blueprint_passes_the_compose_rules() -> None:
    valid = body_dict(validate_blueprint(body_from_toml(WEB_SERVER, GUEST_IMAGE)))

    assert valid["name"] == "web-server"
    assert valid["customizations"]["users"][1]["name"] == "deploy"
    assert valid["image_requests"][0]["upload_targets"] == [{"type": "local"}]


def test_a_value_the_compose_rules_refuse_is_a_400_in_the_bodys_words() -> None:
    body = body_from_toml(minimal('[customizations]\nhostname = "-bad-"\n[[packages]]\nname = "Not A Package"\n'),
                          GUEST_IMAGE)  # fmt: skip

    with pytest.raises(ValidationFailed) as failed:
        validate_blueprint(body)

    assert {e.field for e in failed.value.errors} == {"customizations.hostname", "customizations.packages[0]"}


@pytest.mark.parametrize(
    ("toml", "field", "reason"),
    [
        ('[[containers]]\nsource = "quay.io/x"\n', "containers", "a blueprint takes: name, description"),
        ('[[groups]]\nname = "development"\n', "groups", "Debian has none"),
        ('[customizations]\nsshkey = []\n', "customizations.sshkey", "[[customizations.user]]"),
        ('[customizations]\nfips = true\n', "customizations.fips", "not supported; customizations takes: hostname"),
        ('[[customizations.user]]\nname = "a"\nuid = 1200\n', "customizations.user[0].uid",
         "customizations.user takes: name, key, password, groups"),
        ('[[customizations.user]]\nname = "a"\ngroups = ["g"]\n[[customizations.group]]\nname = "g"\ngid = 1300\n',
         "customizations.group[0].gid", "fixed group ids are not supported"),
        ('[[customizations.group]]\nname = "lonely"\n', "customizations.group[0].name", "add 'lonely' to a user's groups"),
        ('[customizations.firewall]\nports = ["22:tcp"]\n[customizations.firewall.services]\nenabled = ["ftp"]\n',
         "customizations.firewall.services", "open their ports under ports"),
        ('[[customizations.files]]\npath = "/a"\nuri = "file:///b"\n', "customizations.files[0].uri", "path, mode"),
        ('[[customizations.filesystem]]\nmountpoint = "/"\nminsize = "lots"\n', "customizations.filesystem[0].minsize",
         "is not a size"),
        ('[[customizations.filesystem]]\nmountpoint = "/"\nminsize = "3 PiB"\n', "customizations.filesystem[0].minsize",
         "GiB"),
        ('[[packages]]\nname = "tmux"\nversion = "2.9*"\n', "packages[0].version", "is a pattern"),
        ('[[packages]]\nversion = "1"\n', "packages[0].name", "missing required key"),
        ('[customizations]\nkernel = "linux"\n', "customizations.kernel", "expected a table"),
        ('customizations = 3\n', "customizations", "expected a table"),
        ('[customizations.locale]\nlanguage = "de"\n', "customizations.locale.language", "languages, keyboard"),
    ],
)
def test_an_unknown_or_unsupported_key_is_refused_by_name(toml: str, field: str, reason: str) -> None:
    problems = refused(minimal(toml))

    assert field in problems, problems
    assert reason in problems[field]


@pytest.mark.parametrize(
    ("distro", "reason"),
    [('distro = "rhel-9"\n', "'rhel-9' is not built here; this service builds Debian only: debian-12, debian-13"),
     ('distro = "debian-11"\n', "is not built here"),
     ("", "required here")],
)
def test_only_the_debian_releases_built_here_are_taken(distro: str, reason: str) -> None:
    problems = refused(f'name = "x"\n{distro}')

    assert list(problems) == ["distro"] and reason in problems["distro"]


def test_malformed_toml_and_a_missing_name_are_refused() -> None:
    assert "malformed TOML" in refused('name = "x\n')[""]
    assert "not UTF-8" in refused(b'name = "\xff"')[""]
    assert refused('distro = "debian-12"\n') == {"name": "missing required key"}


def test_every_problem_is_reported_at_once() -> None:
    problems = refused('distro = "fedora-40"\n[[groups]]\nname = "x"\n[customizations]\nsshkey = []\n')

    assert problems.keys() == {"name", "distro", "groups", "customizations.sshkey"}


# -- export -------------------------------------------------------------------------


def stored(text: str = WEB_SERVER) -> dict[str, Any]:
    return body_dict(validate_blueprint(body_from_toml(text, GUEST_IMAGE)))


def test_an_export_reads_back_as_the_same_blueprint() -> None:
    original = stored()

    text = tomli_w.dumps(toml_document(original, 3))
    again = stored(text)

    assert again == original
    assert 'version = "3.0.0"' in text and 'distro = "debian-12"' in text


def test_the_export_uses_osbuilds_names() -> None:
    document = toml_document(stored(), 1)

    assert document["packages"][2] == {"name": "htop", "version": "3.2.2-2"}
    assert document["packages"][0] == {"name": "nginx", "version": "*"}
    assert document["customizations"]["user"][0]["name"] == "admin"
    assert document["customizations"]["filesystem"][0] == {"mountpoint": "/", "minsize": 10 * 2**30}
    assert "image_requests" not in document and "users" not in document["customizations"]


def test_what_osbuilds_format_cannot_hold_is_refused_rather_than_dropped() -> None:
    body = stored()
    body["customizations"]["first_boot_script"] = "#!/bin/sh\ntrue\n"
    body["customizations"]["files"][0]["ensure_parents"] = True

    with pytest.raises(NotInToml) as refusal:
        toml_document(body, 1)

    assert refusal.value.fields == ["customizations.files[0].ensure_parents", "customizations.first_boot_script"]
