"""What a real Redis does to its clients besides dying or hanging (helper-34's hunt, from Redis's own command
documentation): an operator's CLIENT KILL, a SCRIPT FLUSH (the next EVALSHA answers NOSCRIPT), CLIENT PAUSE (a
slow store), a READONLY reply (the server became a replica after a failover) and an OOM reply (maxmemory).
Each on a private redis-server: a request never waits past ``state.timeout`` for the store, the limit falls back
to this process's share while the store refuses, and the link comes back by itself when the store does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from modelyard.errors import Reason
from modelyard.router.shared import RedisState
from modelyard.router.slots import QueueTimeout
from tests.shared.redis_kit import PrivateRedis, SilentProxy, at_maxmemory, free_port, store_calls
from tests.shared.test_redis_state import Pools, _joined, pools  # noqa: F401 - fixture

#: the store's call bound: a first call (connect, load the scripts) on a loaded 2-core machine can take 0.3 s
TIMEOUT = 1.0


async def _until(predicate, timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "not within the time bound"
        await asyncio.sleep(0.02)


async def _round_trip(state: RedisState) -> float:
    t0 = time.monotonic()
    await state.acquire(3 * TIMEOUT)  # a queue bound past the store's: an overrun falls back, it is no queue timeout
    await state.release()
    return time.monotonic() - t0


def _queued(admin: redis.Redis, state: RedisState) -> Callable[[], bool]:
    """A waiter of ``state``'s model is in the store's queue (not merely sent)."""
    return lambda: admin.zcard(state._slots[1]) > 0


async def _connected(pools: Pools, server: PrivateRedis) -> RedisState:  # noqa: F811 - fixture type
    """One process's state of model "m" (two slots) on ``server``, with one round trip made."""
    (pool,) = pools(1, limit=2, url=server.url, timeout=TIMEOUT, refresh=0.1)
    state = pool["m"]
    assert isinstance(state, RedisState)
    await _joined(pool)
    await _until(lambda: state.link.instances > 0)  # the first heartbeat counted it: it knows its share
    return state


async def test_client_kill_of_every_connection_costs_no_outage(pools: Pools,  # noqa: F811 - fixture
                                                                     tmp_path: Path) -> None:
    """CLIENT KILL TYPE normal and TYPE pubsub (an operator, a proxy's idle reaper): the pooled connections and
    the grant listener are gone; the next calls reconnect without taking the link down."""
    with PrivateRedis(tmp_path) as server:
        state = await _connected(pools, server)
        admin = redis.Redis(port=server.port)
        admin.client_kill_filter(_type="pubsub")
        admin.client_kill_filter(_type="normal", skipme=True)
        errors = state.link.errors
        assert await _round_trip(state) < TIMEOUT
        assert state.link.up and state.link.errors == errors
        await _until(lambda: admin.pubsub_numsub(state.link.channel)[0][1] == 1)  # the listener is back


async def test_a_waiter_whose_grant_listener_is_killed_still_gets_the_slot(pools: Pools,  # noqa: F811 - fixture
                                                                          tmp_path: Path) -> None:
    """CLIENT KILL while a request waits for a slot: the grant is published while this process's listener is
    gone (or reconnecting). The waiter must still get the slot when it frees, not wait out its queue bound."""
    with PrivateRedis(tmp_path) as server:
        # a heartbeat every 10 s (lease 30): within the waiter's bound only the listener (its resubscribe sync, or
        # the grant it hears) hands the slot over — asserted by that bound, not by how soon a loaded loop got to it
        holder, waiter = pools(2, limit=1, url=server.url, timeout=TIMEOUT, refresh=0.1, lease=30)
        for pool in (holder, waiter):
            await _joined(pool)
        await holder["m"].acquire(1)
        waiting = asyncio.ensure_future(waiter["m"].acquire(5))
        admin = redis.Redis(port=server.port)
        await _until(_queued(admin, waiter["m"]))
        admin.client_kill_filter(_type="pubsub")
        admin.client_kill_filter(_type="normal", skipme=True)
        await holder["m"].release()
        await asyncio.wait_for(waiting, 10)  # a QueueTimeout here: the grant waited for the heartbeat
        await waiter["m"].release()


