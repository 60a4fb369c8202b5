"""Telling other processes' LISTENers that this process committed: one NOTIFY at a time.

Relays and other replicas LISTEN on a channel to learn of new outbox rows at
once instead of at their next poll. The NOTIFY used to come from a trigger
in the appending transaction, but PostgreSQL serializes the commits of all
transactions that notify (PreCommit_Notify takes a database-wide lock and
holds it past the commit's WAL flush), so those commits could not share a
flush: at 8 writers a NOTIFY per append cost a quarter of the append rate
(bench/eventstore). Sent after the commit instead, from a transaction of its
own that waits for no flush, the appends group-commit again and listeners
still hear of every commit. The first commit after a quiet spell is
announced at once; under load, commits are announced together, at most one
NOTIFY per ``MIN_INTERVAL``: a relay woken more often than it takes to
publish a batch would only find its next batch smaller, and a NOTIFY per
commit from every writing process cost as much as the trigger did.

A process that dies between a commit and its NOTIFY loses nothing: the
outbox rows are committed, and listeners find them at their next poll.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from events.statements import bare_connection

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.01  # seconds between two NOTIFYs of one process


class CommitNotifier:
    def __init__(self, engine: AsyncEngine, channel: str, min_interval: float = MIN_INTERVAL) -> None:
        self.engine = engine
        self.min_interval = min_interval
        # One round trip; asynchronous commit, as the transaction changes no data.
        self._script = f"BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY {channel}; COMMIT"
        self._asked = False
        self._sending: asyncio.Task[None] | None = None
        self._last_sent = float("-inf")

    def nudge(self) -> None:
        """After a commit: make sure a NOTIFY is sent that starts after it."""
        self._asked = True
        if self._sending is None:
            self._sending = asyncio.get_running_loop().create_task(self._send_while_asked())

    async def close(self) -> None:
        """Wait for the NOTIFY on its way, if any."""
        if self._sending is not None:
            await asyncio.shield(self._sending)

    async def _send_while_asked(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._asked:
                if (wait := self._last_sent + self.min_interval - loop.time()) > 0:
                    await asyncio.sleep(wait)
                # Every commit before this line is covered by the NOTIFY sent now.
                self._asked = False
                self._last_sent = loop.time()
                async with bare_connection(self.engine) as driver:
                    await driver.execute(self._script)
        except Exception as error:  # noqa: BLE001 - listeners poll as well; the commit stands
            log.warning("could not NOTIFY listeners of a commit (they will find it when they poll): %s", error)
        finally:
            self._sending = None
