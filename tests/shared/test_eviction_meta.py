"""A Redis whose ``maxmemory-policy`` is ``volatile-*`` (or ``allkeys-*``) may evict any key with a TTL (redis.io,
"Key eviction": volatile-lru "evicts the least recently used keys out of all keys with an expire field set"), and every
key of a model's slots carries one (lua.KEY_TTL_MS). When both its ``meta`` and its ``holders`` go, nothing in Redis
says data was lost — and a process just started, which knows no epoch yet, read the model as never used and was
granted the evicted slots at once, beside their holders still running: up to twice ``max_concurrent`` at the backend
until the old processes' next heartbeat. Here the eviction is a DEL of those two keys: eviction removes a key whole,
as DEL does, so DEL leaves exactly what eviction leaves (and, unlike a filler pushing Redis past maxmemory, takes
these two keys and no other).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from modelyard.router import ModelPool
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis, short_lease


async def _caps_name(client: redis.Redis, key: str, n: int) -> None:
    """Until ``key`` (the model's caps) names ``n`` processes: their heartbeats ran (polled without blocking the loop
    on which those heartbeats run)."""
    deadline = time.monotonic() + 10
    while client.zcard(key) < n:
        assert time.monotonic() < deadline, f"{key} never named {n} processes"
        await asyncio.sleep(0.05)


async def test_a_process_started_after_meta_and_holders_were_evicted_is_not_granted_the_slots_in_use(
        tmp_path: Path, prefix: str) -> None:
    config = make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 2}},
                         {"a": {"primary": "m"}})  # a server on the network: its keys are {m}, every host's
    # a heartbeat every 10 s: the old processes do not notice the loss themselves before the new one asks (the grace,
    # 2·lease/3 + timeout, is then 21 s: the new process is bounded at 1 s, well inside it)
    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru") as server:
        settings = short_lease(url=server.url, prefix=prefix, lease=30, refresh=10, timeout=1.0)
        a, b, new = (ModelPool(config, shared=settings) for _ in range(3))
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        try:
            await a["m"].acquire(5)
            # the case the change must leave alone: a process new to a model that lost nothing is granted at once
            assert await b["m"].acquire(5) < 5
            await _caps_name(client, f"{prefix}:{{m}}:caps", 2)  # both limit m: both run
            assert client.delete(f"{prefix}:{{m}}:meta", f"{prefix}:{{m}}:holders") == 2  # evicted
            # granted, it was a third request at the backend (limit 2) while a's and b's ran on
            with pytest.raises(QueueTimeout):
                await new["m"].acquire(1.0)
        finally:
            client.close()
            for pool in (a, b, new):
                await pool.aclose()
