"""Waking waiters: one per notification, and nothing lost between looking and waiting."""

from __future__ import annotations

import asyncio

from events.wakeup import Baton


async def test_a_notification_wakes_exactly_one_of_many_waiters() -> None:
    baton = Baton()
    tickets = [baton.enroll() for _ in range(5)]

    baton.notify()

    assert [ticket.done() for ticket in tickets] == [True, False, False, False, False]


async def test_news_between_enrolling_and_waiting_is_not_lost() -> None:
    baton = Baton()
    ticket = baton.enroll()
    baton.notify()  # arrives while the waiter is still looking for work

    assert await baton.wait(ticket, timeout=5)


async def test_a_waiter_that_leaves_with_an_unused_wake_passes_it_on() -> None:
    baton = Baton()
    first, second = baton.enroll(), baton.enroll()
    baton.notify()

    baton.leave(first, pass_on=True)

    assert second.done()


async def test_a_waiter_that_times_out_is_forgotten() -> None:
    baton = Baton()
    ticket = baton.enroll()

    assert not await baton.wait(ticket, timeout=0.05)
    baton.leave(ticket, pass_on=True)
    later = baton.enroll()
    baton.notify()

    assert later.done() and ticket.cancelled()


async def test_waiting_does_not_consume_a_wake_meant_for_a_cancelled_wait() -> None:
    baton = Baton()
    ticket = baton.enroll()
    waiting = asyncio.create_task(baton.wait(ticket, timeout=5))
    await asyncio.sleep(0.01)
    waiting.cancel()

    baton.notify()

    assert ticket.done() and not ticket.cancelled()
