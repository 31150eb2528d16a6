"""A rolling upgrade across the spend counters' change of shape: old and new processes count one cap.

Versions before 24204b5 added their spend to a string counter per capped model and window,
``PREFIX:spend:MODEL:WINDOW`` (``INCRBYFLOAT`` in their script; see ``git show 24204b5^:src/modelyard/router/shared/
spend.py``); versions since keep a hash, ``PREFIX:spent:MODEL:WINDOW``, a field per process. While both ran — a
rolling upgrade, host by host — each side counted only its own key for the rest of the window, so a team could spend
the cap once on each side. The new processes read the old counter too (as one more share), and write only their own.
"""

from __future__ import annotations

import asyncio

import redis

from modelyard.config.schema import SpendWindow
from modelyard.router.shared.spend import LEGACY, key, legacy_key
from modelyard.router.spend import window_start
from tests.shared.redis_kit import REDIS_URL
from tests.shared.test_redis_state import Pools, _until, pools  # noqa: F401 - fixture
from tests.shared.test_spend_counter_faults import _caps, _config


async def test_new_processes_count_what_old_ones_add_to_their_counter(pools: Pools,  # noqa: F811 - fixture
                                                                      prefix: str) -> None:
    admin = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        seconds, _ = admin.time()
        start = window_start(SpendWindow.DAY, seconds)
        old = legacy_key(prefix, "paid", start)
        admin.incrbyfloat(old, 4.0)  # what a process of the version before did after its answers ($4)
        (pool,) = pools(1, timeout=1.0, models=_config())
        caps = _caps(pool)
        caps.add("paid", 3.0)
        await _until(lambda: caps.spent("paid") == 7.0)
        admin.incrbyfloat(old, 1.0)  # the old process goes on spending: seen at the next tick
        await _until(lambda: caps.spent("paid") == 8.0)
        caps.add("paid", 0.5)
        await _until(lambda: caps.spent("paid") == 8.5)
        # the old counter is read, never written; and never copied into the hash as a floor (counted twice)
        def fields() -> dict[str, float]:
            return {k.decode(): float(v) for k, v in admin.hgetall(key(prefix, "paid", start)).items()}

        await _until(lambda: sum(fields().values()) >= 3.5)  # the next tick
        await asyncio.sleep(0.3)  # and a few more, each sending the floors it read
        assert float(admin.get(old) or 0) == 5.0
        assert LEGACY not in fields() and sum(fields().values()) == 3.5, fields()
        assert caps.spent("paid") == 8.5
    finally:
        admin.close()
