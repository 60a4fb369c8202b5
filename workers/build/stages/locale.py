"""Set the system locale and console keyboard; generate locales other than C.UTF-8."""

from __future__ import annotations

import re

import msgspec

from workers.build.context import StageContext
from workers.build.stages.tree_files import write

NAME = "locale"
LANGUAGE = re.compile(
    r"[A-Za-z]{1,8}(_[A-Za-z0-9]{1,8})?(\.[A-Za-z0-9-]{1,16})?(@[A-Za-z0-9]{1,16})?"
)
KEYMAP = re.compile(r"[A-Za-z0-9_.-]{1,64}")
BUILTIN = {"C", "C.UTF-8", "C.utf8", "POSIX"}


class Options(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    languages: tuple[str, ...] = ()
    keyboard: str | None = None


def check(options: Options) -> None:
    for language in options.languages:
        if not LANGUAGE.fullmatch(language):
            raise ValueError(f"{language!r} is not a locale name")
    if options.keyboard is not None and not KEYMAP.fullmatch(options.keyboard):
        raise ValueError(f"{options.keyboard!r} is not a keymap name")


def needs_locales_package(languages: tuple[str, ...]) -> bool:
    return any(language not in BUILTIN for language in languages)


async def run(ctx: StageContext, options: Options) -> None:
    if options.languages:
        write(ctx.path("/etc/default/locale"), f"LANG={options.languages[0]}\n")
        wanted = [language for language in options.languages if language not in BUILTIN]
        if wanted:
            if not ctx.path("/usr/sbin/locale-gen").exists():
                raise ValueError(
                    "the locales package is needed to generate " + ", ".join(wanted)
                )
            # locale.gen lines name the charset too: "de_DE.UTF-8 UTF-8".
            lines = [f"{w} {w.partition('.')[2] or 'ISO-8859-1'}" for w in wanted]
            write(ctx.path("/etc/locale.gen"), "\n".join(lines) + "\n")
            await ctx.run(["chroot", ctx.tree, "/usr/sbin/locale-gen"])
    if options.keyboard is not None:
        write(ctx.path("/etc/vconsole.conf"), f"KEYMAP={options.keyboard}\n")
