"""Slots: FIFO, bounded wait, no leaks on cancellation. Health: closed → open → half-open → closed."""

from __future__ import annotations

import asyncio

import pytest

from modelyard.config.schema import Cooldown
from modelyard.errors import Reason
from modelyard.router.health import Health, State
from modelyard.router.slots import QueueTimeout, Slots


async def test_fifo_order_and_limit() -> None:
    slots = Slots(2)
    order: list[int] = []

    async def worker(i: int) -> None:
        await slots.acquire(5)
        order.append(i)
        assert slots.in_flight <= 2
        await asyncio.sleep(0.01)
        slots.release()

    await asyncio.gather(*(worker(i) for i in range(10)))
    assert order == list(range(10))
    assert slots.peak == 2 and slots.in_flight == 0 and slots.waiting == 0


async def test_queue_timeout_then_slot_still_usable() -> None:
    slots = Slots(1)
    await slots.acquire(1)
    with pytest.raises(QueueTimeout):
        await slots.acquire(0.05)
    assert slots.waiting == 0
    slots.release()
    assert await slots.acquire(0.05) == 0.0
    slots.release()
    assert slots.in_flight == 0


async def test_cancelled_waiters_never_leak_a_slot() -> None:
    slots = Slots(1)
    await slots.acquire(1)
    waiters = [asyncio.create_task(slots.acquire(10)) for _ in range(50)]
    await asyncio.sleep(0.01)
    for t in waiters[::2]:
        t.cancel()
    slots.release()
    await asyncio.sleep(0.01)
    # the oldest live waiter got the slot; drain everyone that got one
    done = 0
    while done < 25:
        got = [t for t in waiters[1::2] if t.done()]
        assert len(got) == done + 1
        done += 1
        slots.release()
        await asyncio.sleep(0)
    await asyncio.gather(*waiters, return_exceptions=True)
    assert slots.in_flight == 0 and slots.waiting == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_probes_and_recovers() -> None:
    clock = Clock()
    h = Health(Cooldown(failures=2, seconds=10, max_seconds=40), clock=clock)
    assert h.allow() == "pass"
    h.failure(Reason.SERVER_ERROR)
    assert h.state is State.CLOSED
    h.failure(Reason.FIRST_TOKEN_TIMEOUT)
    assert h.state is State.OPEN and h.allow() is None
    clock.now += 10
    assert h.allow() == "probe"
    assert h.allow() is None  # only one probe at a time
    h.failure(Reason.IDLE_TIMEOUT)  # probe failed: cooldown doubles
    assert h.state is State.OPEN and h.seconds_left() == pytest.approx(20)
    clock.now += 20
    assert h.allow() == "probe"
    h.success()
    assert h.state is State.CLOSED and h.allow() == "pass" and h.cooldown == 10


def test_queue_timeouts_and_bad_requests_do_not_count() -> None:
    h = Health(Cooldown(failures=1, seconds=10), clock=Clock())
    h.failure(Reason.QUEUE_TIMEOUT)
    h.failure(Reason.BAD_REQUEST)
    assert h.state is State.CLOSED


def test_retry_after_sets_the_cooldown() -> None:
    clock = Clock()
    h = Health(Cooldown(failures=5, seconds=10, max_seconds=300), clock=clock)
    h.failure(Reason.RATE_LIMITED, retry_after=42)
    assert h.state is State.OPEN and h.seconds_left() == pytest.approx(42)


def test_probe_released_without_verdict() -> None:
    clock = Clock()
    h = Health(Cooldown(failures=1, seconds=1), clock=clock)
    h.failure(Reason.SERVER_ERROR)
    clock.now += 1
    assert h.allow() == "probe"
    h.end_probe()
    assert h.allow() == "probe"


def test_late_success_does_not_close_an_open_breaker() -> None:
    clock = Clock()
    h = Health(Cooldown(failures=1, seconds=10), clock=clock)
    h.failure(Reason.AUTH_ERROR)
    h.success()  # a request that started before the key was revoked finishes fine
    assert h.state is State.OPEN
