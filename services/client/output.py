"""What the client prints: tables, JSON for scripts, and lines that show progress.

Progress goes to stderr, so stdout stays what a script may read. On a
terminal it is one line redrawn in place; anywhere else (a pipe, a CI log)
a line is printed only when its words change, not for every percent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

BAR_WIDTH = 24


def print_json(value: Any, *, lines: bool = False) -> None:
    """Indented, or one object per line (``lines``) for a stream of them."""
    text = json.dumps(value, separators=(",", ":")) if lines else json.dumps(value, indent=2)
    print(text, flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    )


def bar(fraction: float) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}"


def size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class ProgressLine:
    """``show(words, detail)``: ``words`` say where things are (printed again when they change
    off a terminal); ``detail`` (a bar, a byte count) is only drawn on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._words: str | None = None
        self._drawn = 0

    def show(self, words: str, detail: str = "") -> None:
        if self.live:
            text = f"{words} {detail}".rstrip()
            self.stream.write("\r" + text.ljust(self._drawn))
            self._drawn = len(text)
            self.stream.flush()
        elif words != self._words:
            print(words, file=self.stream, flush=True)
        self._words = words

    def end(self) -> None:
        """Leave the line as it is and go on below it."""
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = 0
