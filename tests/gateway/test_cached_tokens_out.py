"""The gateway's own chat and text completions say how much of the prompt the provider read from its prompt cache.

OpenAI's ``CompletionUsage`` carries it as ``prompt_tokens_details.cached_tokens``, a part of ``prompt_tokens``
(openai-node's generated types, mirrored at
https://v03.api.js.langchain.com/interfaces/_langchain_openai.OpenAIClient.Completions.CompletionUsage-1.html; the same
shape in https://docs.x.ai/developers/advanced-api-usage/prompt-caching/usage-and-pricing). The providers read it
(providers/openai.py) and priced it, but the gateway's answers dropped it: a client counting its own cache hits saw
none. The fake OpenAI server sends it the way OpenAI does (tests/fakes/openai_compat.py ``_usage``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes import OpenAIServer

PROMPT = " ".join(["word"] * 2000)
CACHED = 1536


@pytest.fixture
def cached(fakes) -> Iterator[OpenAIServer]:
    server = fakes[0]
    server.cached_tokens = CACHED
    try:
        yield server
    finally:
        server.cached_tokens = 0


def test_a_chat_completion_says_its_cached_prompt_tokens(cached, client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="solo", messages=[{"role": "user", "content": PROMPT}])
    usage = answer.usage
    assert usage is not None and usage.prompt_tokens > CACHED
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == CACHED


def test_the_streamed_usage_chunk_says_its_cached_prompt_tokens(cached, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="solo", messages=[{"role": "user", "content": PROMPT}],
                                                 stream=True, stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > CACHED
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == CACHED


def test_a_text_completion_says_its_cached_prompt_tokens(cached, gateway) -> None:
    r = httpx.post(gateway.url + "/v1/completions", json={"model": "solo", "prompt": PROMPT}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": CACHED}


def test_without_cached_tokens_the_usage_is_as_before(fakes, client: openai.OpenAI) -> None:
    """guard: a provider that said nothing of a cache gets no ``prompt_tokens_details`` invented (0 would claim a
    miss the provider never reported)."""
    answer = client.chat.completions.create(model="solo", messages=[{"role": "user", "content": "hi"}])
    assert answer.usage is not None and answer.usage.prompt_tokens_details is None
