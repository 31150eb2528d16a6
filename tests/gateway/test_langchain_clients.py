"""LangChain's Anthropic and Ollama chat models (``langchain-anthropic`` ChatAnthropic, ``langchain-ollama``
ChatOllama) pointed at the gateway, as their users call them: invoke, stream, tools, structured output,
errors. (ChatOpenAI is in test_langchain.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import ollama
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessageChunk
from langchain_ollama import ChatOllama
from pydantic import BaseModel

from tests.gateway.clients import TEXT, backends, logged  # noqa: F401  (backends: this module's fixture)


class Weather(BaseModel):
    """Weather for a city"""

    city: str


def _streamed(chunks) -> AIMessageChunk:
    whole = None
    for chunk in chunks:
        whole = chunk if whole is None else whole + chunk
    assert whole is not None
    return whole


@pytest.fixture
def claude(gateway) -> ChatAnthropic:
    return ChatAnthropic(model="coder", base_url=gateway.url, api_key="unused", max_retries=0, timeout=15)


def _closed(model: ChatOllama) -> None:
    """ChatOllama has no close of its own and its ollama.Client has no finalizer: the keep-alive socket was left
    to the collector (an unclosed-socket ResourceWarning). Its sync client is the one these tests use."""
    model._client.close()


@pytest.fixture
def local(gateway) -> Iterator[ChatOllama]:
    model = ChatOllama(model="coder", base_url=gateway.url)
    yield model
    _closed(model)


def test_chat_anthropic_invoke_and_stream(claude, tmp_path):
    answer = claude.invoke("hi")
    assert answer.content == TEXT and answer.response_metadata["stop_reason"] == "end_turn"
    assert answer.usage_metadata["output_tokens"] > 0 and answer.response_metadata["model"] == "fast"
    assert logged(tmp_path) == [("coder", "fast", "ok")]
    whole = _streamed(claude.stream("hi"))
    assert whole.content == TEXT and whole.usage_metadata["input_tokens"] > 0
    assert whole.response_metadata["stop_reason"] == "end_turn" and len(logged(tmp_path)) == 2


def test_chat_anthropic_tools_and_structured_output(claude, fakes):
    call = claude.bind_tools([Weather]).invoke("weather in Paris?").tool_calls[0]
    assert call["name"] == "Weather" and call["args"] == {"city": "Paris"} and call["id"].startswith("toolu_")
    streamed = _streamed(claude.bind_tools([Weather]).stream("weather in Paris?"))
    assert streamed.tool_calls[0]["args"] == {"city": "Paris"}
    assert claude.with_structured_output(Weather).invoke("weather?") == Weather(city="Paris")  # a forced tool
    assert claude.with_structured_output(Weather, method="json_schema").invoke("weather?") == Weather(city="Paris")
    assert fakes[0].last_request.json["response_format"]["json_schema"]["schema"]["required"] == ["city"]


def test_a_stop_cuts_the_answer(claude, local):
    assert claude.invoke("hi", stop=["m f"]).content == "Hello fro"
    assert _streamed(local.stream("hi", stop=["m f"])).content == "Hello fro"


def test_chat_anthropic_errors(gateway):
    with pytest.raises(anthropic.NotFoundError) as err:
        ChatAnthropic(model="nope", base_url=gateway.url, api_key="unused", max_retries=0).invoke("hi")
    assert err.value.body["error"]["type"] == "not_found_error"


def test_chat_ollama_invoke_and_stream(local, tmp_path):
    answer = local.invoke("hi")
    assert answer.content == TEXT and answer.response_metadata["done_reason"] == "stop"
    assert answer.usage_metadata["output_tokens"] > 0
    whole = _streamed(local.stream("hi"))
    assert whole.content == TEXT and whole.usage_metadata["total_tokens"] > 0
    assert logged(tmp_path) == [("coder", "fast", "ok")] * 2


def test_chat_ollama_tools_and_structured_output(local, fakes):
    call = local.bind_tools([Weather]).invoke("weather in Paris?").tool_calls[0]
    assert call["name"] == "Weather" and call["args"] == {"city": "Paris"}
    assert local.with_structured_output(Weather, method="function_calling").invoke("weather?") == Weather(city="Paris")
    assert local.with_structured_output(Weather).invoke("weather?") == Weather(city="Paris")  # format: a schema
    assert fakes[0].last_request.json["response_format"]["json_schema"]["schema"]["required"] == ["city"]


def test_chat_ollama_errors(gateway, fakes):
    wrong = ChatOllama(model="nope", base_url=gateway.url)
    with pytest.raises(ollama.ResponseError) as err:
        wrong.invoke("hi")
    _closed(wrong)
    assert err.value.status_code == 404 and "coder" in err.value.error
