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

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector):
        self._loop = loop
        self._real = real

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout is None or timeout <= 0:
            return ready if ready or timeout is not None else self._real.select(None)
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str):  # register, unregister, modify, get_map, close…
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps over idle time: a simulated hour of timeouts, sleeps, queue
    bounds and cooldowns runs in the milliseconds its callbacks take. The router runs on it
    unchanged — replay and tests use the real rules, not a model of them."""

    def __init__(self, start: float = 0.0):
        real = selectors.DefaultSelector()
        super().__init__(selector=real)
        self.now = start
        self._selector = _JumpingSelector(self, real)  # type: ignore[assignment]

    def time(self) -> float:
        return self.now


def run_simulated(main: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
