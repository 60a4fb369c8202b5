"""Validation of packages, users, services and system settings in customizations."""

from __future__ import annotations

import zoneinfo

import pytest

from domain.validation import validate_compose_request
from tests.unit.domain.compose_requests import SHA512_HASH, assert_refused, ssh_key, with_customizations

# --- packages --------------------------------------------------------------


@pytest.mark.parametrize("name", ["Vim", "x", "-vim", "vim_tiny", "vim tiny"])
def test_an_invalid_package_name_is_refused(name: str) -> None:
    assert_refused(with_customizations(packages=["curl", name]),
                   "customizations.packages[1]", "not a Debian package name")


@pytest.mark.parametrize("version", ["", "latest", "1.0 beta", "1.0-"])
def test_a_package_pinned_to_an_invalid_version_is_refused(version: str) -> None:
    assert_refused(with_customizations(packages=[f"vim={version}"]),
                   "customizations.packages[0]", "not a Debian version")


@pytest.mark.parametrize("spec", ["g++", "libc6=2.36-9+deb12u4", "vim=2:9.0.1378-2", "lib32z1=1:1.2.13.dfsg-1~bpo11+1"])
def test_valid_package_names_and_version_pins_are_accepted(spec: str) -> None:
    validate_compose_request(with_customizations(packages=[spec]))


def test_a_package_listed_twice_is_refused() -> None:
    assert_refused(with_customizations(packages=["vim", "curl", "vim=2:9.0.1378-2"]),
                   "customizations.packages[2]", "vim is listed more than once")


# --- users -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["Alice", "1alice", "al ice", "a" * 33, ""])
def test_an_invalid_user_name_is_refused(name: str) -> None:
    assert_refused(with_customizations(users=[{"name": name}]), "customizations.users[0].name", "not a valid name")


def test_creating_root_is_refused() -> None:
    assert_refused(with_customizations(users=[{"name": "root"}]), "customizations.users[0].name", "root already exists")


def test_changing_roots_groups_is_refused() -> None:
    assert_refused(with_customizations(users=[{"name": "root", "key": ssh_key(), "groups": ["sudo"]}]),
                   "customizations.users[0].groups", "root's groups cannot change")


def test_creating_a_debian_system_account_is_refused() -> None:
    assert_refused(with_customizations(users=[{"name": "www-data"}]),
                   "customizations.users[0].name", "Debian system account")


def test_a_user_listed_twice_is_refused() -> None:
    assert_refused(with_customizations(users=[{"name": "bob"}, {"name": "ann"}, {"name": "bob"}]),
                   "customizations.users[2].name", "bob is listed more than once")


def test_an_invalid_group_name_is_refused() -> None:
    assert_refused(with_customizations(users=[{"name": "bob", "groups": ["sudo", "Wheel!"]}]),
                   "customizations.users[0].groups[1]", "not a valid name")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not an OpenSSH public key"),
        ("AAAAC3NzaC1lZDI1NTE5AAAAI alice", "not an OpenSSH public key"),
        ("ssh-ed25519 not*base64", "not valid base64"),
        (ssh_key("ssh-rsa").replace("ssh-rsa", "ssh-ed25519", 1), "does not hold a ssh-ed25519 key"),
        (ssh_key() + "\n" + ssh_key(), "single line"),
    ],
)
def test_a_malformed_ssh_key_is_refused(key: str, reason: str) -> None:
    assert_refused(with_customizations(users=[{"name": "bob", "key": key}]), "customizations.users[0].key", reason)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "8 to 256 characters"),
        ("x" * 257, "8 to 256 characters"),
        ("line one\nline two", "control characters"),
        ("$1$salt$hash", "only SHA-512 ($6$) and yescrypt ($y$)"),
        (SHA512_HASH[:-1], "not a well-formed SHA-512 crypt hash"),
        ("$y$j9T$short", "not a well-formed yescrypt hash"),
    ],
)
def test_an_unusable_password_is_refused(password: str, reason: str) -> None:
    assert_refused(with_customizations(users=[{"name": "bob", "password": password}]),
                   "customizations.users[0].password", reason)


