"""Processes whose configs give one backend different limits: host A's says ``max_concurrent: 2``, host B's (edited
first, or copied from another machine) says 4 — the same model on the same server, through one Redis and one prefix.

Each process passed its own limit to the scripts, so the larger one was handed out: with A alive the backend saw 4
requests at a server A's config says takes 2. It was said (a warning, ``/healthz``'s ``limits_differ``), not applied.
The safe rule is the smallest: a server someone configured for 2 may fall over at 3, while one configured for 4 that
gets 2 only waits. So each process registers its config's limit per model (``PREFIX:{model}:caps``, beside its
instance entry) and every script grants up to the smallest of a live process. LiteLLM's Redis-backed limits carry the
same hazard in their own shape — each instance enforces the ``rpm``/``max_parallel_requests`` of its own config
(BerriAI/litellm issues on parallel request limits across instances; Redis's counting-semaphore pattern in
``/work/shared/reference/scale-and-runtime-facts.md``: the limit is an argument of the acquire, so whoever acquires
decides it).

Real processes against the machine's Redis (a private prefix), the count taken at the backend.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from modelyard.router import Condition, ModelPool
from modelyard.router.shared import RedisState
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.redis_kit import short_lease, until


def _config(limit: int):  # a server on the network: its slots are shared by every host
    return make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": limit}},
                       {"a": {"primary": "m"}})


def test_a_host_whose_config_says_4_hands_out_only_the_2_another_live_host_says(redis_url: str, prefix: str) -> None:
    """Host A (``max_concurrent: 2``) loads the backend; hosts B and C (4) join with 4 clients each: at most 2 at the
    backend (it saw 4), every request of B and C served."""
    from tests.shared.test_loop_stall import Backend, _said, worker

    backend = Backend()
    common = {"url": redis_url, "prefix": prefix, "lease": 3.0, "refresh": 0.1, "timeout": 1.0, "port": backend.port}
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        # A loads for longer than B and C need (it is killed when they are done): alive throughout
        with worker({**common, "role": "loader", "limit": 2, "clients": 2, "hold": 0.05, "duration": 60}) as small:
            _said(small, "loading")
            until(lambda: client.zcard(f"{prefix}:instances") == 1, 15, 0.02)  # A is registered
            with worker({**common, "role": "loader", "limit": 4, "clients": 4, "hold": 0.05, "duration": 20,
                         "requests": 20}) as big_b, \
                    worker({**common, "role": "loader", "limit": 4, "clients": 4, "hold": 0.05, "duration": 20,
                            "requests": 20}) as big_c:
                for big in (big_b, big_c):
                    _said(big, "loading")
                lines = [_said(big, "served") for big in (big_b, big_c)]
                assert all(big.wait(15) == 0 for big in (big_b, big_c))
            assert small.poll() is None, "host A was alive throughout"
        print(f"2 beside 4: peak {backend.peak}, {[line.strip() for line in lines]}")
        assert sum(int(line.split()[1]) for line in lines) == 40, lines
        assert backend.peak <= 2, f"the backend saw {backend.peak} requests at once; host A's config says 2"
    finally:
        client.close()
        backend.close()


async def test_the_smallest_limit_is_said_and_applied_and_lifted_when_its_process_leaves(redis_url: str,
                                                                                          prefix: str) -> None:
    """In one process's words: which limit applies, why, and at which process the smaller one is; the share while
    Redis is out of reach divides the applied limit (2 of 2 instances: 1 each, not 4 / 2 at B beside A's 1); and once
    A leaves, B's own 4 again."""
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=2)
    small, big = ModelPool(_config(2), shared=settings), ModelPool(_config(4), shared=settings)
    try:
        a, b = small["m"], big["m"]
        assert isinstance(a, RedisState) and isinstance(b, RedisState)
        await a.acquire(5)
        await a.release()
        await b.acquire(5)
        await b.release()
        for _ in range(2):
            await b.acquire(2)
        with pytest.raises(QueueTimeout):
            await b.acquire(0.3)  # the third: granted before, with A alive
        link = big.link
        assert link is not None
        await _wait(lambda: b.applied_limit() == 2 and bool(link.disagreements))
        assert b._counted_share() == 1  # 2 instances: floor(2 / 2), not floor(4 / 2)
        detail = link.status().detail
        assert "limits differ: m: max_concurrent 4 here, 2 at" in detail, detail
        assert "every process hands out the smallest" in detail, detail
        await _wait(lambda: b.snapshot()[0] is Condition.BUSY)
        condition, said, _, _ = b.snapshot()
        assert "limit 2, not this config's 4" in said, said
        await small.aclose()  # A leaves: its entry goes, and its limit with it
        await b.acquire(5)
        await b.acquire(5)
        assert len(b.held) == 4
        await _wait(lambda: b.applied_limit() == 4 and not link.disagreements)
        for _ in range(4):
            await b.release()
    finally:
        await small.aclose()
        await big.aclose()


