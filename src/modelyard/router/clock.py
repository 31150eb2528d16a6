"""Where per-model state reads the time.

Breakers compare deadlines with a clock. By default that is the running event loop's clock
(``loop.time()``, monotonic), the same one every timeout, sleep and queue bound uses — so a
loop with simulated time (replay, tests) moves breakers, slots and timeouts together, and
nothing has to sleep for real to let a cooldown expire.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

Clock = Callable[[], float]
T = TypeVar("T")


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


class _JumpingSelector:
    """Wraps a real selector: polls it without blocking, and when nothing is ready, jumps the
    loop's clock to the next timer instead of sleeping until it."""

    #: real I/O (another thread waking the loop) is looked for every this many jumps, not at each
    POLL_EVERY = 64

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector):
        self._loop = loop
        self._real = real
        self._skipped = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            return self._real.select(None)  # nothing scheduled: only real I/O can wake the loop
        if timeout <= 0 or self._skipped >= self.POLL_EVERY:
            self._skipped = 0
            ready = self._real.select(0)
            if ready or timeout <= 0:
                return ready
        self._skipped += 1
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str):  # register, unregister, modify, get_map, close…
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps over idle time: a simulated hour of timeouts, sleeps, queue
    bounds and cooldowns runs in the milliseconds its callbacks take. The router runs on it
    unchanged — replay and tests use the real rules, not a model of them."""

    def __init__(self, start: float | None = None):
        """``start``: the simulated time to begin at, in epoch seconds (default: now)."""
        real = selectors.DefaultSelector()
        super().__init__(selector=real)
        self.now = time.time() if start is None else start
        self._selector = _JumpingSelector(self, real)  # type: ignore[assignment]
        # On the epoch scale a float step is ~0.2 µs: the default resolution (1 ns) would vanish in
        # rounding and a timer due "now" would never count as due. One microsecond is plenty.
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return self.now


def run_simulated(main: Coroutine[Any, Any, T], start: float | None = None) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
