"""Where per-model state reads the time.

Breakers compare deadlines with a clock. By default that is the running event loop's clock
(``loop.time()``, monotonic), the same one every timeout, sleep and queue bound uses — so a
loop with simulated time (replay, tests) moves breakers, slots and timeouts together, and
nothing has to sleep for real to let a cooldown expire.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
import selectors
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

Clock = Callable[[], float]
T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")


def loop_clock() -> float:
    """The running loop's time; outside a loop, the monotonic clock the default loop uses too."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def wall_clock() -> float:
    """Seconds since the epoch, for timestamps in the log; under a :class:`VirtualTimeLoop`, its
    simulated time (which it keeps on the epoch scale), so a simulated run logs simulated times."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return time.time()
    return loop.time() if isinstance(loop, VirtualTimeLoop) else time.time()


class ManualClock:
    """A clock that moves only when told to: breakers tested to the millisecond without sleeping."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


if TYPE_CHECKING:
    class _TimerHandle(asyncio.TimerHandle):
        """asyncio's TimerHandle with the private flag the loop keeps on it (not in typeshed)."""

        _scheduled: bool
else:
    _TimerHandle = asyncio.TimerHandle


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps over idle time: a simulated hour of timeouts, sleeps, queue
    bounds and cooldowns runs in the milliseconds its callbacks take. The router runs on it
    unchanged — replay and tests use the real rules, not a model of them.

    Its timers live in a heap of ``(when, seq, handle)`` tuples, compared in C (the stock loop
    compares TimerHandles in Python, and a replay schedules millions of them); real I/O (another
    thread waking the loop) is polled every :attr:`POLL_EVERY` iterations, or waited for when
    nothing at all is scheduled.
    """

    POLL_EVERY = 64

    if TYPE_CHECKING:  # the asyncio.BaseEventLoop internals this loop drives; typeshed does not declare them
        _ready: collections.deque[asyncio.Handle]
        _stopping: bool
        _selector: selectors.BaseSelector

        def _check_closed(self) -> None: ...
        def _process_events(self, event_list: list[Any]) -> None: ...

    def __init__(self, start: float | None = None):
        """``start``: the simulated time to begin at, in epoch seconds (default: now)."""
        super().__init__()
        self.now = time.time() if start is None else start
        self._timers: list[tuple[float, int, _TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled_timers = 0
        self._iterations = 0
        # On the epoch scale a float step is ~0.2 µs: the default resolution (1 ns) would vanish in
        # rounding and a timer due "now" would never count as due. One microsecond is plenty.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[*_Ts], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        self._check_closed()
        timer = _TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: _TimerHandle) -> None:
        if handle._scheduled:
            self._cancelled_timers += 1

    def _run_once(self) -> None:
        timers, ready = self._timers, self._ready
        if self._cancelled_timers > 512 and self._cancelled_timers * 2 > len(timers):
            kept = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            self._timers = timers = kept
            self._cancelled_timers = 0
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1
        self._iterations += 1
        if not ready and not self._stopping and not timers:
            self._process_events(self._selector.select(None))  # only real I/O can wake the loop now
        elif self._iterations % self.POLL_EVERY == 0:
            self._process_events(self._selector.select(0))
        if not ready and not self._stopping and timers and timers[0][0] > self.now:
            self.now = timers[0][0]  # nothing to do until the next timer: jump to it
        end = self.now + self._clock_resolution
        while timers and timers[0][0] < end:
            handle = heapq.heappop(timers)[2]
            handle._scheduled = False
            ready.append(handle)
        for _ in range(len(ready)):
            due = ready.popleft()
            if not due._cancelled:
                due._run()

    def close(self) -> None:
        self._timers.clear()
        super().close()


def run_simulated(main: Coroutine[Any, Any, T], start: float | None = None) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
