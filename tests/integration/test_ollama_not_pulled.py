"""A model not pulled on its Ollama: skipped with what to run, not cooled as if sick, asked again later.

The shapes, from Ollama's source and its users' reports: the native API's 404 ``{"error": "model \\"x\\" not found, try
pulling it first"}`` (server/routes.go; ``model 'x' not found, …`` in older servers: ollama/ollama#718,
ollama/ollama-python#149), and through its OpenAI-compatible /v1 the same words in OpenAI's error object under the
same 404 — ``{"error": {"message": "model \\"ollama\\" not found, try pulling it first", "type": "api_error", "param":
None, "code": None}}`` as netease-youdao/QAnything#555 quotes it, ``"type": "not_found_error"`` from servers whose
openai.NewError names the 404 (openai/openai.go).
"""

from __future__ import annotations

import asyncio

import pytest
from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.fakes.faults import Fault
from tests.fakes.ollama import model_entry
from tests.integration.test_ollama_queue_full_everywhere import _router
from tests.integration.test_ollama_queue_full_everywhere import backup as backup  # the fixture

import modelyard.providers.absence as absence
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "Say hello")])
WANTED = "qwen3.5:latest"


async def test_a_model_not_pulled_is_skipped_with_the_pull_to_run_and_asked_again_later(
        backup: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Native /api/chat: the first request asks Ollama once (no retry), falls back, and its row says
    `ollama pull qwen3.5:latest`; the model is not cooled (it was: 300 s at once, as for a sick model, and the row
    said only "try pulling it first"). The next request skips it without asking. Once the model is pulled, a request
    after the belief's time is the model's."""
    monkeypatch.setattr(absence, "ABSENT_FOR", 0.6)
    ollama = OllamaServer(models=["llama3.2:latest"]).start()
    router = _router({"provider": "ollama", "model": WANTED, "endpoint": ollama.url}, backup)
    try:
        routed = await router.complete("agent", REQ)
        assert routed.response.text == "backup answer"
        first = routed.record.attempts[0]
        assert (first.model, first.outcome, first.reason) == ("primary", "fallback", "model_missing"), first
        assert f"`ollama pull {WANTED}`" in (first.detail or ""), first.detail
        assert "llama3.2:latest" in (first.detail or "")  # what the server has, as before
        assert len(ollama.requests_to("/api/chat")) == 1  # not retried
        assert router.pool.local("primary").health.state == "available"  # not cooled as if sick

        again = await router.complete("agent", REQ)
        skipped = again.record.attempts[0]
        assert (skipped.model, skipped.outcome, skipped.reason) == ("primary", "skipped", "model_missing"), skipped
        assert f"`ollama pull {WANTED}`" in (skipped.detail or "")
        assert len(ollama.requests_to("/api/chat")) == 1  # not asked again meanwhile

        assert ollama.models is not None
        ollama.models.append(model_entry(WANTED))  # `ollama pull qwen3.5:latest`
        await asyncio.sleep(0.7)
        pulled = await router.complete("agent", REQ)
        assert pulled.record.model == "primary", [(a.model, a.reason) for a in pulled.record.attempts]
    finally:
        await router.aclose()
        ollama.stop()


@pytest.mark.parametrize("error_type", ["api_error", "not_found_error"])
async def test_a_model_not_pulled_through_ollama_v1_is_skipped_not_cooled(backup: OpenAIServer,
                                                                          error_type: str) -> None:
    """Through Ollama's /v1: the same words in OpenAI's error object. Said with the pull to run, not cooled, the
    next request skips it without a round trip."""
    ollama_v1 = OpenAIServer().start()
    ollama_v1.push(Fault.status(404, message=f'model "{WANTED}" not found, try pulling it first',
                                error_type=error_type))
    router = _router({"provider": "openai", "model": WANTED, "endpoint": ollama_v1.url}, backup)
    try:
        routed = await router.complete("agent", REQ)
        first = routed.record.attempts[0]
        assert (first.model, first.outcome, first.reason) == ("primary", "fallback", "model_missing"), first
        assert f"`ollama pull {WANTED}`" in (first.detail or ""), first.detail
        assert router.pool.local("primary").health.state == "available"
        again = await router.complete("agent", REQ)
        assert [(a.model, a.outcome) for a in again.record.attempts] == [("primary", "skipped"), ("backup", "ok")]
        assert len(ollama_v1.requests_to("/v1/chat/completions")) == 1
    finally:
        await router.aclose()
        ollama_v1.stop()


async def test_guard_another_404_still_cools_the_model(backup: OpenAIServer) -> None:
    """Guard (passes on the old code too): a 404 in other words (vLLM's "The model `x` does not exist.", a name
    typed wrong in the config) is still model_missing that cools the model, as before — only Ollama's "not pulled"
    changed."""
    vllm = OpenAIServer(models=["other"]).start()
    router = _router({"provider": "openai", "model": WANTED, "endpoint": vllm.url}, backup)
    try:
        routed = await router.complete("agent", REQ)
        assert routed.record.attempts[0].reason == "model_missing"
        assert router.pool.local("primary").health.state == "cooling_down"
    finally:
        await router.aclose()
        vllm.stop()


async def test_a_model_not_pulled_through_ollama_messages_is_skipped_not_cooled(
        backup: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through Ollama's Anthropic-compatible /v1/messages (Claude Code pointed at Ollama): middleware/anthropic.go's
    writeError wraps the same words as ``{"type": "error", "error": {"type": "not_found_error", "message": …}}``
    (anthropic/anthropic.go NewError names the 404). It was model_missing that cooled the model."""
    monkeypatch.setenv("PULL_ANTHROPIC_KEY", "test-key")
    ollama_messages = AnthropicServer().start()
    ollama_messages.push(Fault.status(404, message=f'model "{WANTED}" not found, try pulling it first',
                                      error_type="not_found_error"))
    router = _router({"provider": "anthropic", "model": WANTED, "endpoint": ollama_messages.url,
                      "api_key_env": "PULL_ANTHROPIC_KEY"}, backup)
    try:
        routed = await router.complete("agent", REQ)
        first = routed.record.attempts[0]
        assert (first.outcome, first.reason) == ("fallback", "model_missing") and "ollama pull" in (first.detail or "")
        assert router.pool.local("primary").health.state == "available"
        again = await router.complete("agent", REQ)
        assert again.record.attempts[0].outcome == "skipped" and len(ollama_messages.requests) == 1
    finally:
        await router.aclose()
        ollama_messages.stop()
