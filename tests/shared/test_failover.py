"""A failover under load: the primary dies and its replica is promoted (``REPLICAOF NO ONE``), reached at the address
the processes already use — a name or proxy the failover moves, as the README asks for (a Sentinel URL is refused).

Replication is asynchronous (redis.io, "Redis replication": a replica may lose the writes its primary acknowledged
last), so the promoted replica may miss the slots taken just before the primary died, or still list ones given back
since; and it is another server (its own ``run_id``). Real processes, real private servers, the count taken at the
backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import redis

from tests.shared.fault_proxy import FaultProxy
from tests.shared.redis_kit import PrivateRedis, counts, until


def test_a_replica_promoted_mid_load_keeps_the_limit_and_serves_every_request(tmp_path: Path) -> None:
    """Six processes × 20 requests at ``max_concurrent: 2`` through one address; 1.5 s into the load the primary is
    killed, the replica promoted and the address moved to it (every open connection reset, as a moved virtual IP or a
    proxy's failover does). The new primary's run id is not the one the slots were registered under, so it counts as a
    loss: a grace while the live holders register again. At most 2 at the backend, all 120 served, nothing left."""
    from tests.shared.test_loop_stall import Backend
    from tests.shared.test_shared_round5 import load_through

    backend = Backend()
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    with PrivateRedis(tmp_path / "p") as primary, PrivateRedis(tmp_path / "r") as replica, \
            FaultProxy(primary.port) as proxy:
        admin = redis.Redis(port=replica.port, socket_timeout=5)
        try:
            admin.execute_command("REPLICAOF", "127.0.0.1", primary.port)
            until(lambda: admin.info("replication").get("master_link_status") == "up", 15, 0.05)
            common = {"url": proxy.url(), "prefix": "fo", "lease": 3.0, "refresh": 0.1, "timeout": 1.0, "limit": 2,
                      "port": backend.port}

            def fail_over() -> None:
                primary.kill()
                admin.execute_command("REPLICAOF", "NO", "ONE")
                proxy.upstream = ("127.0.0.1", replica.port)
                proxy.reset()
                proxy.heal()

            load_through(common, backend, fail_over, "the primary failed over to its replica")
            assert counts("fo", "m", replica.url) == (0, 0)
        finally:
            with contextlib.suppress(redis.RedisError):
                admin.close()
            backend.close()


async def test_a_write_pause_shorter_than_the_bound_costs_latency_not_the_link(tmp_path: Path) -> None:
    """``CLIENT PAUSE … WRITE`` (what a failover's last step does to the old primary: redis.io/commands/client-pause —
    "EVAL/EVALSHA: Will block client for all scripts", "PUBLISH: Will block client") for 0.8 s, with a call bound of
    2 s: the slot given back during it reaches the waiter once the pause ends, the link is never marked down (no
    process falls back to its share for a pause it could wait out), and the limit holds."""
    from modelyard.router import ModelPool
    from tests.shared.redis_kit import short_lease
    from tests.shared.test_configs_disagree import _config

    with PrivateRedis(tmp_path) as server:
        settings = short_lease(url=server.url, prefix="pause", lease=3, refresh=0.1, timeout=2)
        holder, other = ModelPool(_config(1), shared=settings), ModelPool(_config(1), shared=settings)
        admin = redis.Redis(port=server.port, socket_timeout=5)
        try:
            for pool in (holder, other):
                await pool["m"].acquire(5)
                await pool["m"].release()
            await holder["m"].acquire(5)
            waiting = asyncio.ensure_future(other["m"].acquire(10))
            await asyncio.to_thread(until, lambda: admin.zcard("pause:{m}:queue") == 1, 10, 0.01)
            admin.execute_command("CLIENT", "PAUSE", 800, "WRITE")
            paused = time.monotonic()
            await holder["m"].release()  # its RELEASE waits out the pause on the server
            await asyncio.wait_for(waiting, 10)
            waited = time.monotonic() - paused
            assert 0.7 < waited < 4, f"granted {waited:.2f}s after the pause began (0.8 s)"
            assert admin.zcard("pause:{m}:holders") == 1
            assert all(p.link is not None and p.link.up and p.link.errors == 0 for p in (holder, other)), \
                [p.link.status().detail for p in (holder, other) if p.link is not None]
            await other["m"].release()
        finally:
            admin.close()
            await holder.aclose()
            await other.aclose()
