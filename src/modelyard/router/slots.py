"""Per-model concurrency: ``max_concurrent`` slots and a strict FIFO queue with a wait bound.

asyncio.Semaphore would do most of this, but we need three things it does not give: a
queue timeout that hands the request to the next model, O(1) abandonment for 10,000
waiters (cancelled waiters are skipped lazily, never searched for), and live counts of
in-flight and waiting requests for ``models``, ``/metrics`` and the dashboard.
"""

from __future__ import annotations

import asyncio
from collections import deque

from modelyard.errors import Reason
from modelyard.router.clock import running_loop


class QueueTimeout(Exception):
    """No slot came free within the wait bound; ``waited`` is the time really spent waiting (None:
    the whole bound), ``reason`` why (a shared store out of reach moves the request on too)."""

    def __init__(self, message: str, *, waited: float | None = None, reason: Reason = Reason.QUEUE_TIMEOUT):
        super().__init__(message)
        self.waited = waited
        self.reason = reason


class Slots:
    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    def try_acquire(self) -> bool:
        if self.in_flight < self.limit and not self._waiting:
            self._take()
            return True
        return False

    def _take(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.peak:
            self.peak = self.in_flight

    async def acquire(self, timeout: float) -> float:
        """Take a slot, waiting at most ``timeout`` seconds; return the seconds waited."""
        if self.try_acquire():
            return 0.0
        loop = running_loop()
        start = loop.time()
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)
        self._waiting += 1
        # The bound is one timer that ends this wait, not asyncio.timeout (a context manager, two
        # coroutines, a task lookup and a reschedule per wait; most requests of a busy model wait).
        # Whichever comes first wins: a slot handed over (release: True) or the bound (_expire: False).
        # A result, not an exception: an exception kept in the future would tie it, the traceback and
        # this frame in a reference cycle that only the garbage collector frees.
        timer = loop.call_at(start + timeout, _expire, fut)
        try:
            granted = await fut
        except BaseException:
            # Cancelled after the slot was handed over: pass it on rather than leak it.
            if fut.done() and not fut.cancelled() and fut.result():
                self.release()
            raise
        finally:
            timer.cancel()
            self._waiting -= 1
            if not fut.done():
                fut.cancel()
        if not granted:
            raise QueueTimeout(f"no free slot within {timeout:g}s", waited=loop.time() - start)
        return loop.time() - start

    def release(self) -> None:
        """Hand the slot to the oldest live waiter, or free it."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(True)  # the slot passes over directly: in_flight stays the same
                return
        self.in_flight -= 1


def _expire(fut: asyncio.Future[bool]) -> None:
    """A waiter's bound ran out before a slot was handed to it."""
    if not fut.done():
        fut.set_result(False)
