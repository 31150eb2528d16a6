"""Randomised fault mixes against the router (hypothesis): the invariants users rely on.

- never more than ``max_concurrent`` in flight on any model;
- every slot released, even after cancellations and client disconnects;
- every request logged exactly once;
- no request waits longer than the sum of its chain's bounds.

Run against both homes of per-model state: in this process, and shared through the real Redis
(a fresh key prefix per example; no slot or waiter may be left there either).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import ScriptedProvider, make_config

from modelyard.config.schema import BELOW_LEASE_RULE, StateConfig
from modelyard.router import ChainExhausted, ModelPool, RequestRecord, Router, StreamInterrupted
from modelyard.types import ChatRequest, Message

BEHAVIOURS = st.sampled_from([
    "ok", "ok", "ok", "hang", "slow:0.02", "slow:0.08", "idle:0.2", "die_after_first",
    "error:server_error", "error:overloaded", "error:rate_limited", "error:connect_error",
    "error:malformed_response", "error:auth_error", "error:bad_request",
])
LEASE = 3
TIMEOUTS = {"queue": 0.05, "connect": 0.05, "first_token": 0.06, "idle": 0.05, "total": 0.5}


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: in-process state; else a key prefix on the real Redis (deleted afterwards)."""
    if request.param == "local":
        yield None
        return
    from tests.shared.redis_kit import delete_prefix, new_prefix, require_redis

    require_redis()
    base = new_prefix()
    yield base
    delete_prefix(base)


_examples = itertools.count()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    scripts=st.lists(st.lists(BEHAVIOURS, min_size=0, max_size=30), min_size=3, max_size=3),
    limits=st.lists(st.integers(min_value=1, max_value=3), min_size=3, max_size=3),
    n_requests=st.integers(min_value=1, max_value=25),
    streaming=st.lists(st.booleans(), min_size=25, max_size=25),
    cancel_after=st.lists(st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.1)), min_size=25, max_size=25),
    retries=st.integers(min_value=0, max_value=1),
)
def test_invariants_hold_under_random_faults(backend, scripts, limits, n_requests, streaming, cancel_after,
                                             retries) -> None:
    asyncio.run(_scenario(scripts, limits, n_requests, streaming, cancel_after, retries,
                          None if backend is None else f"{backend}-{next(_examples)}"))


async def _scenario(scripts, limits, n_requests, streaming, cancel_after, retries, prefix) -> None:
    names = ["m0", "m1", "m2"]
    config = make_config(
        {n: {"provider": "openai", "max_concurrent": limits[i]} for i, n in enumerate(names)},
        {"agent": {"primary": "m0", "fallbacks": ["m1", "m2"]}},
        defaults={"timeouts": TIMEOUTS, "retries": {"attempts": retries, "backoff": 0.01, "max_wait": 0.02},
                  "cooldown": {"failures": 2, "seconds": 0.05, "max_seconds": 0.2}},
    )
    providers = {n: ScriptedProvider(n, config.models[n], list(scripts[i])) for i, n in enumerate(names)}
    logged: list[RequestRecord] = []
    shared = None if prefix is None else StateConfig.model_validate(
        {"url": _redis_url(), "prefix": prefix, "lease": LEASE, "refresh": 0.1}, context={BELOW_LEASE_RULE: True})
    pool = ModelPool(config, providers=providers, shared=shared)
    router = Router(config, pool=pool, sink=logged.append)
    # bound: the total deadline, plus one retry pause and scheduling slack
    bound = TIMEOUTS["total"] + 0.02 + 0.25

    async def one(i: int) -> None:
        req = ChatRequest(messages=[Message("user", f"request {i}")])
        start = time.perf_counter()
        try:
            if streaming[i]:
                stream = router.stream("agent", req)
                try:
                    async for _ in stream:
                        pass
                finally:
                    await stream.aclose()
            else:
                await router.complete("agent", req)
        except (ChainExhausted, StreamInterrupted):
            pass
        assert time.perf_counter() - start <= bound

    tasks = [asyncio.create_task(one(i)) for i in range(n_requests)]
    cancellers = []
    for i, t in enumerate(tasks):
        if cancel_after[i] is not None:
            cancellers.append(asyncio.get_running_loop().call_later(cancel_after[i], t.cancel))
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in cancellers:
        c.cancel()
    await asyncio.sleep(0)

    for i, n in enumerate(names):
        assert providers[n].max_in_flight <= limits[i]
        assert providers[n].in_flight == 0, f"upstream call left running on {n}"
        if prefix is None:
            assert router.pool.local(n).slots.peak <= limits[i]
            assert router.pool.local(n).slots.in_flight == 0, f"slot leaked on {n}"
            assert router.pool.local(n).slots.waiting == 0
    if prefix is not None:
        from tests.shared.redis_kit import counts

        link = pool.link
        assert link is not None
        # On a loaded machine a Redis call can overrun ``state.timeout``: the link then goes down and
        # requests use this process's share, as documented. That is allowed here; what is not allowed
        # is staying down once Redis answers, or leaving an entry behind after the lease.
        outage = link.errors > 0
        for _ in range(100):
            if link.up:
                break
            await asyncio.sleep(0.1)
        assert link.up, "the link must come back once Redis answers"
        while link._background:  # cancelled waiters' entries are taken out in the background
            await asyncio.wait(list(link._background), timeout=1)
        for n in names:
            assert not pool[n].held and not pool[n].waiting, f"slot or waiter leaked on {n} (this process)"
            left = counts(prefix, n)
            if outage:  # an entry written just before the outage is reclaimed by its lease, not at once
                deadline = time.monotonic() + LEASE + 2
                while left != (0, 0) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    left = counts(prefix, n)
            assert left == (0, 0), f"slot or waiter leaked on {n} (in Redis)"
        await pool.aclose()
    ids = [r.id for r in logged]
    assert len(ids) == len(set(ids)) == n_requests, "every request logged exactly once"
    for r in logged:
        assert r.outcome in ("ok", "fallback", "failed", "interrupted", "cancelled")
        if r.outcome in ("ok", "fallback"):
            assert r.model is not None and r.attempts[-1].outcome == "ok"


def _redis_url() -> str:
    from tests.shared.redis_kit import REDIS_URL

    return REDIS_URL
