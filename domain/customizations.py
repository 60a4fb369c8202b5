"""What a user may change in an image, shaped like upstream's `customizations`.

Only the shape lives here; the rules (valid names, safe paths, sizes) are in
`customization_rules.py` and `path_rules.py`.
"""

from __future__ import annotations

from domain.request_struct import RequestStruct

# A file's or directory's owner: a name, or a numeric id as upstream allows.
Owner = str | int


class User(RequestStruct):
    """A user to create, or `root` to give a key or password (see customization_rules)."""

    name: str
    groups: tuple[str, ...] = ()
    key: str | None = None
    # Plain text (hashed before it is stored in the image) or a `$6$`/`$y$` crypt hash.
    password: str | None = None


class Services(RequestStruct):
    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()


class File(RequestStruct):
    path: str
    data: str = ""
    mode: str | None = None
    user: Owner | None = None
    group: Owner | None = None
    ensure_parents: bool = False


class Directory(RequestStruct):
    path: str
    mode: str | None = None
    user: Owner | None = None
    group: Owner | None = None
    ensure_parents: bool = False


class Timezone(RequestStruct):
    """Upstream's object form; a request may also give just the zone name as a string."""

    timezone: str | None = None
    ntpservers: tuple[str, ...] = ()


class Locale(RequestStruct):
    languages: tuple[str, ...] = ()
    keyboard: str | None = None


class Kernel(RequestStruct):
    # A kernel package to install instead of the image type's (domain/image_types.py), e.g. linux-image-rt-amd64.
    name: str | None = None
    append: str | None = None


class Firewall(RequestStruct):
    # "22/tcp", "8000-8080/udp"; upstream's firewalld spelling "22:tcp" is accepted too.
    ports: tuple[str, ...] = ()


class Filesystem(RequestStruct):
    mountpoint: str
    min_size: int


class Customizations(RequestStruct):
    packages: tuple[str, ...] = ()
    users: tuple[User, ...] = ()
    services: Services | None = None
    files: tuple[File, ...] = ()
    directories: tuple[Directory, ...] = ()
    hostname: str | None = None
    # After validate_compose_request this is always a Timezone (or None).
    timezone: Timezone | str | None = None
    locale: Locale | None = None
    kernel: Kernel | None = None
    firewall: Firewall | None = None
    filesystem: tuple[Filesystem, ...] = ()
    first_boot_script: str | None = None
