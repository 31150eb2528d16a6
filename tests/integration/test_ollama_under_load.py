"""modelyard against an Ollama that acts as the real one does under load: its pending queue full (OLLAMA_MAX_QUEUE),
and a prompt past the context it runs the model in (num_ctx) cut in silence. The fake's behaviours are
tests/fakes/ollama.py's ``max_queue`` / ``num_parallel`` and ``context_length``, each citing its source there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from tests.fakes import OllamaServer, OpenAIServer
from tests.helpers import make_config

from modelyard.router import Router
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "Say hello")])


@pytest.fixture
def backup() -> Iterator[OpenAIServer]:
    server = OpenAIServer(models=["backup"], reply_text="backup answer").start()
    yield server
    server.stop()


def _router(ollama: OllamaServer, backup: OpenAIServer, **primary: Any) -> Router:
    return Router(make_config(
        {"primary": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": ollama.url, **primary},
         "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 5, "connect": 2, "first_token": 8, "idle": 8, "total": 20},
                  "retries": {"attempts": 2, "backoff": 0.05, "max_wait": 1.0},
                  "cooldown": {"failures": 2, "seconds": 30, "max_seconds": 60}},
    ))


async def test_ollama_queue_full_moves_on_at_once_and_does_not_cool_the_model(backup: OpenAIServer) -> None:
    """OLLAMA_NUM_PARALLEL=1, OLLAMA_MAX_QUEUE=0 behind a model configured max_concurrent: 2 (more sent than the server
    runs): the second request meets Ollama's full queue, a 503 "server busy, please try again.  maximum pending
    requests exceeded" (ollama/ollama server/sched.go ErrMaxQueue, answered as http.StatusServiceUnavailable by
    routes.go). It says the server is busy, not that the model is sick — the scale facts' "treat as queue full, move
    on". It was ``overloaded``: asked again after a backoff into the same full queue, and counted towards the breaker,
    so two such refusals under a burst cooled a healthy model for 30 s and sent every request to the fallback."""
    ollama = OllamaServer(models=["qwen3.5:latest"], chunk_interval=0.3, num_parallel=1, max_queue=0).start()
    router = _router(ollama, backup, max_concurrent=2)
    try:
        hog = asyncio.create_task(router.complete("agent", REQ))
        for _ in range(200):
            if ollama.in_flight:
                break
            await asyncio.sleep(0.01)
        assert ollama.in_flight == 1
        for _ in range(2):
            routed = await router.complete("agent", REQ)
            assert routed.response.text == "backup answer"
            rows = [(a.model, a.outcome, a.reason) for a in routed.record.attempts]
            assert rows == [("primary", "fallback", "queue_full"), ("backup", "ok", None)], rows
            assert "OLLAMA_MAX_QUEUE" in routed.record.attempts[0].detail
        assert router.pool.local("primary").health.state == "available"
        first = await hog
        assert first.record.model == "primary" and first.response.text == "Hello from the fake server."
    finally:
        await router.aclose()
        ollama.stop()


async def test_a_prompt_ollama_cut_at_num_ctx_is_said_in_the_log(backup: OpenAIServer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """No ``context`` configured, so no ``num_ctx`` sent: Ollama runs the model in its default window (4096 here) and
    cuts a longer prompt from the front in silence — a 200 whose ``prompt_eval_count`` is num_ctx / 2 + 2
    (ollama/ollama#17427; #17889 "200 with prompt_eval_count 2050"; #3839 "the only tell is prompt_eval_count";
    little-coder#128). modelyard logged the answer as a healthy one of 2,050 prompt tokens and said nothing: the
    model answered a question it never saw. Now the log says the prompt was cut and what to set."""
    ollama = OllamaServer(models=["qwen3.5:latest"]).start()
    router = _router(ollama, backup)
    try:
        long = ChatRequest(messages=[Message("user", "lorem " * 6000 + "what was the first word?")])
        with caplog.at_level(logging.WARNING, logger="modelyard.providers.ollama"):
            routed = await router.complete("agent", long)
            again = await router.complete("agent", long)
        assert routed.record.model == "primary" and routed.record.tokens_in == 4096 // 2 + 2
        assert "options" not in ollama.requests[0].json  # nothing configured: nothing sent, as before
        said = [r.getMessage() for r in caplog.records if "cut" in r.getMessage()]
        assert len(said) == 1, said  # once per model, not on every request of an agent's loop
        assert "2050" in said[0] and "models.primary.context" in said[0]
        assert again.record.model == "primary"
        short = await router.complete("agent", REQ)
        assert short.record.model == "primary"
    finally:
        await router.aclose()
        ollama.stop()


async def test_guard_a_prompt_within_num_ctx_says_nothing(backup: OpenAIServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Guard (passes on the old code too): a long prompt that fits the configured context, sent as num_ctx, is read
    whole (prompt_eval_count includes cached tokens since ollama/ollama#16428) — no warning."""
    ollama = OllamaServer(models=["qwen3.5:latest"]).start()
    router = _router(ollama, backup, context=32768)
    try:
        long = ChatRequest(messages=[Message("user", "lorem " * 6000)])
        with caplog.at_level(logging.WARNING, logger="modelyard.providers.ollama"):
            routed = await router.complete("agent", long)
        assert routed.record.model == "primary" and routed.record.tokens_in == 6000
        assert ollama.requests[0].json["options"]["num_ctx"] == 32768
        assert not [r for r in caplog.records if "cut" in r.getMessage()]
    finally:
        await router.aclose()
        ollama.stop()


async def _until(check: Any, seconds: float = 8.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_cold_load_past_first_token_is_finished_behind_the_request_and_not_cooled(
        backup: OpenAIServer) -> None:
    """The model was unloaded (keep_alive's 5 minutes, or OLLAMA_MAX_LOADED_MODELS evicting it: docs/faq.md), and
    loading it takes longer than ``timeouts.first_token`` (45-52 s a load in home-assistant/core#135952). The request
    falls back — but Ollama aborts a load whose client hung up ("client connection closed before server finished
    loading, aborting load": ollama/ollama#7408, rsynnot/magic-lists-for-navidrome#34), so every later request began
    the load again and timed out again, and two of them cooled a healthy model: it was never used until someone
    preloaded it by hand. Now the timeout asks /api/ps, finds the model not loaded, finishes the load behind the
    request and does not cool the model: the next request is the model's. (Two slots: the load holds one, and the
    second request, beside it, times out as well.)"""
    ollama = OllamaServer(models=["qwen3.5:latest"], load_seconds=1.5).start()
    router = _router(ollama, backup, timeouts={"first_token": 0.5}, max_concurrent=2)
    try:
        for _ in range(2):
            routed = await router.complete("agent", REQ)
            assert routed.record.model == "backup"
            first = routed.record.attempts[0]
            assert (first.model, first.reason) == ("primary", "first_token_timeout")
            assert "not loaded" in first.detail or "still loading" in first.detail, first.detail
        assert router.pool.local("primary").health.state == "available"
        assert await _until(lambda: ollama.loaded_models == ["qwen3.5:latest"])
        routed = await router.complete("agent", REQ)
        assert routed.record.model == "primary" and routed.response.text == "Hello from the fake server."
    finally:
        await router.aclose()
        ollama.stop()


async def test_guard_a_loaded_model_silent_past_first_token_still_cools(backup: OpenAIServer) -> None:
    """Guard (passes on the old code too): the excuse is the load's only. A model /api/ps lists as loaded that sends
    nothing within first_token is sick as before — two such timeouts cool it."""
    from tests.fakes import Fault

    ollama = OllamaServer(models=["qwen3.5:latest"], loaded=["qwen3.5:latest"]).start()
    ollama.push(Fault.hang_before_headers(), times=2)
    router = _router(ollama, backup, timeouts={"first_token": 0.5})
    try:
        for _ in range(2):
            routed = await router.complete("agent", REQ)
            assert routed.record.attempts[0].reason == "first_token_timeout"
            assert "not loaded" not in routed.record.attempts[0].detail
        assert router.pool.local("primary").health.state == "cooling_down"
    finally:
        await router.aclose()
        ollama.stop()


async def test_the_load_behind_a_timed_out_request_takes_one_of_the_models_slots(backup: OpenAIServer) -> None:
    """The load finished behind a request that timed out during a cold start is a request at Ollama like any other
    (a chat with no messages: docs/api.md "Load a model"). It went out beside the model's slots: with
    ``max_concurrent: 1``, the next request was sent while it loaded, and Ollama had two of the model's requests at
    once — one per process that timed out, on a server sized for one. Now the load holds the slot: the next request
    waits for it (within ``timeouts.queue``) and is answered by the loaded model."""
    ollama = OllamaServer(models=["qwen3.5:latest"], load_seconds=1.5).start()
    router = _router(ollama, backup, timeouts={"first_token": 0.5}, max_concurrent=1)
    try:
        routed = await router.complete("agent", REQ)
        assert (routed.record.model, routed.record.attempts[0].reason) == ("backup", "first_token_timeout")
        routed = await router.complete("agent", REQ)
        assert routed.record.model == "primary", routed.record.attempts
        assert routed.record.queue_wait_ms > 500  # it waited for the load's slot, not beside it
        assert ollama.max_in_flight_by_model == {"qwen3.5:latest": 1}
    finally:
        await router.aclose()
        ollama.stop()


async def test_ollama_running_fewer_at_once_than_max_concurrent_is_warned_once_naming_the_key(
        backup: OpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    """OLLAMA_NUM_PARALLEL below ``max_concurrent``: Ollama runs that many of the model's requests at once and keeps
    the rest in its own queue (docs/faq.md "How does Ollama handle concurrent requests?"; llm/server.go's
    Completion waits on a semaphore of numParallel), so modelyard counted a queued request as running and its
    first-token bound ran out there — fallbacks under load that looked like a sick model. Ollama does not say the
    number, but an answer's ``total_duration`` counts from the handler's start (server/routes.go checkpointStart)
    while ``load_duration``, ``prompt_eval_duration`` and ``eval_duration`` leave the wait out: the rest is the
    queue. Three at once on ``max_concurrent: 3`` against a server running one: a warning, once, naming the key."""
    ollama = OllamaServer(models=["qwen3.5:latest"], loaded=["qwen3.5:latest"], chunk_interval=0.25,
                          num_parallel=1).start()
    router = _router(ollama, backup, max_concurrent=3)
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard"):
            for _ in range(2):
                routed = await asyncio.gather(*(router.complete("agent", REQ) for _ in range(3)))
                assert [r.record.model for r in routed] == ["primary"] * 3
        assert ollama.max_in_flight_by_model == {"qwen3.5:latest": 1}  # it ran one at a time, the others queued
        said = [r.getMessage() for r in caplog.records if "own queue" in r.getMessage()]
        assert len(said) == 1, said
        assert "models.primary.max_concurrent (3)" in said[0] and "at most 1 at once" in said[0], said[0]
    finally:
        await router.aclose()
        ollama.stop()


async def test_guard_ollama_running_as_many_as_max_concurrent_says_nothing(
        backup: OpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    """Guard (passes on the old code too): OLLAMA_NUM_PARALLEL at max_concurrent queues nothing, and nothing is
    said."""
    ollama = OllamaServer(models=["qwen3.5:latest"], loaded=["qwen3.5:latest"], chunk_interval=0.25,
                          num_parallel=3).start()
    router = _router(ollama, backup, max_concurrent=3)
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard"):
            routed = await asyncio.gather(*(router.complete("agent", REQ) for _ in range(3)))
        assert [r.record.model for r in routed] == ["primary"] * 3
        assert not [r for r in caplog.records if "own queue" in r.getMessage()]
    finally:
        await router.aclose()
        ollama.stop()
