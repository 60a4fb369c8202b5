"""Checks for the names and small values a request carries.

Each `*_problem` function returns None for a good value, or the reason it is
refused, written for the user who sent it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
import zoneinfo

# Debian Policy 5.6.1: lower case letters, digits, + - . ; at least two
# characters, starting with an alphanumeric.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# Debian Policy 5.6.12: [epoch:]upstream_version[-debian_revision]; the upstream
# version starts with a digit and may hold hyphens only when a revision follows.
DEBIAN_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~]+)*")
# Portable user and group names as useradd accepts them by default on Debian.
POSIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
UNIT_TYPES = ("service", "socket", "timer", "target", "path", "mount", "automount", "swap", "slice", "scope")
# systemd.unit(5): letters, digits, ":-_.\" and one "@" before the instance.
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+(?:@[A-Za-z0-9:_.\\-]*)?")
HOSTNAME_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
TIMEZONE_SHAPE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+){0,2}")
LOCALE = re.compile(r"(?:C|POSIX|[a-z]{2,3}(?:_[A-Z]{2})?)(?:\.[A-Za-z0-9-]+)?(?:@[a-z]+)?")
KEYBOARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
PORT = re.compile(r"(?P<first>[0-9]{1,5})(?:-(?P<last>[0-9]{1,5}))?[/:](?P<proto>tcp|udp)")

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def package_problem(spec: str) -> str | None:
    """`name` or `name=version`, as apt-get install takes them."""
    name, pinned, version = spec.partition("=")
    if not PACKAGE_NAME.fullmatch(name):
        return f"{name!r} is not a Debian package name (lower case letters, digits, '+', '-', '.'; 2 or more)"
    if pinned and not DEBIAN_VERSION.fullmatch(version):
        return f"{version!r} is not a Debian version ([epoch:]upstream[-revision], starting with a digit)"
    return None


def package_name(spec: str) -> str:
    return spec.partition("=")[0]


def posix_name_problem(name: str) -> str | None:
    if POSIX_NAME.fullmatch(name):
        return None
    return f"{name!r} is not a valid name (a lower case letter or '_', then up to 31 of a-z 0-9 _ -)"


def ssh_key_problem(key: str) -> str | None:
    """An OpenSSH public key line: type, base64 blob naming the same type, optional comment."""
    line = key.strip()
    if not line.isprintable() or len(line) > 8192:
        return "must be one key on a single line of at most 8192 printable characters"
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        types = ", ".join(SSH_KEY_TYPES)
        return f"not an OpenSSH public key: expected '<type> <base64> [comment]', type one of {types}"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return "the key data is not valid base64"
    # The blob starts with the key type as an SSH string (RFC 4253 6.6): a
    # 4-byte length, then the name; a mismatch means a truncated or pasted-wrong key.
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length] != parts[0].encode():
        return f"the key data does not hold a {parts[0]} key"
    return None


def unit_problem(name: str) -> str | None:
    if len(name) <= 255 and UNIT_NAME.fullmatch(name) and not name.startswith(("-", ".")):
        return None
    return f"{name!r} is not a systemd unit name"


def unit_id(name: str) -> str:
    """`sshd` and `sshd.service` name the same unit: systemctl adds `.service`."""
    return name if name.rpartition(".")[2] in UNIT_TYPES and "." in name else f"{name}.service"


def hostname_problem(name: str) -> str | None:
    """RFC 1123 host names, in lower case as the image will report them."""
    if not 1 <= len(name) <= 253:
        return "must be 1 to 253 characters long"
    for label in name.split("."):
        if not HOSTNAME_LABEL.fullmatch(label):
            return (
                f"label {label!r} must be 1 to 63 of a-z, 0-9 and '-', "
                "not starting or ending with '-'"
            )
    return None


def host_problem(host: str) -> str | None:
    """A host name or an IP address, as for an NTP server."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        problem = hostname_problem(host.lower())
        return f"{host!r} is neither an IP address nor a host name: {problem}" if problem else None
    return None


def utf8_size(text: str) -> int | None:
    """Bytes `text` takes in UTF-8; None if it cannot be written (an unpaired surrogate from JSON)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


@functools.cache
def _known_timezones() -> frozenset[str]:
    # available_timezones() walks the zoneinfo directories on every call (~10 ms).
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: str) -> str | None:
    if not TIMEZONE_SHAPE.fullmatch(name) or len(name) > 64:
        return f"{name!r} is not a time zone name like 'Europe/Berlin' or 'UTC'"
    # The image gets Debian's tzdata, which the host's database approximates
    # well; a host without one (a slim container) only checks the shape.
    known = _known_timezones()
    if known and name not in known:
        return f"{name!r} is not a known time zone"
    return None


def locale_problem(name: str) -> str | None:
    if len(name) <= 64 and LOCALE.fullmatch(name):
        return None
    return f"{name!r} is not a locale like 'en_US.UTF-8'"


def keyboard_problem(name: str) -> str | None:
    if KEYBOARD.fullmatch(name):
        return None
    return f"{name!r} is not a keyboard layout like 'us' or 'de-latin1'"


def port_problem(spec: str) -> str | None:
    match = PORT.fullmatch(spec)
    if not match:
        return f"{spec!r} is not a port like '22/tcp' or a range like '8000-8080/udp'"
    if parse_port(spec) is None:
        return f"{spec!r}: ports are 1 to 65535 and a range must not end before it starts"
    return None


def parse_port(spec: str) -> tuple[int, int, str] | None:
    """'22/tcp' -> (22, 22, 'tcp'); '8000-8080:udp' -> (8000, 8080, 'udp'); None if malformed."""
    match = PORT.fullmatch(spec)
    if not match:
        return None
    first = int(match["first"])
    last = int(match["last"] or first)
    if not 1 <= first <= last <= 65535:
        return None
    return first, last, match["proto"]
