"""The official ``ollama`` client and ``anthropic`` SDK read the native fakes as they read the real servers
(helper-73's hunt): a fake a real client would refuse makes every test behind it prove nothing. Streaming NDJSON
with thinking and object-valued tool arguments, Ollama's errors as the client raises them (status and words), and
the Messages API refusals and answers of a model as Claude Opus 4.7 and later (``AnthropicServer(adaptive_only)``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TypeVar

import anthropic as anthropic_sdk
import ollama as ollama_sdk
import pytest

from tests.fakes import AnthropicServer, Fault, OllamaServer
from tests.fakes.anthropic import ADAPTIVE_ONLY, LOW_CREDIT, TEMPERATURE_DEPRECATED
from tests.fakes.chat import DEFAULT_REPLY, DEFAULT_THINKING
from tests.fakes_selftest.test_fakes import USER, WEATHER_TOOL_ANTHROPIC, WEATHER_TOOL_OPENAI

KEY = "test-key"
_made: list[ollama_sdk.Client | anthropic_sdk.Anthropic] = []
C = TypeVar("C", ollama_sdk.Client, anthropic_sdk.Anthropic)


def _kept(client: C) -> C:
    _made.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every client a test made is closed after it: left to the collector, its socket was a ResourceWarning in
    whichever later test the collector ran in."""
    yield
    while _made:
        _made.pop().close()


@pytest.fixture
def ollama() -> OllamaServer:
    with OllamaServer(models=["qwen3.5"]) as server:
        yield server


@pytest.fixture
def opus() -> AnthropicServer:
    with AnthropicServer(api_key=KEY, adaptive_only=True) as server:
        yield server


def test_ollama_client_streams_thinking_text_and_object_tool_arguments(ollama: OllamaServer) -> None:
    client = _kept(ollama_sdk.Client(host=ollama.url))
    parts = list(client.chat(model="qwen3.5", messages=USER, stream=True, think=True))
    assert "".join(p.message.content or "" for p in parts) == DEFAULT_REPLY
    assert "".join(p.message.thinking or "" for p in parts) == DEFAULT_THINKING
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count
    ollama.tool_arguments = {"city": "Paris"}
    call = client.chat(model="qwen3.5", messages=USER, tools=[WEATHER_TOOL_OPENAI]).message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", {"city": "Paris"})
    assert [m.model for m in client.list().models] == ["qwen3.5:latest"]
    loaded = client.chat(model="qwen3.5", messages=[], keep_alive="10m")
    assert loaded.done_reason == "load" and [m.model for m in client.ps().models] == ["qwen3.5:latest"]


def test_ollama_client_raises_the_fakes_errors_with_ollamas_status_and_words(ollama: OllamaServer) -> None:
    client = _kept(ollama_sdk.Client(host=ollama.url))
    with pytest.raises(ollama_sdk.ResponseError) as missing:
        client.chat(model="nope", messages=USER)
    assert missing.value.status_code == 404 and "try pulling it first" in missing.value.error
    spent = "you've reached your hourly usage limit, please wait or upgrade to continue"
    no_room = "llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory"
    ollama.push(Fault.status(429, message=spent), Fault.raw(500, json.dumps({"error": no_room}),
                                                            headers={"content-type": "application/json"}))
    for status, words in ((429, spent), (500, no_room)):
        with pytest.raises(ollama_sdk.ResponseError) as refused:
            client.chat(model="qwen3.5", messages=USER)
        assert (refused.value.status_code, refused.value.error) == (status, words)
    ollama.push(Fault.error_midstream(message="an error was encountered while running the model: unexpected EOF"))
    with pytest.raises(ollama_sdk.ResponseError) as midway:  # {"error": ...} under HTTP 200, after content
        list(client.chat(model="qwen3.5", messages=USER, stream=True))
    assert "unexpected EOF" in midway.value.error


