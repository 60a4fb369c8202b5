"""A nudge that wakes a waiting loop at once, or after a timeout at the latest."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def nudge(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True if nudged (now or since the last wait), False on timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        nudged = self._event.is_set()
        self._event.clear()
        return nudged
