"""Ollama's full queue on every endpoint modelyard uses: its /v1 (OpenAI-compatible chat and embeddings) and its native
/api/embed, not only /api/chat.

The shapes, from Ollama's source: server/sched.go's ErrMaxQueue, "server busy, please try again.  maximum pending
requests exceeded", which routes.go answers as a 503 ``{"error": "<words>"}`` on /api/chat, /api/generate and
/api/embed; through /v1, middleware/openai.go's ``writeError`` wraps the same words as
``{"error": {"message": "<words>", "type": "api_error", "param": null, "code": null}}`` (openai/openai.go ``NewError``:
"api_error" for any status but 400 and 404) under the same 503. The native /api/chat path already read it as
``queue_full`` (tests/integration/test_ollama_under_load.py); the others read it as ``overloaded``: asked again after a
backoff into the same full queue, and counted towards the breaker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.fakes.faults import Fault
from tests.fakes.ollama import QUEUE_FULL
from tests.helpers import make_config

from modelyard.router import Router
from modelyard.router.records import ChainExhausted, RequestRecord
from modelyard.types import ChatRequest, EmbedInput, Message

CHAT = ChatRequest(messages=[Message("user", "Say hello")])
EMBED = ChatRequest(messages=[Message("user", "a text")], embed=EmbedInput(("a text",)))


@pytest.fixture
def backup() -> Iterator[OpenAIServer]:
    server = OpenAIServer(models=["backup"], reply_text="backup answer").start()
    yield server
    server.stop()


def _router(primary: dict[str, Any], backup: OpenAIServer) -> Router:
    return Router(make_config(
        {"primary": primary, "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 5, "connect": 2, "first_token": 8, "idle": 8, "total": 20},
                  "retries": {"attempts": 2, "backoff": 0.05, "max_wait": 1.0},
                  "cooldown": {"failures": 2, "seconds": 30, "max_seconds": 60}},
    ))


async def _record(router: Router, request: ChatRequest) -> RequestRecord:
    try:
        return (await router.complete("agent", request)).record
    except ChainExhausted as exc:  # an embeddings chain does not mix another model's vectors in (router/embedding.py)
        return exc.record


@pytest.mark.parametrize("request_", [CHAT, EMBED], ids=["chat", "embeddings"])
async def test_ollama_v1_full_queue_is_queue_full(backup: OpenAIServer, request_: ChatRequest) -> None:
    """Through Ollama's /v1 (an ``openai`` model at Ollama's port): the 503 in OpenAI's error object is the full queue
    as on /api/chat — the next model at once, the primary asked once, not cooled. It was ``overloaded``: asked three
    times into the same full queue, and two such requests cooled a healthy model."""
    ollama_v1 = OpenAIServer(models=["qwen3.5:latest"]).start()
    ollama_v1.push(Fault.status(503, message=QUEUE_FULL, error_type="api_error"), times=6)
    router = _router({"provider": "openai", "model": "qwen3.5:latest", "endpoint": ollama_v1.url}, backup)
    try:
        for _ in range(2):
            before = len(ollama_v1.requests)
            record = await _record(router, request_)
            first = record.attempts[0]
            assert (first.model, first.outcome, first.reason) == ("primary", "fallback", "queue_full"), first
            assert "OLLAMA_MAX_QUEUE" in (first.detail or "")
            assert [a.model for a in record.attempts].count("primary") == 1
            assert len(ollama_v1.requests) == before + 1  # not asked again into the same full queue
        assert router.pool.local("primary").health.state == "available"
    finally:
        await router.aclose()
        ollama_v1.stop()


async def test_ollama_api_embed_full_queue_is_queue_full(backup: OpenAIServer) -> None:
    """Ollama's native /api/embed: the same 503 ``{"error": "<words>"}`` as /api/chat's (EmbedHandler schedules its
    runner as ChatHandler does: routes.go handleScheduleError). It was ``overloaded`` there."""
    ollama = OllamaServer(models=["nomic-embed-text:latest"]).start()
    ollama.push(Fault.status(503, message=QUEUE_FULL), times=6)
    router = _router({"provider": "ollama", "model": "nomic-embed-text:latest", "endpoint": ollama.url}, backup)
    try:
        for _ in range(2):
            before = len(ollama.requests_to("/api/embed"))
            record = await _record(router, EMBED)
            first = record.attempts[0]
            assert (first.model, first.outcome, first.reason) == ("primary", "fallback", "queue_full"), first
            assert len(ollama.requests_to("/api/embed")) == before + 1
        assert router.pool.local("primary").health.state == "available"
    finally:
        await router.aclose()
        ollama.stop()


async def test_ollama_anthropic_endpoint_full_queue_is_queue_full(backup: OpenAIServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Through Ollama's Anthropic-compatible /v1/messages (Claude Code pointed at Ollama): middleware/anthropic.go's
    writeError wraps the same words as ``{"type": "error", "error": {"type": "overloaded_error", "message":
    "<words>"}}`` under the 503 (anthropic/anthropic.go NewError: "overloaded_error" for a 503). It was
    ``overloaded``."""
    monkeypatch.setenv("QUEUE_ANTHROPIC_KEY", "test-key")
    ollama_messages = AnthropicServer().start()
    ollama_messages.push(Fault.status(503, message=QUEUE_FULL, error_type="overloaded_error"), times=6)
    router = _router({"provider": "anthropic", "model": "qwen3.5:latest", "endpoint": ollama_messages.url,
                      "api_key_env": "QUEUE_ANTHROPIC_KEY"}, backup)
    try:
        record = await _record(router, CHAT)
        first = record.attempts[0]
        assert (first.model, first.outcome, first.reason) == ("primary", "fallback", "queue_full"), first
        assert len(ollama_messages.requests) == 1
        assert router.pool.local("primary").health.state == "available"
    finally:
        await router.aclose()
        ollama_messages.stop()
