"""Where the gateway returns a model's thinking, as the README says: chat completions as ``reasoning_content``
(DeepSeek's and vLLM's field, JSON and stream), Ollama's API as ``thinking`` only when ``think`` asks for it, and
never on the Responses or Messages APIs. (The README said Ollama's API only, and elsewhere "never shown".)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import Fault
from tests.gateway.harness import GatewayServer
from tests.reliability.kit import ANTHROPIC_ENV, ANTHROPIC_KEY, backends, gateway_config

THOUGHT = "Weighing the question first."
ANSWER = "The answer."


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, Any]]:
    mp = pytest.MonkeyPatch()
    mp.setenv(ANTHROPIC_ENV, ANTHROPIC_KEY)
    try:
        with backends() as (oa, ol, an), \
                GatewayServer(gateway_config(tmp_path_factory.mktemp("think"), oa.url, ol.url, an.url)) as gw:
            yield gw, oa
    finally:
        mp.undo()


def _ask(served: tuple[GatewayServer, Any], path: str, body: dict[str, Any]) -> httpx.Response:
    gw, openai_fake = served
    # the `solo` agent's only model is the OpenAI-compatible fake: it thinks (vLLM's and DeepSeek's field), then answers
    openai_fake.push(Fault.raw(200, _chunk({"role": "assistant", "reasoning_content": THOUGHT}),
                               _chunk({"content": ANSWER}), _chunk({}, "stop"), "data: [DONE]\n\n",
                               headers={"content-type": "text/event-stream"}))
    r = httpx.post(gw.url + path, json={"model": "solo", **body}, timeout=30,
                   headers={"x-api-key": "unused", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200 and ANSWER.split()[-1].rstrip(".") in r.text, r.text[:500]
    return r


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_chat_completions_return_thinking_as_reasoning_content(served, stream: bool) -> None:
    r = _ask(served, "/v1/chat/completions", {"stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    if stream:
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        said = "".join(e["choices"][0]["delta"].get("reasoning_content", "") for e in events if e.get("choices"))
    else:
        said = r.json()["choices"][0]["message"]["reasoning_content"]
    assert said == THOUGHT


@pytest.mark.parametrize("think", [None, True], ids=["not-asked", "think"])
def test_ollama_api_returns_thinking_only_when_asked(served, think: bool | None) -> None:
    body: dict[str, Any] = {"stream": False, "messages": [{"role": "user", "content": "hi"}]}
    if think is not None:
        body["think"] = think
    message = _ask(served, "/api/chat", body).json()["message"]
    assert message.get("thinking") == (THOUGHT if think else None)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/responses", {"input": "hi"}),
    ("/v1/messages", {"max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
], ids=["responses", "messages"])
def test_responses_and_messages_never_return_thinking(served, path: str, body: dict[str, Any]) -> None:
    assert THOUGHT not in _ask(served, path, body).text
