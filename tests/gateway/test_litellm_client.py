"""The ``litellm`` SDK as a *client* of the gateway — a very common way people call a server: one
``litellm.completion`` call, the provider named by the model's prefix (``anthropic/``, ``ollama_chat/``,
``ollama/``, ``openai/``) and the gateway's address as ``api_base``. Text, streaming, tools, structured
output (``response_format`` with a JSON schema), errors."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price list (before import)
import litellm

from tests.gateway.clients import CITY, TEXT, backends, logged  # noqa: F401  (backends: this module's fixture)

#: (prefix, path under the gateway): litellm's providers that speak one of the gateway's three APIs
PREFIXES = [("anthropic", ""), ("ollama_chat", ""), ("openai", "/v1")]
HI = [{"role": "user", "content": "hi"}]
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "weather", "strict": True, "schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}}


def call(prefix: str, url: str, model: str = "coder", **kwargs):
    return litellm.completion(model=f"{prefix}/{model}", api_base=url, api_key="unused", timeout=15, num_retries=0,
                              **kwargs)


@pytest.mark.parametrize(("prefix", "path"), PREFIXES)
def test_text_and_streaming(prefix, path, gateway, tmp_path):
    whole = call(prefix, gateway.url + path, messages=HI)
    assert whole.choices[0].message.content == TEXT and whole.choices[0].finish_reason == "stop"
    assert whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    chunks = list(call(prefix, gateway.url + path, messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert logged(tmp_path) == [("coder", "fast", "ok")] * 2


@pytest.mark.parametrize(("prefix", "path"), PREFIXES)
def test_tool_calls_whole_and_streamed(prefix, path, gateway, fakes):
    ask = [{"role": "user", "content": "weather in Paris?"}]
    answer = call(prefix, gateway.url + path, messages=ask, tools=WEATHER).choices[0]
    tool_call = answer.message.tool_calls[0]
    assert answer.finish_reason == "tool_calls" and tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == CITY
    streamed = list(call(prefix, gateway.url + path, messages=ask, tools=WEATHER, stream=True))
    arguments = "".join(t.function.arguments or "" for c in streamed for t in c.choices[0].delta.tool_calls or [])
    assert json.loads(arguments) == CITY and streamed[-1].choices[0].finish_reason == "tool_calls"
    call(prefix, gateway.url + path, tools=WEATHER, messages=[
        *ask, answer.message.model_dump(), {"role": "tool", "tool_call_id": tool_call.id, "content": "9C and rain"}])
    assert "9C and rain" in str(fakes[0].last_request.json["messages"][-1])


@pytest.mark.parametrize(("prefix", "path"), PREFIXES)
def test_structured_output_with_a_json_schema(prefix, path, gateway, fakes):
    """Before: on openai/ the schema was dropped at the gateway (sent on as 'some JSON'); free text came back."""
    ask = [{"role": "user", "content": "weather?"}]
    answer = call(prefix, gateway.url + path, messages=ask, response_format=SCHEMA)
    assert json.loads(answer.choices[0].message.content) == CITY


@pytest.mark.parametrize(("prefix", "path"), PREFIXES)
def test_an_unknown_model_is_not_found(prefix, path, gateway):
    with pytest.raises(litellm.NotFoundError) as err:
        call(prefix, gateway.url + path, model="nope", messages=HI)
    assert "coder" in str(err.value)


@pytest.mark.parametrize(("prefix", "path"), PREFIXES)
def test_stop_sequences_cut_the_answer(prefix, path, gateway):
    """Before: anthropic/ was a 400 (stop_sequences refused); ollama_chat/ and openai/ returned the text past
    the stop."""
    whole = call(prefix, gateway.url + path, messages=HI, stop=["m f"])
    assert whole.choices[0].message.content == "Hello fro" and whole.choices[0].finish_reason == "stop"
    streamed = call(prefix, gateway.url + path, messages=HI, stop=["m f"], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == "Hello fro"
