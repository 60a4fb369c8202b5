"""Rules for `customizations`, each refusal naming the field and why."""

from __future__ import annotations

import re

from domain.customizations import Customizations, Filesystem, Firewall, Kernel, Locale, Services, Timezone, User
from domain.names import (
    host_problem,
    hostname_problem,
    keyboard_problem,
    locale_problem,
    package_name,
    package_problem,
    port_problem,
    posix_name_problem,
    ssh_key_problem,
    timezone_problem,
    unit_id,
    unit_problem,
    utf8_size,
)
from domain.path_rules import check_files_against_directories
from domain.shape import Walk, at, item

MAX_PACKAGES = 1000
# Accounts Debian's base-passwd creates; a request can only give `root` a key
# or password, and cannot create any of them anew.
SYSTEM_ACCOUNTS = frozenset(
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc _apt nobody".split()
)
# A password shaped like `$id$...` is taken as a crypt hash. Only SHA-512 and
# yescrypt (Debian's default since 11) are accepted, and a malformed one is
# refused, so a mistyped hash never becomes someone's plain text password.
CRYPT_HASH = re.compile(r"\$[0-9a-z]+\$")
SHA512_CRYPT = re.compile(r"\$6\$(?:rounds=[0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}")
YESCRYPT = re.compile(r"\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}")
MIN_PASSWORD, MAX_PASSWORD = 8, 256
MAX_CMDLINE = 1024  # x86 allows 2048 in all; leave room for root=, console= and the rest
MAX_FILESYSTEM = 2 * 1024**4
# Separate filesystems the disk layout supports. /boot is not among them: the
# kernel and initrd live on the EFI system partition, read by systemd-boot.
MOUNTPOINTS = ("/", "/home", "/opt", "/srv", "/tmp", "/usr", "/var")
MAX_SCRIPT = 64 * 1024


def check_packages(packages: tuple[str, ...], path: str, walk: Walk) -> None:
    if len(packages) > MAX_PACKAGES:
        walk.refuse(path, f"lists {len(packages)} packages; at most {MAX_PACKAGES} are allowed")
    seen: set[str] = set()
    for i, spec in enumerate(packages):
        if problem := package_problem(spec):
            walk.refuse(item(path, i), problem)
        elif package_name(spec) in seen:
            walk.refuse(item(path, i), f"{package_name(spec)} is listed more than once")
        seen.add(package_name(spec))


def check_user(user: User, path: str, walk: Walk) -> None:
    if problem := posix_name_problem(user.name):
        walk.refuse(at(path, "name"), problem)
    elif user.name == "root":
        # root exists in every image: an entry for it may only set its credentials.
        if user.groups:
            walk.refuse(at(path, "groups"), "root's groups cannot change; an entry for root sets key and password only")
        if user.key is None and user.password is None:
            walk.refuse(at(path, "name"), "root already exists; an entry for root must set its key or password")
    elif user.name in SYSTEM_ACCOUNTS:
        walk.refuse(at(path, "name"), f"{user.name} is a Debian system account and cannot be created")
    for i, group in enumerate(user.groups):
        if problem := posix_name_problem(group):
            walk.refuse(item(at(path, "groups"), i), problem)
    if user.key is not None and (problem := ssh_key_problem(user.key)):
        walk.refuse(at(path, "key"), problem)
    if user.password is not None and (problem := password_problem(user.password)):
        walk.refuse(at(path, "password"), problem)


def password_problem(password: str) -> str | None:
    if CRYPT_HASH.match(password):
        if password.startswith("$6$"):
            return None if SHA512_CRYPT.fullmatch(password) else "is not a well-formed SHA-512 crypt hash ($6$)"
        if password.startswith("$y$"):
            return None if YESCRYPT.fullmatch(password) else "is not a well-formed yescrypt hash ($y$)"
        return "looks like a crypt hash of another kind; only SHA-512 ($6$) and yescrypt ($y$) are accepted"
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a plain text password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
    if not password.isprintable():
        return "must not contain newlines or other control characters"
    return None


def check_users(users: tuple[User, ...], path: str, walk: Walk) -> None:
    seen: set[str] = set()
    for i, user in enumerate(users):
        if user.name in seen:
            walk.refuse(at(item(path, i), "name"), f"{user.name} is listed more than once")
        seen.add(user.name)


