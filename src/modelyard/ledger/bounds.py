"""The time bounds of many waits on one event loop under one timer.

Every answer of the gateway waits for its routing row's commit with a bound (seconds: only a stuck disk
reaches it). A timer per wait is a handle made, pushed on the loop's heap and cancelled per answer, and
the cancelled handles stay on the heap until they come due or the loop sweeps them (issue #15). Here the
waits of one loop share one timer, armed at the earliest bound; a wait that ended is dropped the next
time a wait is added (they end in about the order they began) or when the timer fires.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

#: a bound this close counts as reached (the loop runs timers up to its clock resolution early)
_EARLY = 0.001


class Bounds:
    """Release each future still pending at its deadline (loop time) with ``None``; all on one loop."""

    __slots__ = ("_due", "_loop", "_timer", "_waits")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._waits: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._due = math.inf

    def __len__(self) -> int:
        return len(self._waits)

    def add(self, fut: asyncio.Future[None], timeout: float) -> None:
        waits = self._waits
        while waits and waits[0][1].done():
            waits.popleft()
        deadline = self._loop.time() + timeout
        waits.append((deadline, fut))
        if deadline < self._due:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._due = math.inf
        now = self._loop.time() + _EARLY
        left: deque[tuple[float, asyncio.Future[None]]] = deque()
        for deadline, fut in self._waits:
            if fut.done():
                continue
            if deadline <= now:
                fut.set_result(None)
            else:
                left.append((deadline, fut))
        self._waits = left
        if left:
            self._arm(min(deadline for deadline, _ in left))
