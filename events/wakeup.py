"""A nudge that wakes a waiting loop at once, or after a timeout at the latest."""

from __future__ import annotations

import asyncio
import collections
import contextlib


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def nudge(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True if nudged (now or since the last wait), False on timeout."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a
        # cancellation that arrives as the wake-up does, and whoever cancels
        # the waiting task then waits for it for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
        nudged = self._event.is_set()
        self._event.clear()
        return nudged


class Baton:
    """Wakes ONE waiter per notification; a waiter that cannot use its wake passes it on.

    Waking every waiter for one ready job sends them all into a claim that only
    one can win. Instead the woken waiter claims, and if it got a job it wakes
    the next (there may be more). ``enroll`` BEFORE looking for work, so news
    that arrives meanwhile is not lost.
    """

    def __init__(self) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def enroll(self) -> asyncio.Future[None]:
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(ticket)
        return ticket

    def notify(self) -> None:
        while self._waiters:
            ticket = self._waiters.popleft()
            if not ticket.done():
                ticket.set_result(None)
                return

    def leave(self, ticket: asyncio.Future[None], *, pass_on: bool) -> None:
        """Stop waiting; a wake that came meanwhile goes to the next waiter if ``pass_on``."""
        if ticket.done():
            if pass_on:
                self.notify()
            return
        ticket.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(ticket)

    async def wait(self, ticket: asyncio.Future[None], timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(ticket)
        return ticket.done() and not ticket.cancelled()
