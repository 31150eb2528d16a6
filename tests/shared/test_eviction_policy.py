"""A Redis that is also a cache may evict modelyard's keys: said at start, in /healthz's state detail and in `models`.

Every modelyard key has a TTL, so under ``maxmemory`` any policy but ``noeviction`` may take them — ``volatile-ttl`` and
``volatile-lru`` as much as ``allkeys-lru`` (the policies: https://redis.io/docs/latest/develop/reference/eviction/;
managed services default to ``volatile-lru``, e.g. https://www.alibabacloud.com/help/doc-detail/38679.htm). The limit
holds through an eviction (test_fault_matrix.py::test_redis_flushed_then_evicting_keys_under_load), but requests wait a
grace and an evicted breaker forgets it was open; nothing said so. Each case on a private ``redis-server``, as started
by an operator: policies on its command line, CONFIG renamed away as a managed Redis does, an ACL user without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import redis

from modelyard.config.schema import StateConfig
from modelyard.router import ModelPool
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis


def _pool(url: str, prefix: str) -> ModelPool:
    config = make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 2}},
                         {"a": {"primary": "m"}})
    return ModelPool(config, shared=StateConfig(url=url, prefix=prefix, refresh=0.1, timeout=1.0, lease=10))


async def _detail_after_start(url: str, prefix: str) -> str:
    """/healthz's state detail once a serving process has made its first round trip (the check runs with it)."""
    pool = _pool(url, prefix)
    try:
        await pool["m"].acquire(5)
        await pool["m"].release()
        t0 = time.monotonic()
        while pool.link is None or pool.link.eviction is None:  # read with its first heartbeat (hang-guard: 10 s)
            assert time.monotonic() - t0 < 10, "the eviction settings were never read"
            await asyncio.sleep(0.02)
        status = pool.state_status()
        assert status is not None and status.up, status
        return status.detail
    finally:
        await pool.aclose()


async def _caption_of_a_look(url: str, prefix: str) -> str:
    """What `models` reads: a look without joining in (RedisLink.peek)."""
    pool = _pool(url, prefix)
    await pool.peek()
    status = pool.state_status()
    assert status is not None
    return status.detail


@pytest.mark.parametrize("policy", ["volatile-ttl", "volatile-lru", "allkeys-lru"])
async def test_a_policy_that_may_evict_our_keys_is_said_with_what_to_set(tmp_path: Path, prefix: str, policy: str,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", policy) as server:
        with caplog.at_level(logging.WARNING, logger="modelyard.state"):
            detail = await _detail_after_start(server.url, prefix)
        said = f"this Redis may evict modelyard's keys (maxmemory-policy {policy}, maxmemory 64mb"
        assert said in detail, detail
        assert "set maxmemory-policy noeviction" in detail and "a Redis instance of its own" in detail
        assert [r for r in caplog.records if said in r.getMessage()], "not said at start"
        assert said in await _caption_of_a_look(server.url, prefix)


async def test_noeviction_or_no_maxmemory_says_nothing(tmp_path: Path, prefix: str) -> None:
    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "noeviction") as server:
        assert "evict" not in await _detail_after_start(server.url, prefix)
    with PrivateRedis(tmp_path, "--maxmemory-policy", "allkeys-lru") as server:  # maxmemory 0: no limit, no eviction
        assert "evict" not in await _detail_after_start(server.url, prefix)


async def test_config_refused_as_on_a_managed_redis_reads_info_instead(tmp_path: Path, prefix: str) -> None:
    """CONFIG renamed away (ElastiCache and others restrict it): INFO memory says the policy too."""
    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru",
                      "--rename-command", "CONFIG", "") as server:
        with pytest.raises(redis.ResponseError):
            redis.Redis(port=server.port).config_get("maxmemory-policy")
        detail = await _detail_after_start(server.url, prefix)
        assert "maxmemory-policy volatile-lru, maxmemory 64mb" in detail, detail


async def test_neither_config_nor_info_allowed_says_it_is_not_known(tmp_path: Path, prefix: str) -> None:
    """An ACL user that may run the scripts but neither CONFIG nor INFO: the check says it could not tell."""
    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru") as server:
        admin = redis.Redis(port=server.port)
        admin.acl_setuser("gw", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                          commands=["+@all", "-config", "-info"])
        admin.close()
        url = f"redis://gw:pw@127.0.0.1:{server.port}/0"
        detail = await _detail_after_start(url, prefix)
        assert "whether this Redis may evict modelyard's keys is not known" in detail, detail
        assert "NOPERM" in detail or "permission" in detail, detail
        assert "maxmemory-policy is noeviction" in detail


async def test_a_refused_check_is_not_asked_again(tmp_path: Path, prefix: str) -> None:
    """Each refusal of an ACL user is an entry in the server's ACL LOG (an operator's audit trail): a process that asked
    every 30 s for as long as it ran would fill it. CONFIG refused once is not asked again, nor INFO with it."""
    with PrivateRedis(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru") as server:
        admin = redis.Redis(port=server.port)
        admin.acl_setuser("gw", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                          commands=["+@all", "-config", "-info"])
        pool = _pool(f"redis://gw:pw@127.0.0.1:{server.port}/0", prefix)
        try:
            await pool["m"].acquire(5)
            await pool["m"].release()
            link = pool.link
            assert link is not None
            t0 = time.monotonic()
            while link.eviction is None:  # read with its first heartbeat (hang-guard: 10 s)
                assert time.monotonic() - t0 < 10, "the eviction settings were never read"
                await asyncio.sleep(0.02)
            refusals = sum(int(e["count"]) for e in admin.acl_log())
            assert refusals >= 2  # CONFIG GET and INFO, once each (and INFO server for the server's id)
            for _ in range(3):  # what the next 30-second checks would do
                await link._read_eviction()
            assert sum(int(e["count"]) for e in admin.acl_log()) == refusals
        finally:
            await pool.aclose()
            admin.close()