async def _wait(done, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while not done():
        assert time.monotonic() - t0 < timeout, "not within the hang-guard"
        await asyncio.sleep(0.02)


def _named(names: tuple[str, ...], limit: int = 2):
    return make_config({name: {"provider": "openai", "endpoint": "http://10.0.0.7:8000/v1", "model": "qwen2.5-7b",
                               "max_concurrent": limit} for name in names}, {"a": {"primary": names[0]}})


async def test_one_backend_under_two_model_names_is_said_counted_apart(redis_url: str, prefix: str) -> None:
    """A model's slots are keyed by its name: host A calls the server ``qwen``, host B ``qwen-7b``, and each name
    handed out its whole ``max_concurrent`` there, with nothing said — the namespaces check compared only other
    databases and prefixes. Now the same backend (endpoint and model id) under another name in the same namespace is
    said as the other splits are: ``counted apart`` in ``/healthz``'s detail and the log. A host whose config has both
    names (one author sized them together) is not a split."""
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=2)
    host_a, host_b = ModelPool(_named(("qwen",)), shared=settings), ModelPool(_named(("qwen-7b",)), shared=settings)
    both = ModelPool(_named(("qwen", "qwen-7b")), shared=settings)
    try:
        for pool in (host_a, host_b, both):
            name = next(iter(pool))
            await pool[name].acquire(5)
            await pool[name].release()
        a, b, c = host_a.link, host_b.link, both.link
        assert a is not None and b is not None and c is not None
        await _wait(lambda: any("as qwen-7b at" in s for s in a.splits) and bool(b.splits), 20)
        assert "one backend under two model names" in "; ".join(a.splits), a.splits
        assert "counted apart" in a.status().detail and "http://10.0.0.7:8000/v1 qwen2.5-7b" in a.status().detail
        assert not any(c.instance in s for s in [*a.splits, *b.splits]), "both names in one config: not a split"
        assert c.splits == [], c.splits
    finally:
        for pool in (host_a, host_b, both):
            await pool.aclose()


async def test_a_waiter_killed_9_at_the_head_gives_the_slot_back_within_its_own_lease(redis_url: str,
                                                                                      prefix: str) -> None:
    """A real process queued for the only slot is killed -9 at the head of the queue; the holder gives the slot back
    3 s later, before the dead waiter's lease (``2·lease/3`` = 4 s) has run out. The slot was handed to the dead token
    with a fresh window from the release — 3 + 4 s after the kill, and the live waiter behind it waited that long
    (plus its heartbeat). A granted waiter's slot now keeps the lease its waiter had: back within the window of the
    kill, as a dead holder's is."""
    from tests.shared.test_loop_stall import worker

    lease = 6.0  # window 4 s, heartbeat 2 s
    settings = short_lease(url=redis_url, prefix=prefix, lease=lease, refresh=0.1, timeout=1)
    holder, behind = ModelPool(_config(1), shared=settings), ModelPool(_config(1), shared=settings)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    queue = f"{prefix}:{{m}}:queue"
    try:
        await holder["m"].acquire(5)
        spec = {"url": redis_url, "prefix": prefix, "lease": lease, "refresh": 0.1, "timeout": 1.0, "limit": 1,
                "port": 9, "role": "waiter", "bound": 60, "hold": 0.1}
        with worker(spec) as doomed:
            await asyncio.to_thread(until, lambda: client.zcard(queue) == 1, 30, 0.01)
            waiting = asyncio.ensure_future(behind["m"].acquire(30))
            await asyncio.to_thread(until, lambda: client.zcard(queue) == 2, 10, 0.005)
            doomed.kill()
            killed = time.monotonic()
            doomed.wait(10)
        await asyncio.sleep(max(0.0, killed + 3.0 - time.monotonic()))
        assert client.zcard(queue) == 2, "the dead waiter is still queued: its lease has not run out"
        await holder["m"].release()
        await asyncio.wait_for(waiting, 15)
        came = time.monotonic() - killed
        print(f"the slot came to the live waiter {came:.1f}s after the kill (window 4 s, heartbeat 2 s)")
        assert came < 6.6, f"{came:.1f}s: the dead waiter held the slot a fresh window from the release"
        await behind["m"].release()
    finally:
        client.close()
        await holder.aclose()
        await behind.aclose()