async def test_script_flush_is_reloaded_not_an_outage(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """SCRIPT FLUSH (or a failover to a replica that never saw the scripts): EVALSHA answers NOSCRIPT."""
    with PrivateRedis(tmp_path) as server:
        state = await _connected(pools, server)
        redis.Redis(port=server.port).script_flush()
        errors = state.link.errors
        assert await _round_trip(state) < TIMEOUT
        await asyncio.sleep(0.3)  # heartbeats and views through the pipeline too
        assert state.link.up and state.link.errors == errors


async def test_client_pause_is_bounded_by_the_timeout(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """CLIENT PAUSE (an operator's failover step): every command waits on the server side for the pause."""
    with PrivateRedis(tmp_path) as server:
        state = await _connected(pools, server)
        # paused far longer than the two round trips take on a loaded machine: the second one finds it still down
        redis.Redis(port=server.port).execute_command("CLIENT", "PAUSE", 6000, "ALL")
        made = store_calls(state)
        assert await _round_trip(state) < 5 * TIMEOUT  # the store's bound, then this process's share (a hang-guard)
        assert made and not state.link.up and state.link.down_reason == f"no answer within {TIMEOUT:g}s", made
        made.clear()
        await _round_trip(state)
        assert made == [], "the next ones do not wait for it at all"
        await _until(lambda: state.link.up, 30)  # back by itself once the pause ends
        assert await _round_trip(state) < TIMEOUT


async def test_a_readonly_reply_falls_back_to_the_share_and_recovers(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """READONLY (the server is now a replica: REPLICAOF after a failover) is an error reply, not a dead
    connection: the same bounded fallback to this process's share, and recovery once writes are taken again."""
    with PrivateRedis(tmp_path) as server:
        state = await _connected(pools, server)
        admin = redis.Redis(port=server.port)
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")
        try:
            await _until(lambda: not state.link.up)  # the heartbeat finds it, or the next request does
            assert "read only" in state.link.down_reason, state.link.down_reason
            made = store_calls(state)
            await _round_trip(state)
            assert made == [], "this process's share, at once: no call to the store"
        finally:
            admin.execute_command("REPLICAOF", "NO", "ONE")
        await _until(lambda: state.link.up)
        assert await _round_trip(state) < TIMEOUT


async def test_maxmemory_reached_still_serves(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """OOM: Redis refuses a write command only while a script has not written yet, and every script here
    starts by purging expired entries (a write that frees memory): the slots keep working under maxmemory
    (Redis goes past it by a few bytes) rather than taking the link down. A plain write is refused."""
    with PrivateRedis(tmp_path) as server:
        state = await _connected(pools, server)
        with at_maxmemory(server.port):
            errors = state.link.errors
            for _ in range(3):
                assert await _round_trip(state) < TIMEOUT
            await asyncio.sleep(0.3)  # heartbeats too
            assert state.link.up and state.link.errors == errors


async def test_a_grant_listener_on_a_connection_gone_silent_listens_again(pools: Pools,  # noqa: F811 - fixture
                                                                           tmp_path: Path) -> None:
    """The grant listener's connection only ever reads, and may be idle for hours: a NAT or firewall that forgot
    the flow (or a server moved away) leaves it open and silent — no error, no RST, so a read without a bound
    waits forever. Grants then reach this process only with its heartbeat (lease / 3: 10 s here), and a waiter
    with a shorter queue bound times out beside a free slot. The listener must find out and subscribe again."""
    with PrivateRedis(tmp_path) as server:
        proxy = await SilentProxy(server.port).start()
        try:
            holder, = pools(1, limit=1, url=server.url, timeout=TIMEOUT, refresh=0.1, lease=30)
            waiter, = pools(1, limit=1, url=proxy.url, timeout=TIMEOUT, refresh=0.1, lease=30)
            for pool in (holder, waiter):
                await _joined(pool)
            admin = redis.Redis(port=server.port)
            await _until(lambda: admin.pubsub_numsub(waiter["m"].link.channel)[0][1] == 2)
            assert proxy.silence(subscribers_only=True) == 1
            errors = waiter["m"].link.errors
            # the waiter's listener found the silence out and subscribed again on a new connection (the silenced one
            # stays subscribed upstream): 3 subscribers (idle ~1.1 s: a ping unanswered within the timeout)
            await _until(lambda: admin.pubsub_numsub(waiter["m"].link.channel)[0][1] == 3, 10 * TIMEOUT)
            await holder["m"].acquire(1)
            waiting = asyncio.ensure_future(waiter["m"].acquire(5))
            await _until(_queued(admin, waiter["m"]))
            await holder["m"].release()
            # a QueueTimeout here: the grant waited for the heartbeat (10 s away: lease 30)
            await asyncio.wait_for(waiting, 10)
            await waiter["m"].release()
            assert waiter["m"].link.up and waiter["m"].link.errors == errors  # the calls never noticed anything
        finally:
            await proxy.aclose()


async def test_a_redis_cluster_node_is_named_as_such(pools: Pools, tmp_path: Path) -> None:  # noqa: F811
    """``state:`` pointed at a Redis Cluster (a managed Redis with cluster mode on): its nodes answer CROSSSLOT or
    MOVED, which read as a bare 'ClusterCrossSlotError: Keys in request don't hash to the same slot' in /healthz
    and in every request's error. The reason now says what it means and what to use instead."""
    bus = str(free_port())  # not port + 10000, which may be past 65535 or taken
    with PrivateRedis(tmp_path, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                      "--cluster-port", bus) as server:
        admin = redis.Redis(port=server.port)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        await _until(lambda: b"cluster_state:ok" in admin.execute_command("CLUSTER", "INFO"))
        (pool,) = pools(1, limit=2, url=server.url, timeout=TIMEOUT, refresh=0.1)
        state = pool["m"]
        assert isinstance(state, RedisState)
        state.link.ensure_started()
        await _until(lambda: not state.link.up)  # the heartbeat's first call finds it out
        with pytest.raises(QueueTimeout) as refused:
            await state.acquire(3 * TIMEOUT)  # never counted among the instances: no share of its own either
        assert refused.value.reason is Reason.STATE_UNREACHABLE
        assert "Redis Cluster is not supported" in str(refused.value), str(refused.value)
        assert "Redis Cluster is not supported" in state.link.status().detail
