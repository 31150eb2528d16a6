"""Ollama's 404 for a model it does not have ('model "qwen2.5:7b-instruc" not found, try pulling it first':
https://github.com/ollama/ollama/blob/main/server/routes.go, ChatHandler) names the tags the server does have,
from its /api/tags (https://github.com/ollama/ollama/blob/main/docs/api.md#list-local-models), closest first and
bounded (8) — the user had to run `ollama list` and compare by eye."""

from __future__ import annotations

import asyncio

import pytest
from tests.fakes.ollama import OllamaServer

from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers import build_provider
from modelyard.types import ChatRequest, Message


async def _ask(url: str, model: str) -> ProviderError:
    provider = build_provider("qwen", ModelConfig(provider="ollama", model=model, endpoint=url))
    try:
        with pytest.raises(ProviderError) as caught:
            async for _ in provider.stream(ChatRequest([Message("user", "hi")]), Timeouts()):
                pass
    finally:
        await provider.aclose()
    return caught.value


def test_model_missing_names_the_servers_tags_closest_first() -> None:
    others = [f"gemma3:{n}b" for n in range(1, 12)]
    with OllamaServer(models=["llama3.2:3b", "qwen2.5:7b-instruct", "qwen2.5:14b", *others]) as server:
        exc = asyncio.run(_ask(server.url, "qwen2.5:7b-instruc"))
    assert exc.reason is Reason.MODEL_MISSING
    assert "try pulling it first" in exc.message  # the server's own words stay
    said = exc.message.split("the server has: ", 1)[1]
    assert said.startswith("qwen2.5:7b-instruct, qwen2.5:14b"), exc.message
    assert said.count(",") <= 8 and "more)" in said, exc.message  # 14 tags: bounded


def test_model_missing_on_a_server_with_no_models_says_so() -> None:
    with OllamaServer(models=[]) as server:
        exc = asyncio.run(_ask(server.url, "qwen3:8b"))
    assert exc.reason is Reason.MODEL_MISSING and "the server has no models" in exc.message, exc.message