# --- services --------------------------------------------------------------


def test_an_invalid_unit_name_is_refused() -> None:
    assert_refused(with_customizations(services={"enabled": ["nginx", "my service"]}),
                   "customizations.services.enabled[1]", "not a systemd unit name")


def test_a_service_enabled_and_masked_is_refused() -> None:
    assert_refused(with_customizations(services={"enabled": ["ssh"], "masked": ["ssh.service"]}),
                   "customizations.services.masked[0]", "ssh.service is already listed in enabled")


# --- host settings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "reason"),
    [
        ("-web", "not starting or ending with '-'"),
        ("web-", "not starting or ending with '-'"),
        ("Web", "a-z, 0-9 and '-'"),
        ("web_1", "a-z, 0-9 and '-'"),
        ("a" * 64, "1 to 63"),
        ("a..b", "1 to 63"),
        (".".join(["a" * 63] * 4), "1 to 253 characters"),
    ],
)
def test_a_hostname_that_is_not_rfc_1123_is_refused(hostname: str, reason: str) -> None:
    assert_refused(with_customizations(hostname=hostname), "customizations.hostname", reason)


@pytest.mark.parametrize("zone", ["Europe/../Berlin", "Europe Berlin", "/UTC", ""])
def test_a_timezone_that_is_not_shaped_like_one_is_refused(zone: str) -> None:
    assert_refused(with_customizations(timezone=zone), "customizations.timezone", "not a time zone name")


@pytest.mark.skipif(not zoneinfo.available_timezones(), reason="this host has no time zone database")
def test_an_unknown_timezone_is_refused() -> None:
    assert_refused(with_customizations(timezone={"timezone": "Mars/Olympus_Mons"}),
                   "customizations.timezone.timezone", "not a known time zone")


def test_an_ntp_server_that_is_not_a_host_is_refused() -> None:
    assert_refused(with_customizations(timezone={"timezone": "UTC", "ntpservers": ["pool.ntp.org", "ntp server"]}),
                   "customizations.timezone.ntpservers[1]", "neither an IP address nor a host name")


def test_an_invalid_locale_is_refused() -> None:
    assert_refused(with_customizations(locale={"languages": ["en_US.UTF-8", "english"]}),
                   "customizations.locale.languages[1]", "not a locale")


def test_an_invalid_keyboard_layout_is_refused() -> None:
    assert_refused(with_customizations(locale={"keyboard": "us; rm -rf /"}),
                   "customizations.locale.keyboard", "not a keyboard layout")


@pytest.mark.parametrize(("append", "reason"), [("quiet\nsplash", "control characters"),
                                                ("quiet\0", "control characters"),
                                                ("x" * 1025, "at most 1024")])
def test_an_unsafe_kernel_command_line_is_refused(append: str, reason: str) -> None:
    assert_refused(with_customizations(kernel={"append": append}), "customizations.kernel.append", reason)


def test_a_kernel_that_is_not_a_kernel_package_is_refused() -> None:
    assert_refused(with_customizations(kernel={"name": "vim"}), "customizations.kernel.name", "kernel package")


@pytest.mark.parametrize(
    ("port", "reason"),
    [
        ("22", "not a port like"),
        ("22/icmp", "not a port like"),
        ("ssh/tcp", "not a port like"),
        ("0/tcp", "1 to 65535"),
        ("65536/udp", "1 to 65535"),
        ("8080-8000/tcp", "must not end before it starts"),
    ],
)
def test_an_invalid_firewall_port_is_refused(port: str, reason: str) -> None:
    assert_refused(with_customizations(firewall={"ports": ["22/tcp", port]}),
                   "customizations.firewall.ports[1]", reason)


def test_an_empty_first_boot_script_is_refused() -> None:
    assert_refused(with_customizations(first_boot_script="  \n"), "customizations.first_boot_script", "not be empty")


def test_a_first_boot_script_over_64_kib_is_refused() -> None:
    script = "#!/bin/sh\n" + "true\n" * 13_200
    assert_refused(with_customizations(first_boot_script=script), "customizations.first_boot_script", "at most 65536")
