"""The spend caps' shared counters (``PREFIX:spent:MODEL:WINDOW`` in Redis, :mod:`modelyard.router.shared.spend`)
under what real Redis deployments go through — each on a private ``redis-server`` a test restarts or reconfigures.

- **Redis restarted empty** (the README's own ``redis-server … --save "" --appendonly no``, a managed Redis failing
  over to a replica that had not synced, ``FLUSHALL``): every counter is gone while the processes that spent it run
  on. A counter that starts again from zero lets the team spend about another whole cap on top of what it spent —
  LiteLLM's reviewers called that "Cold spend counter resets the cap … the job can spend about another full cap"
  (BerriAI/litellm#37555) and reseed their counters on a clean Redis miss (BerriAI/litellm#26829). Gateways that keep
  their own log files (no ``log.url``) count only their own spend in it: the counter is the only team-wide sum.
- **Redis at maxmemory, ``noeviction``**: ``OOM command not allowed when used memory > 'maxmemory'`` — "a script
  without [a #!lua] line gets the error when it calls a command that adds data"
  (https://redis.io/docs/latest/develop/reference/errors/common/oom/), and only while it has not written yet. The
  slots' scripts start with a purge, so they keep working (``test_redis_replies.py``); a spend script whose first
  write is ``INCRBYFLOAT`` was refused, which took the whole link down (every model to its outage share) at every
  tick after a paid answer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from modelyard.router import ModelPool
from modelyard.router.spend import SpendCaps
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis, at_maxmemory
from tests.shared.test_redis_state import Pools, _until, pools  # noqa: F401 - fixture

CAP = 10.0
#: the store's call bound: a first call (connect, load the scripts) on a loaded 2-core machine can take 0.3 s
TIMEOUT = 1.0


def _config():
    return make_config({"paid": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": "http://10.0.0.7:9",
                                 "price": {"input": 1.0, "output": 5.0},
                                 "spend_cap": {"usd": CAP, "per": "day"}}},
                       {"a": {"primary": "paid"}})


def _counter(server: PrivateRedis) -> float:
    """The capped model's counter as Redis holds it (0: none)."""
    admin = redis.Redis(port=server.port)
    keys = list(admin.scan_iter(match="*:spent:paid:*"))  # a hash: every process's spend in the window
    return sum(float(v) for v in admin.hvals(keys[0])) if keys else 0.0


def _caps(pool: ModelPool) -> SpendCaps:
    assert pool.spend is not None and pool.link is not None
    pool.link.ensure_started()
    return pool.spend


async def test_a_redis_restarted_empty_does_not_reset_the_teams_spend(pools: Pools,  # noqa: F811 - fixture
                                                                     tmp_path: Path) -> None:
    """Two processes, each with its own log (no reader: what it spent itself is all its log knows), $3 each through
    the counter; Redis restarted empty on the same port; one more dollar. Before: the counter started again at $1,
    so each process counted max(its own, $1) — $4 and $3 of the $7 the team spent, another cap's worth to go."""
    server = PrivateRedis(tmp_path).start()
    try:
        made = pools(2, url=server.url, timeout=TIMEOUT, models=_config())
        a, b = (_caps(p) for p in made)
        a.add("paid", 3.0)
        b.add("paid", 3.0)
        await _until(lambda: a.spent("paid") == 6.0 and b.spent("paid") == 6.0)
        server.kill()
        again = PrivateRedis(tmp_path)
        again.port = server.port
        server = again.start()
        assert redis.Redis(port=server.port).dbsize() == 0
        a.add("paid", 1.0)
        links = [p.link for p in made]
        await _until(lambda: _counter(server) > 0 and all(link is not None and link.up for link in links), 15)
        await asyncio.sleep(0.5)  # a few ticks of each on the new server
        # the team spent $7: each process counts it (before: $4 and $3)
        assert (a.spent("paid"), b.spent("paid"), _counter(server)) == (7.0, 7.0, 7.0)
    finally:
        server.kill()


async def test_spend_under_maxmemory_keeps_the_link_up(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """Redis at maxmemory with noeviction: a paid answer's spend is added (Redis goes past the limit by a few bytes,
    as the slots' scripts do) and the link stays up. Before: OOM on the spend script's INCRBYFLOAT marked the link
    down — every model to this process's share — and the amount never reached the counter."""
    with PrivateRedis(tmp_path) as server:
        (pool,) = pools(1, url=server.url, timeout=TIMEOUT, models=_config())
        caps = _caps(pool)
        assert pool.link is not None
        await _until(lambda: pool.link is not None and pool.link.instances > 0 and pool.link.up)
        with at_maxmemory(server.port):
            errors = pool.link.errors
            caps.add("paid", 2.0)
            await _until(lambda: _counter(server) == 2.0 or pool.link.errors > errors)
            await asyncio.sleep(0.3)  # a few more ticks
            assert pool.link.up and pool.link.errors == errors, pool.link.down_reason
