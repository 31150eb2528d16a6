"""The circuit breaker under concurrency: a failure from a request that started *before* the
breaker opened says nothing about the model now, just as a late success does not (health.py
already ignores stale successes). Found by the load profile: a few 429s or timeouts kept every
model of the chain cooling down for most of a 5-second run, because stale failures re-opened
the breaker (doubling its cooldown) while its half-open probe was succeeding.
"""

from __future__ import annotations

import asyncio

from tests.helpers import ScriptedProvider, make_config

from modelyard.router import Router
from modelyard.router.clock import run_simulated
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "x")])


def test_stale_failure_does_not_discard_a_successful_probe() -> None:
    run_simulated(_stale_failure_does_not_discard_a_successful_probe())  # exact timings, no real waiting


async def _stale_failure_does_not_discard_a_successful_probe() -> None:
    config = make_config(
        {"m": {"provider": "openai", "max_concurrent": 3}, "b": {"provider": "openai"}},
        {"agent": {"primary": "m", "fallbacks": ["b"]}},
        defaults={"timeouts": {"first_token": 5, "idle": 0.3, "total": 10}, "retries": {"attempts": 0},
                  "cooldown": {"failures": 1, "seconds": 0.1, "max_seconds": 5}})
    # A: starts while healthy, stalls mid-answer and fails (idle timeout) at ~0.3 s
    # B: fails at once -> the breaker opens for 0.1 s
    # C: at 0.15 s, the half-open probe; answers successfully at ~0.45 s
    m = ScriptedProvider("m", config.models["m"], ["idle:0.5", "error:server_error", "slow:0.3"])
    router = Router(config, providers={"m": m, "b": ScriptedProvider("b", config.models["b"])})
    a = asyncio.create_task(router.complete("agent", REQ))
    await asyncio.sleep(0.02)
    b = await router.complete("agent", REQ)
    assert b.record.model == "b" and router.pool.local("m").health.state == "cooling_down"
    await asyncio.sleep(0.15)
    c = await router.complete("agent", REQ)
    assert c.record.model == "m", "the probe answered"
    assert (await a).record.attempts[0].reason == "idle_timeout"
    assert router.pool.local("m").health.state == "available", "a successful probe closes the breaker"
    await router.aclose()