def test_anthropic_sdk_reads_an_adaptive_only_models_refusals_and_answers(opus: AnthropicServer) -> None:
    client = _kept(anthropic_sdk.Anthropic(api_key=KEY, base_url=opus.url, max_retries=0))
    ask = {"model": "claude-opus-4-7", "max_tokens": 2048, "messages": USER}
    with pytest.raises(anthropic_sdk.BadRequestError) as budget:
        client.messages.create(**ask, thinking={"type": "enabled", "budget_tokens": 1024})
    assert budget.value.body["error"] == {"type": "invalid_request_error", "message": ADAPTIVE_ONLY}
    with pytest.raises(anthropic_sdk.BadRequestError) as sampling:
        client.messages.create(**ask, extra_body={"temperature": 0.7})  # SDK 2.x no longer takes it
    assert sampling.value.body["error"]["message"] == TEMPERATURE_DEPRECATED
    shown = client.messages.create(**ask, thinking={"type": "adaptive", "display": "summarized"})
    assert (shown.content[0].type, shown.content[0].thinking) == ("thinking", DEFAULT_THINKING)
    omitted = client.messages.create(**ask, thinking={"type": "adaptive"})  # the model's default display
    assert omitted.content[0].type == "thinking" and omitted.content[0].thinking == ""
    with client.messages.stream(**ask, thinking={"type": "adaptive", "display": "summarized"}) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == DEFAULT_THINKING and final.content[-1].text == DEFAULT_REPLY
    # SDK 2.x sends its api_key as a bearer token, no x-api-key (0.x sent X-Api-Key): the fake takes both, as the API
    assert {(r.headers.get("x-api-key"), r.headers.get("authorization")) for r in opus.requests} == {
        (None, f"Bearer {KEY}")}


def test_anthropic_sdk_reads_an_account_refusal_and_an_error_event(opus: AnthropicServer) -> None:
    client = _kept(anthropic_sdk.Anthropic(auth_token=KEY, base_url=opus.url, max_retries=0))
    opus.push(Fault.status(400, message=LOW_CREDIT), Fault.error_midstream())
    with pytest.raises(anthropic_sdk.BadRequestError) as broke:
        client.messages.create(model="claude-opus-4-7", max_tokens=64, messages=USER)
    assert broke.value.body["error"]["message"] == LOW_CREDIT and broke.value.request_id
    with pytest.raises(anthropic_sdk.APIStatusError) as midway, \
            client.messages.stream(model="claude-opus-4-7", max_tokens=64, messages=USER) as stream:
        stream.get_final_message()
    assert "Overloaded" in str(midway.value)
    assert opus.requests[-1].headers.get("authorization") == f"Bearer {KEY}"  # auth_token travels as a bearer token


def test_anthropic_sdk_tool_loop_sends_back_the_signed_thinking_the_fake_checks() -> None:
    """A tool loop with thinking as the SDK's users write it (the answer's content blocks sent back as they came,
    streamed or whole): the fake takes its own signed thinking and redacted_thinking blocks back, and refuses an edited
    block or a turn without them in the API's words — so the fake's check proves what the API would."""
    with AnthropicServer(api_key=KEY, redacted_thinking=True, tool_arguments={"city": "Paris"}) as claude:
        client = _kept(anthropic_sdk.Anthropic(api_key=KEY, base_url=claude.url, max_retries=0))
        ask = {"model": "claude-haiku-4-5", "max_tokens": 2048, "tools": [WEATHER_TOOL_ANTHROPIC],
               "thinking": {"type": "enabled", "budget_tokens": 1024}}
        with client.messages.stream(**ask, messages=USER) as stream:
            streamed = stream.get_final_message()
        whole = client.messages.create(**ask, messages=USER)
        for first in (streamed, whole):
            assert [b.type for b in first.content] == ["thinking", "redacted_thinking", "tool_use"]
            result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[-1].id,
                                                   "content": "sunny"}]}
            answer = client.messages.create(**ask, messages=[*USER, {"role": "assistant", "content": first.content},
                                                             result])
            assert (answer.content[0].thinking, answer.content[-1].text) == (DEFAULT_THINKING, DEFAULT_REPLY)
        edited = [{**whole.content[0].model_dump(), "thinking": "Something else."},
                  *(b.model_dump() for b in whole.content[1:])]
        with pytest.raises(anthropic_sdk.BadRequestError) as refused:
            client.messages.create(**ask, messages=[*USER, {"role": "assistant", "content": edited}, result])
        assert refused.value.body["error"]["message"] == "messages.1.content.0: Invalid `signature` in `thinking` block"
        with pytest.raises(anthropic_sdk.BadRequestError) as unsigned:
            client.messages.create(**ask, messages=[*USER, {"role": "assistant", "content": whole.content[2:]}, result])
        assert "must start with a thinking block" in unsigned.value.body["error"]["message"]
