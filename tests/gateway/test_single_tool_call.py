"""A client that asks for at most one tool call gets at most one, whatever the model wrote.

The documented semantics: OpenAI's ``parallel_tool_calls`` ("Whether to enable parallel function calling during
tool use", default true, openai.yaml ``ParallelToolCalls``; the function-calling guide: false "ensures exactly zero
or one tool is called"), on chat completions and on Responses; Anthropic's ``tool_choice.disable_parallel_tool_use``
("If set to true, the model will output at most one tool use" for ``auto``, "exactly one" for ``any``/``tool`` —
anthropic-sdk-ruby lib/anthropic/models/tool_choice_auto.rb / tool_choice_any.rb; platform.claude.com
docs/agents-and-tools/tool-use/parallel-tool-use). A model behind the gateway (a local one above all) may still
write two calls; the gateway passes on the first only, whole and streamed.

The backend is a local fake that streams two calls in one answer, in OpenAI's streaming shape (the API reference's
``chat.completion.chunk``: each call's header with ``index``/``id``/``function.name``, then its argument pieces
under the same ``index``; finish reason ``tool_calls``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import FakeServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

_CALLS = [("call_paris", "get_weather", {"city": "Paris"}), ("call_oslo", "get_weather", {"city": "Oslo"})]

WEATHER_OPENAI = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_RESPONSES = {"type": "function", "name": "get_weather", "description": "Weather in a city",
                     "parameters": WEATHER_OPENAI["function"]["parameters"]}
WEATHER_ANTHROPIC = {"name": "get_weather", "description": "Weather in a city",
                     "input_schema": WEATHER_OPENAI["function"]["parameters"]}
ASK = "What is the weather in Paris and in Oslo?"


class TwoCallsServer(FakeServer):
    """An OpenAI-compatible backend whose every answer is two parallel tool calls (streamed, as modelyard asks)."""

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/chat/completions", self._completions, methods=["POST"])]

    async def _completions(self, request: Request) -> Response:
        def event(delta: dict[str, Any], finish: str | None = None) -> str:
            chunk = {"id": "chatcmpl-two", "object": "chat.completion.chunk", "created": 1, "model": "two-calls",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(chunk)}\n\n"

        events = [event({"role": "assistant", "content": None})]
        for index, (call_id, name, arguments) in enumerate(_CALLS):
            events.append(event({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                                 "function": {"name": name, "arguments": ""}}]}))
            events.append(event({"tool_calls": [{"index": index, "function": {"arguments": json.dumps(arguments)}}]}))
        events.append(event({}, "tool_calls"))
        return Response("".join(events) + "data: [DONE]\n\n", media_type="text/event-stream")


@pytest.fixture(scope="module")
def backend() -> Iterator[TwoCallsServer]:
    with TwoCallsServer() as server:
        yield server


@pytest.fixture
def gateway(tmp_path, backend) -> Iterator[GatewayServer]:
    models = {"local": {"provider": "openai", "endpoint": backend.url, "model": "two-calls", "max_concurrent": 2}}
    defaults = {"timeouts": {"queue": 0.5, "connect": 2, "first_token": 3, "idle": 3, "total": 20},
                "retries": {"attempts": 0}}
    config = make_config(models, {"tools": {"primary": "local"}}, defaults=defaults,
                         log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        yield gw


@pytest.fixture
def oai(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused-on-loopback", max_retries=0, timeout=15)


@pytest.fixture
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused-on-loopback", max_retries=0, timeout=15)


def _chat(oai: openai.OpenAI, **extra: Any) -> Any:
    return oai.chat.completions.create(model="tools", messages=[{"role": "user", "content": ASK}],
                                       tools=[WEATHER_OPENAI], **extra)


def test_chat_completions_default_passes_both_calls(oai):
    """The control: parallel calls are the default, and the fake really writes two."""
    calls = _chat(oai).choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Oslo"}]


def test_chat_completions_parallel_off_gives_the_first_call_only(oai):
    choice = _chat(oai, parallel_tool_calls=False).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})]


def test_chat_completions_parallel_off_streamed(oai):
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in _chat(oai, parallel_tool_calls=False, stream=True):
        for delta_call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            call = calls.setdefault(delta_call.index, {"name": "", "arguments": ""})
            call["name"] += delta_call.function.name or ""
            call["arguments"] += delta_call.function.arguments or ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("get_weather", {"city": "Paris"})]


def test_responses_parallel_off_gives_one_function_call(oai):
    response = oai.responses.create(model="tools", input=ASK, tools=[WEATHER_RESPONSES], parallel_tool_calls=False)
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert response.parallel_tool_calls is False  # the response object echoes the request's setting


def test_responses_parallel_off_streamed(oai):
    with oai.responses.stream(model="tools", input=ASK, tools=[WEATHER_RESPONSES], parallel_tool_calls=False) as s:
        response = s.get_final_response()
    calls = [item for item in response.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Paris"}]


def _tool_uses(message: Any) -> list[dict[str, Any]]:
    return [block.input for block in message.content if block.type == "tool_use"]


def test_anthropic_default_passes_both_tool_uses(claude):
    message = claude.messages.create(model="tools", max_tokens=256, messages=[{"role": "user", "content": ASK}],
                                     tools=[WEATHER_ANTHROPIC])
    assert _tool_uses(message) == [{"city": "Paris"}, {"city": "Oslo"}]


@pytest.mark.parametrize("choice", [{"type": "auto", "disable_parallel_tool_use": True},
                                    {"type": "any", "disable_parallel_tool_use": True}])
def test_anthropic_disable_parallel_tool_use_gives_one(claude, choice):
    message = claude.messages.create(model="tools", max_tokens=256, messages=[{"role": "user", "content": ASK}],
                                     tools=[WEATHER_ANTHROPIC], tool_choice=choice)
    assert message.stop_reason == "tool_use"
    assert _tool_uses(message) == [{"city": "Paris"}]


def test_anthropic_disable_parallel_tool_use_streamed(claude):
    with claude.messages.stream(model="tools", max_tokens=256, messages=[{"role": "user", "content": ASK}],
                                tools=[WEATHER_ANTHROPIC],
                                tool_choice={"type": "auto", "disable_parallel_tool_use": True}) as stream:
        message = stream.get_final_message()
    assert _tool_uses(message) == [{"city": "Paris"}]
