"""Redis ``BUSY``: another client's Lua script (or function) has run past ``busy-reply-threshold`` (``lua-time-limit``,
5 s by default), and until it ends every other command is answered ``BUSY Redis is busy running a script. You can
only call SCRIPT KILL or SHUTDOWN NOSAVE.`` — redis/redis#9581; users of other Redis libraries met it from their own
or a neighbour's scripts (taskforcesh/bullmq#265: "workers crash and never recover"; bee-queue/bee-queue#448, a
script over millions of keys: RedisDesktopManager#4599). On a private ``redis-server`` with the threshold lowered to
0.1 s, so the test needs no 5 s script.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from modelyard.router.shared import RedisState
from tests.shared.redis_kit import PrivateRedis, store_calls
from tests.shared.test_redis_state import Pools, _joined, pools  # noqa: F401 - fixture

TIMEOUT = 1.0
#: how long the neighbour's script runs (Redis's own clock, inside the script)
BUSY_FOR_S = 5


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "not within the hang-guard"
        await asyncio.sleep(0.02)


def _busy_script(port: int) -> threading.Thread:
    """Another client's script that keeps Redis busy for BUSY_FOR_S seconds (it writes nothing)."""
    spin = ("local t = tonumber(redis.call('TIME')[1]) "
            f"while tonumber(redis.call('TIME')[1]) - t < {BUSY_FOR_S} do end return 1")
    thread = threading.Thread(target=lambda: redis.Redis(port=port, socket_timeout=30).eval(spin, 0), daemon=True)
    thread.start()
    return thread


async def test_a_neighbours_long_script_is_an_outage_named_as_such(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """While Redis answers BUSY the process uses its share (a request makes no call to the store), the reason says
    what BUSY means and what ends it, and the link is back by itself once the script ends. Before: the same fallback,
    the reason Redis's bare words, which name neither a neighbour's script nor the threshold."""
    with PrivateRedis(tmp_path, "--busy-reply-threshold", "100") as server:
        (pool,) = pools(1, limit=2, url=server.url, timeout=TIMEOUT, refresh=0.1)
        state = pool["m"]
        assert isinstance(state, RedisState)
        await _joined(pool)
        await _until(lambda: state.link.instances > 0)
        script = _busy_script(server.port)
        await _until(lambda: "BUSY" in state.link.down_reason)
        # what it means and what ends it (the words of StoreFault.BUSY)
        assert "busy-reply-threshold" in state.link.down_reason and "SCRIPT KILL" in state.link.down_reason, \
            state.link.down_reason
        assert "busy-reply-threshold" in state.link.status().detail
        made = store_calls(state)
        await state.acquire(1)  # this process's share, at once
        await state.release()
        assert made == [] and not state.link.up, made
        await asyncio.to_thread(script.join, 2 * BUSY_FOR_S)
        await _until(lambda: state.link.up)
        await state.acquire(1)
        await state.release()
