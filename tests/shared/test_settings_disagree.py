"""Processes sharing a prefix whose ``state:`` settings differ — one host's config edited (a longer ``lease`` for a
laptop that sleeps, ``on_outage: fail`` for a gateway that must never guess), the others not.

The rules that keep the limit while one host is cut off from Redis alone tie each process's timings to the others':
the others must count it silent (and hold its outage share back) before its slots run out in Redis and before it
takes its whole share. Each process checked them against its own settings only — and counted the others silent from
their instance entry's score, which is their registration plus *their* lease: a host with a longer lease was never
counted silent by one with a shorter one, so its share was not held back while it used it (3 at a limit of 2), and a
host with a shorter lease was counted silent always. A gateway with ``on_outage: fail`` held back nobody's share, as if
every process used none. LiteLLM's Redis limiter shows the same shape from the other side: a pod that loses Redis
falls back to a per-pod limit of its own (BerriAI/litellm#35533), and the others cannot tell.

In-process pools, each with its own connection and instance entry (as separate processes have), against the machine's
Redis; the cut-off host reaches it through a loopback proxy that drops its packets (tests.shared.fault_proxy).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from modelyard.router import ModelPool
from modelyard.router.shared import RedisState
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.fault_proxy import FaultProxy
from tests.shared.redis_kit import REDIS_PORT, short_lease


def _config(limit: int = 2):  # a server on the network: its slots are shared by every host
    return make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": limit}},
                       {"a": {"primary": "m"}})


async def _wait(done, timeout: float = 15.0) -> None:
    t0 = time.monotonic()
    while not done():
        assert time.monotonic() - t0 < timeout, "not within the hang-guard"
        await asyncio.sleep(0.02)


async def _joined(*pools: ModelPool) -> None:
    for pool in pools:
        await pool["m"].acquire(5)
        await pool["m"].release()
    await _wait(lambda: all(p.link is not None and p.link.instances >= len(pools) for p in pools))


async def _cut_off_takes_its_share(cut: ModelPool, proxy: FaultProxy) -> RedisState:
    """``cut`` loses Redis (its packets dropped) and, once the others surely hold its share back, takes it."""
    state = cut["m"]
    assert isinstance(state, RedisState) and cut.link is not None
    link = cut.link
    proxy.partition()
    await _wait(lambda: not link.up)
    await _wait(lambda: link.held_back_in() == 0)
    await state.acquire(1)  # its share, floor(2 / 2), from this process alone
    return state


async def _only_the_rest(here: ModelPool, held: RedisState) -> None:
    """``here`` gets one slot of 2 — a second would be 3 at the backend, the cut-off host's share beside — and it
    counts that host silent; then both give their slots back."""
    await here["m"].acquire(2)
    with pytest.raises(QueueTimeout):
        await here["m"].acquire(1)
    assert here.link is not None and here.link.silent == 1
    await here["m"].release()
    await held.release()


async def test_a_host_with_a_longer_lease_cut_off_is_held_back_by_one_with_a_shorter(redis_url: str,
                                                                                    prefix: str) -> None:
    """Host A: lease 3 s; host B: lease 12 s (its instance entry 24 s, A's 10 s), cut off and using its share. A
    counted B silent only once B's entry's score (B's registration + 24 s) fell within A's own 10 s — 13 s later — and
    handed out the whole limit beside B's share meanwhile. Now every process registers when it registered: A holds B's
    share back within its silent bound."""
    with FaultProxy(REDIS_PORT) as proxy:
        a = ModelPool(_config(), shared=short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=0.5))
        b = ModelPool(_config(), shared=short_lease(url=proxy.url(), prefix=prefix, lease=12, refresh=0.1,
                                                    timeout=0.5))
        try:
            await _joined(a, b)
            assert a.link is not None
            cut = time.monotonic()
            held = await _cut_off_takes_its_share(b, proxy)
            await _only_the_rest(a, held)
            print(f"B cut off: its share taken {time.monotonic() - cut:.1f}s after the cut, A held it back")
        finally:
            proxy.heal()
            await a.aclose()
            await b.aclose()


async def test_a_host_with_a_shorter_lease_is_not_counted_silent_while_it_answers(redis_url: str, prefix: str) -> None:
    """The other way round: host A (lease 12 s) counted host B (lease 3 s) silent always — B's entry's score is its
    registration + 10 s, A looked for + 24 s — so A held B's share back with both up, and said "1 instance(s) silent"
    in /healthz. Now neither is counted silent, and the difference of settings is said."""
    a = ModelPool(_config(), shared=short_lease(url=redis_url, prefix=prefix, lease=12, refresh=0.1, timeout=0.5))
    b = ModelPool(_config(), shared=short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=0.5))
    try:
        await _joined(a, b)
        link = a.link
        assert link is not None
        await asyncio.sleep(1.0)  # ten ticks of each
        assert link.silent == 0, link.status().detail
        for _ in range(2):
            await a["m"].acquire(1)  # the whole limit: nobody's share held back
        await _wait(lambda: "state settings differ" in link.status().detail)
        detail = link.status().detail
        assert "lease 12s, refresh 0.1s, timeout 0.5s, on_outage share here, lease 3s" in detail, detail
        for _ in range(2):
            await a["m"].release()
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_gateway_with_on_outage_fail_holds_back_the_share_of_one_with_share(redis_url: str,
                                                                                   prefix: str) -> None:
    """Host A says ``on_outage: fail``, host B ``share`` (the default), limit 2. B is cut off and uses its share, 1;
    A, which uses none of its own when cut off, held back nobody's and handed out 2 beside it."""
    with FaultProxy(REDIS_PORT) as proxy:
        a = ModelPool(_config(), shared=short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=0.5,
                                                    on_outage="fail"))
        b = ModelPool(_config(), shared=short_lease(url=proxy.url(), prefix=prefix, lease=3, refresh=0.1,
                                                    timeout=0.5))
        try:
            await _joined(a, b)
            assert a.link is not None
            held = await _cut_off_takes_its_share(b, proxy)
            await _wait(lambda: a.link is not None and a.link.silent == 1)
            await _only_the_rest(a, held)
        finally:
            proxy.heal()
            await a.aclose()
            await b.aclose()