def check_services(services: Services, path: str, walk: Walk) -> None:
    """A unit may appear once, in one list: enabling and masking it is a contradiction."""
    first_seen: dict[str, str] = {}
    for state in ("enabled", "disabled", "masked"):
        for i, name in enumerate(getattr(services, state)):
            here = item(at(path, state), i)
            if problem := unit_problem(name):
                walk.refuse(here, problem)
                continue
            unit = unit_id(name)
            if unit in first_seen:
                walk.refuse(here, f"{unit} is already listed in {first_seen[unit]}")
            else:
                first_seen[unit] = state


def check_hostname(hostname: str, path: str, walk: Walk) -> None:
    if problem := hostname_problem(hostname):
        walk.refuse(path, problem)


def check_timezone(timezone: Timezone | str, path: str, walk: Walk) -> None:
    zone = timezone if isinstance(timezone, str) else timezone.timezone
    zone_path = path if isinstance(timezone, str) else at(path, "timezone")
    if zone is not None and (problem := timezone_problem(zone)):
        walk.refuse(zone_path, problem)
    if isinstance(timezone, Timezone):
        for i, server in enumerate(timezone.ntpservers):
            if problem := host_problem(server):
                walk.refuse(item(at(path, "ntpservers"), i), problem)


def check_locale(locale: Locale, path: str, walk: Walk) -> None:
    for i, language in enumerate(locale.languages):
        if problem := locale_problem(language):
            walk.refuse(item(at(path, "languages"), i), problem)
    if locale.keyboard is not None and (problem := keyboard_problem(locale.keyboard)):
        walk.refuse(at(path, "keyboard"), problem)


def check_kernel(kernel: Kernel, path: str, walk: Walk) -> None:
    if kernel.name is not None:
        if problem := package_problem(kernel.name):
            walk.refuse(at(path, "name"), problem)
        elif not kernel.name.startswith("linux-image-") or "=" in kernel.name:
            walk.refuse(at(path, "name"), "must be a kernel package name such as linux-image-cloud-amd64")
    if kernel.append is not None:
        if not kernel.append.isprintable():
            walk.refuse(at(path, "append"), "must not contain NUL, newlines or other control characters")
        elif len(kernel.append) > MAX_CMDLINE:
            walk.refuse(at(path, "append"), f"is {len(kernel.append)} characters; at most {MAX_CMDLINE} are allowed")


def check_firewall(firewall: Firewall, path: str, walk: Walk) -> None:
    for i, port in enumerate(firewall.ports):
        if problem := port_problem(port):
            walk.refuse(item(at(path, "ports"), i), problem)


def check_filesystem(entry: Filesystem, path: str, walk: Walk) -> None:
    if entry.mountpoint not in MOUNTPOINTS:
        walk.refuse(at(path, "mountpoint"),
                    f"{entry.mountpoint!r} cannot be a separate filesystem; allowed: {', '.join(MOUNTPOINTS)}")
    if not 0 < entry.min_size <= MAX_FILESYSTEM:
        walk.refuse(at(path, "min_size"), f"must be a size in bytes above 0 and at most {MAX_FILESYSTEM} (2 TiB)")


def check_filesystems(filesystems: tuple[Filesystem, ...], path: str, walk: Walk) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(filesystems):
        if entry.mountpoint in seen:
            walk.refuse(at(item(path, i), "mountpoint"), f"{entry.mountpoint} is listed more than once")
        seen.add(entry.mountpoint)


def check_first_boot_script(script: str, path: str, walk: Walk) -> None:
    size = utf8_size(script)
    if not script.strip():
        walk.refuse(path, "must not be empty")
    elif "\0" in script or size is None:
        walk.refuse(path, "must be text without NUL characters or unpaired surrogates")
    elif size > MAX_SCRIPT:
        walk.refuse(path, f"is {size} bytes; at most {MAX_SCRIPT} bytes (64 KiB) are allowed")


def check_customizations(customizations: Customizations, path: str, walk: Walk) -> None:
    check_files_against_directories(customizations.files, customizations.directories, path, walk)
