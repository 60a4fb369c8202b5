"""Reading deb822 text (Packages indexes, apt-cache show, dpkg status)."""

from __future__ import annotations


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """deb822 stanzas, keeping only each field's first line (enough for summaries)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas
