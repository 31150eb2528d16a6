"""The official openai SDK reads our fake OpenAI-compatible server as it reads the real API (helper-34's hunt):
a fake the SDK would refuse would make every test behind it prove nothing. Streaming text with usage, tool-call
fragments reassembled by the SDK's own stream helper, and the SDK's typed errors for 401 / 429 / 404."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai as openai_sdk
import pytest

from tests.fakes import Fault, OpenAIServer
from tests.fakes.chat import DEFAULT_REPLY, DEFAULT_THINKING
from tests.fakes_selftest.test_fakes import USER, WEATHER_TOOL_OPENAI, openai  # noqa: F401 - fixture

_made: list[openai_sdk.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every SDK client a test made is closed after it: left to the collector, its socket was a ResourceWarning in
    whichever later test the collector ran in."""
    yield
    while _made:
        _made.pop().close()


def client(server: OpenAIServer, key: str = "sk-test") -> openai_sdk.OpenAI:
    made = openai_sdk.OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0)
    _made.append(made)
    return made


def test_openai_sdk_streams_text_and_usage(openai: OpenAIServer) -> None:  # noqa: F811 - fixture
    stream = client(openai).chat.completions.create(model="local-model", messages=USER, stream=True,
                                                    stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake server."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].completion_tokens > 0


def test_openai_sdk_reassembles_tool_call_fragments(openai: OpenAIServer) -> None:  # noqa: F811 - fixture
    openai.tool_arguments = {"city": "Paris", "unit": "celsius"}
    with client(openai).beta.chat.completions.stream(model="local-model", messages=USER,
                                                     tools=[WEATHER_TOOL_OPENAI]) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris",
                                                                                          "unit": "celsius"}
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(("fault", "error"), [(Fault.status(429, retry_after=1), openai_sdk.RateLimitError),
                                              (Fault.status(500), openai_sdk.InternalServerError)])
def test_openai_sdk_types_the_fakes_errors(openai: OpenAIServer, fault: Fault,  # noqa: F811 - fixture
                                           error: type[Exception]) -> None:
    openai.push(fault)
    with pytest.raises(error):
        client(openai).chat.completions.create(model="local-model", messages=USER)
    with pytest.raises(openai_sdk.AuthenticationError):
        client(openai, key="sk-wrong").chat.completions.create(model="local-model", messages=USER)
    with pytest.raises(openai_sdk.NotFoundError):
        client(openai).chat.completions.create(model="no-such-model", messages=USER)


def test_openai_sdk_reads_reasoning_under_its_newer_name_between_keep_alive_pings() -> None:
    """Ollama's /v1 and newer vLLM name the thinking delta ``reasoning``; llama_cpp.server's sse-starlette writes
    ``: ping - <time>`` comments between events: the SDK reads the fake so (pings skipped, the field kept as extra)."""
    with OpenAIServer(models=["m"], emit_reasoning=True, reasoning_field="reasoning", ping=True) as server:
        chunks = list(client(server).chat.completions.create(model="m", messages=USER, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(getattr(d, "reasoning", None) or "" for d in deltas) == DEFAULT_THINKING
    assert "".join(d.content or "" for d in deltas) == DEFAULT_REPLY
