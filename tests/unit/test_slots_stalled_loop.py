"""Guards (pass on the old code too): a slot freed while the loop was kept from running past a waiter's queue bound.

The watchdog's race (tests/unit/test_watchdog_stalled_loop.py): a loop that a busy machine kept from running reads, in
the turn it gets back, both the answer that came meanwhile and the timer, the answer first — and a bound that cancels
the task threw that answer away. A queue wait's bound is no cancellation: its timer sets the waiter's future to False
only if no slot was handed over first, so a slot handed over in that turn before the timer is kept; a waiter cancelled
once its slot was handed over passes it on; a slot freed only after the bound goes to the next waiter or back to the
pool. None is lost, and none taken twice. The loop is stalled by ``time.sleep`` in a callback past the bound (the
machine's scheduler, made deterministic); a release comes from a real socket's I/O callback, read by the loop in the
turn after the stall, as a backend's last bytes are.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from modelyard.gateway.loop import ServeLoop
from modelyard.router.slots import QueueTimeout, Slots

BOUND = 0.2
#: the loop gets no CPU this long once the waiter is queued: well past its bound
STALL = BOUND + 0.3
T = TypeVar("T")
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop, "serve": ServeLoop}


def _run(loop_kind: str, main: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, T]]) -> T:
    loop = LOOPS[loop_kind]()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


def _on_socket_after_stall(loop: asyncio.AbstractEventLoop, then: Callable[[], None]) -> Callable[[], None]:
    """Arrange ``then`` to run in the I/O callback of bytes sent while the loop is stalled past the bound: the turn
    after the stall reads them first and the waiter's timer after them. Returns the cleanup."""
    ours, backend = socket.socketpair()

    def read() -> None:
        loop.remove_reader(ours.fileno())
        ours.recv(100)
        then()

    def stall() -> None:
        backend.send(b"done")
        time.sleep(STALL)

    loop.add_reader(ours.fileno(), read)
    loop.call_soon(stall)

    def close() -> None:
        loop.remove_reader(ours.fileno())
        ours.close()
        backend.close()
    return close


@pytest.mark.parametrize("loop_kind", list(LOOPS))
def test_guard_a_slot_freed_in_the_turn_the_bound_is_read_goes_to_the_waiter(loop_kind: str) -> None:
    """Freed by the I/O callback read in the same turn as the waiter's timer, before it: the waiter holds it."""
    async def main(loop: asyncio.AbstractEventLoop) -> tuple[float, int, int]:
        slots = Slots(1)
        assert slots.try_acquire()
        close = _on_socket_after_stall(loop, slots.release)
        try:
            waited = await slots.acquire(BOUND)
        finally:
            close()
        return waited, slots.in_flight, slots.waiting

    waited, in_flight, waiting = _run(loop_kind, main)
    assert waited >= STALL and (in_flight, waiting) == (1, 0)


@pytest.mark.parametrize("loop_kind", list(LOOPS))
def test_guard_a_slot_freed_by_a_task_woken_after_the_bound_is_not_lost(loop_kind: str) -> None:
    """The holder's task, woken by those bytes, runs only after the waiter's timer: the waiter timed out (its bound ran
    out before the slot was free), and the slot goes back to the pool, not to it nor nowhere."""
    async def main(loop: asyncio.AbstractEventLoop) -> tuple[str, int, int, bool]:
        slots = Slots(1)
        assert slots.try_acquire()
        came: asyncio.Future[None] = loop.create_future()
        close = _on_socket_after_stall(loop, lambda: came.set_result(None))

        async def holder() -> None:
            await came
            slots.release()

        task = asyncio.ensure_future(holder())
        try:
            try:
                await slots.acquire(BOUND)
                outcome = "held"
            except QueueTimeout:
                outcome = "queue_timeout"
            await task
        finally:
            close()
        return outcome, slots.in_flight, slots.waiting, slots.try_acquire()

    assert _run(loop_kind, main) == ("queue_timeout", 0, 0, True)


@pytest.mark.parametrize("loop_kind", list(LOOPS))
def test_guard_a_waiter_cancelled_once_handed_its_slot_passes_it_on(loop_kind: str) -> None:
    """Handed the slot in that turn, then cancelled before it ran (a caller gone, a total bound): the next waiter gets
    it."""
    async def main(loop: asyncio.AbstractEventLoop) -> tuple[bool, float, int, int]:
        slots = Slots(1)
        assert slots.try_acquire()
        first = asyncio.ensure_future(slots.acquire(BOUND))
        second = asyncio.ensure_future(slots.acquire(10 * STALL))
        await asyncio.sleep(0)  # both queued

        def release_then_cancel() -> None:
            slots.release()
            first.cancel()

        close = _on_socket_after_stall(loop, release_then_cancel)
        try:
            with pytest.raises(asyncio.CancelledError):
                await first
            waited = await asyncio.wait_for(second, 5)
        finally:
            close()
        return first.cancelled(), waited, slots.in_flight, slots.waiting

    cancelled, waited, in_flight, waiting = _run(loop_kind, main)
    assert cancelled and waited >= STALL and (in_flight, waiting) == (1, 0)
