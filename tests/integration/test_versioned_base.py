"""An OpenAI-compatible base URL that already names its API version below some other path — Gemini's
``https://generativelanguage.googleapis.com/v1beta/openai`` (Google's "OpenAI compatibility" docs give this base to the
openai SDK) — gets the request paths below it. Only ``…/v1`` was recognised: this base got ``/v1/chat/completions``
appended and every request was a 404 (found by the newcomer hunt, 2026-11-29)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.providers import build_provider
from modelyard.providers.openai import versioned
from modelyard.types import ChatRequest, Message

ANSWER = {"id": "x", "object": "chat.completion", "model": "gemini-2.5-flash",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from below v1beta."},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}


@pytest.fixture
async def gemini_like() -> AsyncIterator[tuple[str, list[str]]]:
    """Answers only where Gemini's compatibility layer does; records every path asked."""
    asked: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        asked.append(request.path)
        if request.path == "/v1beta/openai/chat/completions":
            return web.json_response(ANSWER)
        return web.Response(status=404, text=json.dumps({"error": {"code": 404, "message": "Not Found"}}),
                            content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", asked
    finally:
        await runner.cleanup()


async def test_a_base_below_a_version_segment_gets_its_paths_below_it(gemini_like: tuple[str, list[str]]) -> None:
    base, asked = gemini_like
    provider = build_provider("gemini", ModelConfig(provider="openai", endpoint=f"{base}/v1beta/openai",
                                                    model="gemini-2.5-flash"))
    try:
        answer = await provider.complete(ChatRequest(messages=[Message("user", "hi")]), Timeouts())
    finally:
        await provider.aclose()
    assert answer.text == "Hello from below v1beta."
    assert asked == ["/v1beta/openai/chat/completions"]


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("http://127.0.0.1:8080", False),  # a bare server: /v1 is added
    ("http://127.0.0.1:8080/v1", True),
    ("https://api.groq.com/openai/v1", True),
    ("https://openrouter.ai/api/v1", True),
    ("https://generativelanguage.googleapis.com/v1beta/openai", True),
    ("http://gpu-box:8000/vllm", False),  # a proxy's prefix that is no version
])
def test_which_bases_name_their_version(endpoint: str, expected: bool) -> None:
    assert versioned(endpoint) is expected
