"""A time bound that moves with every chunk of a stream without a timer per chunk.

``asyncio.timeout`` per awaited chunk creates and cancels a timer each time, and the cancelled
timers pile up in the loop's heap until they are popped. The watchdog keeps one timer: moving
the bound later is an attribute write; when the timer fires early (the bound moved on since),
it re-arms itself once at the new bound. A ``horizon`` (a stream's idle bound) sets the first timer
no later than that far ahead: the first-token bound is usually the longer one, so the idle bounds
that follow fall after that timer, and a stream costs one timer, not one for its first token and
another when the shorter idle bound takes over. Cancellation follows ``asyncio.timeout``'s rules: the
task is cancelled, and :meth:`claim` tells a cancellation of ours from anyone else's.
"""

from __future__ import annotations

import asyncio
import math

#: a bound this close counts as reached (timers may run up to the loop's clock resolution early)
_EARLY = 0.001


class Watchdog:
    __slots__ = ("_cancelling", "_due", "_handle", "_horizon", "_limit", "_loop", "_task", "expired")

    def __init__(self, loop: asyncio.AbstractEventLoop, horizon: float = math.inf):
        task = asyncio.current_task(loop)
        assert task is not None, "a watchdog guards a task"
        self._loop = loop
        self._task = task
        self._cancelling = task.cancelling()
        self._limit = math.inf
        self._horizon = horizon
        self._handle: asyncio.TimerHandle | None = None
        self._due = math.inf  # when the handle is due (asking it is a Python call per chunk)
        self.expired = False

    def arm(self, limit: float) -> None:
        """Cancel the task if it is still waiting at loop time ``limit``."""
        self._limit = limit
        handle = self._handle
        if handle is None:
            self._due = min(limit, self._loop.time() + self._horizon)
            self._handle = self._loop.call_at(self._due, self._fire)
        elif self._due > limit:
            handle.cancel()
            self._due = limit
            self._handle = self._loop.call_at(limit, self._fire)

    def disarm(self) -> None:
        """Not waiting now (e.g. the chunk went to the caller): the armed timer lapses when it fires."""
        self._limit = math.inf

    def _fire(self) -> None:
        self._handle = None
        limit = self._limit
        if limit == math.inf:
            return
        if limit - self._loop.time() > _EARLY:
            self._due = limit
            self._handle = self._loop.call_at(limit, self._fire)
            return
        self.expired = True
        self._task.cancel()

    def claim(self) -> bool:
        """After a CancelledError: True when it was this watchdog's (its cancel request is then withdrawn)."""
        return self.expired and self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        self._limit = math.inf
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
