"""Small helpers shared by the server classes."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the usual small race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The log's first error lines (the cause; a failing server logs pages of
    shutdown noise after it) followed by its last lines."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    errors = [line for line in text if any(w in line for w in ("ERROR", "FATAL", "Exception"))][:10]
    head = f"--- first errors in {path} ---\n" + "\n".join(errors) + "\n" if errors else ""
    return f"{head}--- last lines of {path} ---\n" + "\n".join(text[-lines:])


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code.

    Uses a fresh loop in a worker thread so it also works when the caller is
    itself inside a running event loop (e.g. an async test calling start()).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="servers-run-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
