"""A Redis that is also a cache (``maxmemory-policy allkeys-lru``) evicts any key, one at a time (redis.io, "Key
eviction": allkeys-lru "evicts the least recently used keys out of all keys"). When it evicts a model's holders set, a
release must not hand its slots out as if they were free: the holders are still running. Found outside in
(test_fault_matrix: the backend saw 4 requests at once, limit 2, while a filler pushed Redis to evict); here the
eviction is a DEL of that one key, which is what eviction does to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis

from modelyard.router import ModelPool
from tests.helpers import make_config
from tests.shared.redis_kit import REDIS_URL, short_lease


@pytest.fixture
async def two(prefix: str) -> AsyncIterator[tuple[ModelPool, ModelPool]]:
    config = make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 2}},
                         {"a": {"primary": "m"}})  # a server on the network: its keys are {m}, every host's
    # a 1 s call bound: a first call past 0.3 s on a loaded machine took a link down, and a pool that never counted
    # the others has no slot of its own
    settings = short_lease(url=REDIS_URL, prefix=prefix, lease=1.2, refresh=0.1, timeout=1.0)
    pools = (ModelPool(config, shared=settings), ModelPool(config, shared=settings))
    yield pools
    for pool in pools:
        await pool.aclose()


async def test_a_release_after_the_holders_set_was_evicted_hands_out_no_slot_in_use(two: tuple[ModelPool, ModelPool],
                                                                                   prefix: str) -> None:
    a, b = two
    await a["m"].acquire(1)
    await a["m"].acquire(1)  # a holds both slots
    waiters = [asyncio.create_task(b["m"].acquire(10)) for _ in range(2)]
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    deadline = time.monotonic() + 3
    while client.zcard(f"{prefix}:{{m}}:queue") < 2:
        assert time.monotonic() < deadline, "b's waiters never queued"
        await asyncio.sleep(0.01)
    client.delete(f"{prefix}:{{m}}:holders")  # evicted
    client.close()
    await a["m"].release()  # a still holds one
    # watched past the grace (2·lease/3 + timeout = 1.8 s) and a heartbeat, and on until the slot a gave back was
    # handed over (the state the design guarantees after the grace; a hang-guard of 15 s, not a fixed 2.5 s window)
    peak, start = 0, time.monotonic()
    while time.monotonic() - start < 3.0 or not any(w.done() for w in waiters):
        assert time.monotonic() - start < 15, "the slot a gave back was never handed over"
        peak = max(peak, 1 + sum(w.done() for w in waiters))
        await asyncio.sleep(0.005)
    peak = max(peak, 1 + sum(w.done() for w in waiters))
    assert peak <= 2, f"{peak} slots in use at once (limit 2): the release handed out the slot a still holds"
    assert sum(w.done() for w in waiters) == 1, "the slot a gave back went to b's first waiter"
    await a["m"].release()
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    for _ in waiters:
        await b["m"].release()
