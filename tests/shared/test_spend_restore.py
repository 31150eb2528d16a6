"""A process that spent and ended before its last spend tick reached Redis — ``kill -9`` between two ticks, an ``ask``
whose closing tick failed — left the team's counter short of what it spent: the counter's floors restore a process's
share only as far as some process last read it (RELIABILITY.md, shared25's "Left"), and the routing log, which has
every request's cost, counted only on its own host (a cap counts the larger of the log and the counter, not a sum).
With each host on its own log file (no ``log.url``) every other host stayed short by that much for the rest of the
window. Against the machine's real Redis; two hosts named by the test (each process's ``host`` and instance id)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import redis

from modelyard.router import ModelPool
from modelyard.router.shared import spend as shared_spend
from modelyard.router.spend import SpendCaps
from tests.shared.redis_kit import REDIS_URL
from tests.shared.test_redis_state import Pools, _until, pools  # noqa: F401 - fixture
from tests.shared.test_spend_counter_faults import _config

TIMEOUT = 1.0


def _on_host(pool: ModelPool, host: str) -> SpendCaps:
    """The pool's process as one of host ``host`` (its instance id says the host, as a real one's does)."""
    assert pool.spend is not None and pool.link is not None
    pool.link.host = host
    pool.link.instance = f"{host}:{os.getpid()}:{id(pool):x}"
    caps = SpendCaps(pool.spend.caps)
    pool.spend = pool.link.spend = caps
    pool.link.ensure_started()
    return caps


async def test_the_spend_a_killed_process_never_sent_is_restored_from_its_hosts_file(pools: Pools) -> None:  # noqa: F811
    """Host A's process spent $5 and sent $3 of it before it was killed; host B's spent $1. Host A's process started
    again reads its file ($5: every request of that host) and is alone on its host: the $2 its file holds beyond what
    host A's processes sent goes to the counter as host A's unsent spend, and both hosts count the team's $6. Before:
    host A counted $5 (its file), host B $4 (the counter) — a $5.5 cap was passed on both."""
    a_pool, b_pool = pools(2, timeout=TIMEOUT, models=_config())
    admin = redis.Redis.from_url(REDIS_URL)
    seconds, _ = admin.time()
    day = int(datetime.fromtimestamp(seconds, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    assert a_pool.link is not None
    counter = f"{a_pool.link.prefix}:spent:paid:{day}"
    admin.hset(counter, "host-a:999:dead", "3.0")  # the killed process's last tick; its last $2 never came
    a = _on_host(a_pool, "host-a")
    b = _on_host(b_pool, "host-b")
    a.reads_host_file = True
    a.read_now(lambda starts: {"paid": 5.0})  # its host's file: every request of host A in the window
    b.add("paid", 1.0)
    try:
        await _until(lambda: a.spent("paid") == 6.0 and b.spent("paid") == 6.0, 10)
    except AssertionError:
        raise AssertionError(f"host A counts {a.spent('paid')}, host B {b.spent('paid')}; the counter holds "
                             f"{admin.hgetall(counter)}") from None
    assert float(admin.hget(counter, shared_spend.unsent_field("host-a")) or 0) == 2.0
    admin.close()
