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


class Broadcast:
    """Wakes every waiter at once; a waiter that looked before the news still sees it.

    Take ``ticket()`` BEFORE checking for work, then ``wait(ticket, timeout)``:
    a ``notify()`` in between is not lost, because it sets that very ticket.
    """

    def __init__(self) -> None:
        self._current = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        return self._current

    def notify(self) -> None:
        self._current.set()
        self._current = asyncio.Event()

    async def wait(self, ticket: asyncio.Event, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), timeout)
        return ticket.is_set()
