"""A model's cooldown (its shared breaker, ``PREFIX:{model}:breaker``) across a Redis that lost its data — restarted
without persistence (the README's own ``--save "" --appendonly no``), a failover to a replica that had not synced,
``FLUSHALL`` — on a private ``redis-server`` the test restarts on the same port.

The slots' holders and waiters are registered again by their processes after such a loss
(``tests/shared/test_redis_state.py``); a cooldown was not: every process read the breaker as closed, and the model that
was cooling — down, or answering errors — was asked again by the team until it failed ``cooldown.failures`` more
times. A peer gateway keeps cooldowns in Redis alone and loses them the same way (LiteLLM's cooldown cache: "a
second cooldown keeps the first, shorter deadline", BerriAI/litellm#40130, is the other way a shared deadline goes
wrong).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from modelyard.errors import Reason
from tests.shared.redis_kit import PrivateRedis
from tests.shared.test_redis_state import Pools, _joined, _until, pools  # noqa: F401 - fixture

TIMEOUT = 1.0


async def test_a_cooldown_outlives_a_redis_restarted_empty(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """One process's failure opens the model's breaker for 30 s; Redis restarts empty; once both processes use the new
    server, the model is still cooling for both, and the other process skips it. Before: both read it closed (0 s
    left) and sent it the next request."""
    server = PrivateRedis(tmp_path).start()
    try:
        made = pools(2, failures=1, seconds=30, url=server.url, timeout=TIMEOUT)
        for pool in made:
            await _joined(pool)
        a, b = (pool["m"] for pool in made)
        ticket = await a.admit()
        assert ticket is not None
        await a.failed(ticket, Reason.SERVER_ERROR)
        await _until(lambda: a.cooling()[0] > 20 and b.cooling()[0] > 20)
        server.kill()
        server.start()
        admin = redis.Redis(port=server.port)
        assert admin.dbsize() == 0
        # both on the new server: each registered again (the instance list is written every tick)
        await _until(lambda: a.link.up and b.link.up and admin.zcard(f"{a.link.prefix}:instances") == 2, 15)
        await asyncio.sleep(0.5)  # a few ticks of each on it
        assert a.cooling()[0] > 20 and b.cooling()[0] > 20, (a.cooling(), b.cooling())
        assert await b.admit() is None, "the other process sent the cooling model a request"
    finally:
        server.kill()
