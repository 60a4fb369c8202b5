"""Running apt's own commands against a private apt root: argument vector, timeout, captured output."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

TAIL_CHARS = 2000


class AptFailed(Exception):
    """An apt command exited non-zero or timed out; ``tail`` is the end of what it said."""

    def __init__(self, argv: Sequence[str], reason: str, tail: str) -> None:
        self.argv = list(argv)
        self.tail = tail
        super().__init__(f"{' '.join(argv[:2])} {reason}: {tail.strip()[-TAIL_CHARS:]}")


async def run_apt(argv: Sequence[str], *, env: Mapping[str, str], timeout: float) -> str:
    """Run `argv` to completion and return its standard output."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as stopped:
        # Nothing of apt may outlive the request that started it.
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(stopped, asyncio.CancelledError):
            raise
        raise AptFailed(argv, f"timed out after {timeout:.0f}s", "") from None
    if proc.returncode != 0:
        raise AptFailed(argv, f"exited with status {proc.returncode}", err.decode(errors="replace"))
    return out.decode(errors="replace")
