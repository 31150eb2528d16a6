"""``max_queue``: a busy model with that many requests already waiting sends the next one on at once.

Without it a burst waits up to ``timeouts.queue`` (30 s by default) on a busy local model before the
chain moves on; with it the overflow is answered by the next model while the queue stays short.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.helpers import ScriptedProvider, make_config

from modelyard.config.loader import parse_config
from modelyard.errors import ConfigError
from modelyard.router import ModelPool, RequestRecord, Router
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "hi")])
SLOW = {"queue": 5, "first_token": 5, "idle": 5, "total": 20}


def build(max_queue: int | None, *, max_concurrent: int = 1,
          hold: float = 0.3) -> tuple[Router, ScriptedProvider, list[RequestRecord]]:
    config = make_config({"a": {"provider": "openai", "max_concurrent": max_concurrent, "max_queue": max_queue},
                          "b": {"provider": "openai", "max_concurrent": 8}},
                         {"agent": {"primary": "a", "fallbacks": ["b"]}}, defaults={"timeouts": SLOW})
    a = ScriptedProvider("a", config.models["a"], [], text="from a", default=f"slow:{hold}")
    b = ScriptedProvider("b", config.models["b"], [], text="from b")
    records: list[RequestRecord] = []
    router = Router(config, pool=ModelPool(config, providers={"a": a, "b": b}), sink=records.append)
    return router, a, records


async def test_max_queue_zero_moves_on_at_once_instead_of_waiting_the_queue_bound() -> None:
    router, _, _ = build(0, hold=3.0)  # a's slot is held 3 s: far from a move on at once, even on a loaded machine
    first = asyncio.create_task(router.complete("agent", REQ))
    await asyncio.sleep(0.02)
    start = time.perf_counter()
    second = await router.complete("agent", REQ)
    assert time.perf_counter() - start < 1.0  # not the 3 s until a's slot frees, nor the 5 s bound
    attempt = second.record.attempts[0]
    assert second.record.model == "b"
    assert (attempt.model, attempt.outcome, attempt.reason) == ("a", "fallback", "queue_full")
    assert "max_queue 0" in attempt.detail and attempt.queue_wait_ms == 0
    assert (await first).record.model == "a"
    assert router.pool.local("a").health.state == "available"  # busy is not sick


async def test_a_burst_keeps_max_queue_waiting_and_sends_the_rest_on() -> None:
    router, a, records = build(2, max_concurrent=1)
    results = await asyncio.gather(*(router.complete("agent", REQ) for _ in range(8)))
    by = [r.record.model for r in results]
    assert by.count("a") == 3 and by.count("b") == 5  # one in the slot, two waiting, five sent on
    assert a.max_in_flight == 1
    assert all(r.record.attempts[0].reason == "queue_full" for r in results if r.record.model == "b")
    assert len(records) == 8 and router.pool.local("a").slots.in_flight == 0


async def test_a_free_slot_is_always_taken_and_unset_means_no_count_bound() -> None:
    router, _, _ = build(0, max_concurrent=2)
    results = await asyncio.gather(*(router.complete("agent", REQ) for _ in range(2)))
    assert [r.record.model for r in results] == ["a", "a"]
    unbounded, _, _ = build(None)
    results = await asyncio.gather(*(unbounded.complete("agent", REQ) for _ in range(3)))
    assert [r.record.model for r in results] == ["a", "a", "a"]  # each waited its turn within timeouts.queue


def test_a_negative_max_queue_names_the_key() -> None:
    text = "models:\n  a:\n    provider: openai\n    max_queue: -1\nagents:\n  chat:\n    primary: a\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    assert str(info.value).startswith("c.yaml:4: models.a.max_queue:")
