"""A time bound that moves with every chunk of a stream, without a timer per chunk or per stream.

``asyncio.timeout`` per awaited chunk creates and cancels a timer each time, and the cancelled
timers pile up in the loop's heap until they are popped. Moving a watchdog's bound later is an
attribute write. The watchdogs of one loop share one timer (:class:`_Watch`), armed no later than
the earliest bound any of them needs: when it fires it cancels the tasks whose bound has passed and
arms itself again at the earliest bound still pending. A watchdog that ends takes itself off the
list; the timer it may have armed lapses when it fires (issue #15: a stream's own timer was a handle
made, pushed on the heap — a Python ``__lt__`` per comparison — and cancelled per request, ~300
bytecodes of a gateway request's 14,500). A ``horizon`` (a stream's idle bound) sets the first check
no later than that far ahead: the first-token bound is usually the longer one, so the idle bounds
that follow fall after that check and need no earlier one. Cancellation follows
``asyncio.timeout``'s rules: the task is cancelled, and :meth:`claim` tells a cancellation of ours
from anyone else's — unless what the task awaits has already come: a loop that a busy machine kept from
running past a bound reads, in the turn it gets back, both the answer that came meanwhile and the timer, the
answer first, yet the task it wakes runs only on the next turn. Cancelled then, an answer in hand was thrown
away as a timeout (a healthy backup's first token, with the gateway's 503 for it). Such a task gets that one
turn, and is checked again after it, once per bound: a task still waiting then is cancelled as before.
"""

from __future__ import annotations

import asyncio
import math

#: a bound this close counts as reached (timers may run up to the loop's clock resolution early)
_EARLY = 0.001


class _Watch:
    """The watchdogs of one loop under one timer, due no later than the earliest bound they need checked."""

    __slots__ = ("_dogs", "_loop", "_timer", "due")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._dogs: set[Watchdog] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.due = math.inf

    def check_by(self, when: float) -> None:
        """Fire no later than loop time ``when`` (the timer is moved only when it is due later)."""
        if when < self.due:
            if self._timer is not None:
                self._timer.cancel()
            self.due = when
            self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.due = math.inf
        now = self._loop.time()
        nearest = math.inf
        for dog in list(self._dogs):
            if dog._task.done():  # ended without close(): not kept for good
                self._dogs.discard(dog)
                continue
            limit = dog._limit
            if limit == math.inf:
                continue  # not waiting now (or closed): its next arm asks for a check
            if limit - now <= _EARLY:
                if dog._graced != limit and dog._answered():
                    # what it awaits came in before the loop got here (a loop kept from running — a busy machine —
                    # reads the answer and the bound in one turn, the answer first): it runs on the next turn, and
                    # is checked again after that, once per bound
                    dog._graced = limit
                    nearest = limit if limit < nearest else nearest
                    continue
                dog._expire()
            elif limit < nearest:
                nearest = limit
        if nearest < math.inf:
            self.check_by(nearest)


#: each loop's watch (a loop is only ever touched from its own thread); closed loops are dropped as new ones come
_watches: dict[asyncio.AbstractEventLoop, _Watch] = {}


def _watch(loop: asyncio.AbstractEventLoop) -> _Watch:
    global _watches
    watch = _watches.get(loop)
    if watch is None:
        _watches = {other: w for other, w in _watches.items() if not other.is_closed()}
        watch = _watches[loop] = _Watch(loop)
    return watch


class Watchdog:
    __slots__ = ("_cancelling", "_graced", "_horizon", "_limit", "_loop", "_task", "_watch", "expired")

    def __init__(self, loop: asyncio.AbstractEventLoop, horizon: float = math.inf):
        task = asyncio.current_task(loop)
        assert task is not None, "a watchdog guards a task"
        self._loop = loop
        self._task = task
        self._cancelling = task.cancelling()
        self._limit = math.inf
        self._graced = math.nan  # the bound it was last given one more turn at (nan: none; nan equals no bound)
        self._horizon = horizon  # until the first arm: then the first check is set (inf afterwards)
        self.expired = False
        self._watch = watch = _watch(loop)
        watch._dogs.add(self)

    def arm(self, limit: float) -> None:
        """Cancel the task if it is still waiting at loop time ``limit``."""
        self._limit = limit
        watch = self._watch
        if limit < watch.due:
            horizon = self._horizon
            if horizon != math.inf:  # the first arm: checked no later than the horizon ahead
                self._horizon = math.inf
                horizon += self._loop.time()
                watch.check_by(horizon if horizon < limit else limit)
            else:
                watch.check_by(limit)
        else:
            self._horizon = math.inf

    def disarm(self) -> None:
        """Not waiting now (e.g. the chunk went to the caller): a check that comes meanwhile passes it by."""
        self._limit = math.inf

    def _answered(self) -> bool:
        """Its task is not waiting on anything now: the future it awaits is resolved (its wake-up is queued) or it
        awaits none (it is about to run)."""
        waiter = self._task._fut_waiter  # type: ignore[attr-defined]  # asyncio.Task's (C and Python) own
        return waiter is None or waiter.done()

    def _expire(self) -> None:
        self._limit = math.inf
        self.expired = True
        self._task.cancel()

    def claim(self) -> bool:
        """After a CancelledError: True when it was this watchdog's (its cancel request is then withdrawn)."""
        return self.expired and self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        self._limit = math.inf
        self._watch._dogs.discard(self)
