"""How many round trips the scripts cost, timed through a proxy that delays every command (a Redis across a WAN).

redis-py's ``Script`` objects in a pipeline first ask ``SCRIPT EXISTS`` for all of them and wait for the answer
(redis-py 8.1, ``redis/asyncio/client.py``, ``Pipeline.load_scripts``, called by ``execute``), so the heartbeat —
one pipeline — cost two round trips, and the lease keeper's renewal from its thread two as well; after Redis lost its
script cache (a restart, ``SCRIPT FLUSH``) each script was loaded on its own, ``SCRIPT LOAD`` one round trip at a
time (``load_scripts``; ``AsyncScript.__call__`` in ``redis/commands/core.py`` for a call alone). With the proxy's
delay ``D`` per command, the time of a call is its round trips times ``D``; the bounds below sit halfway between the
counts before and after.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from modelyard.router import ModelPool
from modelyard.router.shared import RedisState
from tests.shared.fault_proxy import FaultProxy
from tests.shared.redis_kit import PrivateRedis, short_lease
from tests.shared.test_redis_state import config

#: the proxy's delay per command: far above what the machine adds to a round trip on loopback
D = 0.2


@pytest.fixture
async def far(prefix: str, tmp_path: Path) -> AsyncIterator[tuple[ModelPool, FaultProxy, int]]:
    """A pool behind the delaying proxy, in front of a private Redis (its scripts are flushed: never the shared one's,
    which other tests use)."""
    with PrivateRedis(tmp_path) as server, FaultProxy(server.port) as proxy:
        # a long lease and refresh: the background heartbeat (every 10 s) stays out of the timed calls
        pool = ModelPool(config(2), shared=short_lease(url=proxy.url(), prefix=prefix, lease=30, refresh=10,
                                                       timeout=5))
        state = pool["m"]
        assert isinstance(state, RedisState)
        await state.acquire(10)  # connected, its first heartbeat done
        await state.release()
        try:
            yield pool, proxy, server.port
        finally:
            proxy.delay(0)
            await pool.aclose()


async def _timed_beat(pool: ModelPool) -> float:
    assert pool.link is not None
    t0 = time.monotonic()
    await pool.link._beat(force=True)
    return time.monotonic() - t0


async def test_a_heartbeat_is_one_round_trip(far: tuple[ModelPool, FaultProxy, int]) -> None:
    pool, proxy, _ = far
    await _timed_beat(pool)  # every script of the heartbeat used once on this connection
    proxy.delay(D)
    took = await _timed_beat(pool)
    assert took < 1.5 * D, f"a heartbeat took {took / D:.1f} round trips (SCRIPT EXISTS before the pipeline?)"


async def test_scripts_lost_by_redis_are_loaded_in_one_round_trip(far: tuple[ModelPool, FaultProxy, int]) -> None:
    """After ``SCRIPT FLUSH`` (what a restart leaves): the heartbeat finds its scripts gone, loads every script of the
    link in one pipeline, and runs again — three round trips; before, ``SCRIPT EXISTS``, one ``SCRIPT LOAD`` per script
    of the heartbeat (five), and the pipeline: seven. The next call, an acquire, then finds its script loaded: one
    round trip; before, three (``EVALSHA`` refused, ``SCRIPT LOAD``, ``EVALSHA``)."""
    pool, proxy, port = far
    state = pool["m"]
    admin = redis.Redis(port=port)
    admin.script_flush()
    admin.close()
    proxy.delay(D)
    took = await _timed_beat(pool)
    assert took < 4.5 * D, f"the heartbeat took {took / D:.1f} round trips to load the scripts again"
    t0 = time.monotonic()
    await state.acquire(10)
    took = time.monotonic() - t0
    await state.release()
    assert took < 1.5 * D, f"the acquire took {took / D:.1f} round trips: its script was not loaded with the others"


async def test_the_lease_keepers_renewal_is_one_round_trip_and_survives_a_flush(
        far: tuple[ModelPool, FaultProxy, int]) -> None:
    """The keeper renews from its own thread when the loop is stalled: its last chance before the lease runs out."""
    pool, proxy, port = far
    state = pool["m"]
    await state.acquire(10)
    link = pool.link
    assert link is not None and link.keeper is not None
    assert link.keeper.keep() and link.keeper.holders_kept == 1  # its connection opened
    admin = redis.Redis(port=port)
    admin.script_flush()
    assert link.keeper.keep() and link.keeper.holders_kept == 1, "the renewal failed once Redis lost the script"
    proxy.delay(D)
    t0 = time.monotonic()
    assert link.keeper.keep() and link.keeper.holders_kept == 1
    took = time.monotonic() - t0
    admin.close()
    await state.release()
    assert took < 1.5 * D, f"the keeper's renewal took {took / D:.1f} round trips"
