"""One timer for the time bounds of a loop's routing-log waiters (ledger/bounds.py, issue #15): each waiter
is still released at its own bound, whatever order the bounds come in, and ended waits are let go."""

from __future__ import annotations

import asyncio

from modelyard.ledger.bounds import Bounds


async def test_each_wait_is_released_at_its_own_bound_with_one_timer() -> None:
    loop = asyncio.get_running_loop()
    bounds = Bounds(loop)
    t0 = loop.time()
    released: dict[str, float] = {}
    futs = {name: loop.create_future() for name in ("long", "short", "mid", "answered")}
    for name, fut in futs.items():
        fut.add_done_callback(lambda _f, name=name: released.setdefault(name, loop.time() - t0))
    bounds.add(futs["long"], 0.6)
    bounds.add(futs["short"], 0.1)  # earlier than the armed timer: the timer moves
    bounds.add(futs["mid"], 0.3)
    bounds.add(futs["answered"], 0.2)
    futs["answered"].set_result(None)  # committed before its bound
    scheduled = len(loop._scheduled)  # type: ignore[attr-defined]
    await asyncio.wait_for(asyncio.gather(*futs.values()), 5)
    assert scheduled <= 2, "one live timer (and at most the one it replaced, cancelled)"
    assert released["answered"] < 0.1
    assert 0.09 <= released["short"] < released["mid"] < released["long"]
    assert released["mid"] >= 0.29 and released["long"] >= 0.59
    assert len(bounds) == 0


async def test_ended_waits_are_dropped_as_new_ones_come() -> None:
    loop = asyncio.get_running_loop()
    bounds = Bounds(loop)
    for _ in range(1000):
        fut = loop.create_future()
        bounds.add(fut, 60)
        fut.set_result(None)
    assert len(bounds) <= 1
    cancelled = loop.create_future()
    bounds.add(cancelled, 60)
    cancelled.cancel()  # a waiter whose task was cancelled (client gone)
    bounds.add(loop.create_future(), 0.05)
    await asyncio.sleep(0.2)
    assert len(bounds) == 0
