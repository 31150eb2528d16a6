"""A spend counter survives a Redis that evicts keys with a TTL (``volatile-*``), and leaves Redis all the same.

A managed Redis often evicts by default (``volatile-lru``), and a Redis shared with an application's cache runs a
``volatile-*`` policy so that the cache's keys, which carry a TTL, make room: Redis then evicts only keys that have
one ("volatile-ttl: Removes keys with an expire field set … with the shortest remaining TTL first",
https://redis.io/docs/latest/develop/reference/eviction/). The spend counters had a TTL (33 days), so a full Redis
evicted them — the shortest TTL among a cache's longer ones — and with every gateway restarted meanwhile (no live
process to restore the counter from what it last read) the team's spend in the window was gone: the cap could be
spent again. Each case on a private ``redis-server`` at a small ``maxmemory``, filled as a cache would fill it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from tests.shared.redis_kit import PrivateRedis
from tests.shared.test_redis_state import Pools, _until, pools  # noqa: F401 - fixture
from tests.shared.test_spend_counter_faults import _caps, _config, _counter

TIMEOUT = 1.0
#: a cache's entries: longer-lived than a counter's old 33-day TTL, so volatile-ttl evicted the counter first
CACHE_TTL_S = 90 * 86400


def _fill_as_a_cache(port: int, megabytes: int) -> None:
    """Write ``megabytes`` of cache entries (each with a TTL) into a Redis whose maxmemory is smaller: it evicts."""
    admin = redis.Redis(port=port, socket_timeout=10)
    value = b"x" * 10_000
    with admin.pipeline(transaction=False) as pipe:
        for i in range(megabytes * 100):
            pipe.set(f"cache:{i}", value, ex=CACHE_TTL_S)
        pipe.execute()
    evicted = int(admin.info("stats")["evicted_keys"])
    assert evicted > 0, "the filler evicted nothing: maxmemory not reached"
    admin.close()


async def test_a_spend_counter_is_not_evicted_by_a_volatile_policy(pools: Pools,  # noqa: F811 - fixture
                                                                   tmp_path: Path) -> None:
    with PrivateRedis(tmp_path, "--maxmemory", "4mb", "--maxmemory-policy", "volatile-ttl") as server:
        (first,) = pools(1, url=server.url, timeout=TIMEOUT, models=_config())
        caps = _caps(first)
        caps.add("paid", 6.0)
        await _until(lambda: _counter(server) == 6.0)
        await first.aclose()  # every gateway restarted (a deploy, a nightly restart): nobody holds the counter
        _fill_as_a_cache(server.port, 8)
        assert _counter(server) == 6.0, "the counter was evicted: the team's spend in the window is gone"
        admin = redis.Redis(port=server.port)
        (key,) = admin.scan_iter(match="*:spent:paid:*")
        assert admin.ttl(key) == -1, "the counter carries a TTL: volatile-* policies may evict it"
        (later,) = pools(1, url=server.url, timeout=TIMEOUT, models=_config())
        caps = _caps(later)
        await _until(lambda: caps.spent("paid") == 6.0)  # the next gateway counts what the team spent
        admin.close()


async def test_counters_past_their_time_leave_redis_and_old_ones_lose_their_ttl(pools: Pools,  # noqa: F811
                                                                               tmp_path: Path) -> None:
    """No TTL, yet a prefix's counters do not stay for good: a counter not written for ``KEEP_S`` is deleted by the
    next call; and a counter an older version wrote with a TTL loses it when this version writes it."""
    with PrivateRedis(tmp_path) as server:
        (pool,) = pools(1, url=server.url, timeout=TIMEOUT, models=_config())
        assert pool.link is not None
        caps = _caps(pool)
        caps.add("paid", 1.0)
        await _until(lambda: _counter(server) == 1.0)
        admin = redis.Redis(port=server.port)
        (current,) = admin.scan_iter(match="*:spent:paid:*")
        index = f"{pool.link.prefix}:spent-keys"  # every counter and when it may go (spend.index_key)
        stale = f"{pool.link.prefix}:spent:paid:1000"  # a window of long ago, last written more than KEEP_S ago
        admin.hset(stale, "host:1:aa", "5.0")
        admin.zadd(index, {stale: time.time() - 1})
        admin.expire(current, 3600)  # as an older version left it
        caps.add("paid", 1.0)
        await _until(lambda: _counter(server) == 2.0)
        await asyncio.sleep(0.3)  # a few ticks
        assert not admin.exists(stale), "a counter past its time stayed"
        assert admin.ttl(current) == -1, "the counter kept an older version's TTL"
        assert admin.zscore(index, current) is not None
        admin.close()


@pytest.mark.parametrize(("policy", "said"), [
    ("volatile-lru", "the slots' and breakers' keys (they carry a TTL; the spend counters carry none, so spend caps "
                     "are safe)"),
    ("allkeys-lru", "any of modelyard's keys: a spend counter evicted starts again from what the live processes last "
                    "read"),
])
async def test_what_a_policy_may_take_is_said(tmp_path: Path, prefix: str, policy: str, said: str) -> None:
    """Which keys are at risk depends on the policy: ``allkeys-*`` the spend counters too, ``volatile-*`` only the keys
    with a TTL (before, every policy was said to take every key, since every key had one)."""
    from tests.shared.test_eviction_policy import _detail_after_start

    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", policy) as server:
        detail = await _detail_after_start(server.url, prefix)
    assert said in detail, detail
    assert "set maxmemory-policy noeviction" in detail
