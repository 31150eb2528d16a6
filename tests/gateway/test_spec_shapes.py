"""Requests shaped by the public specs, not by our own tests, against a running gateway: every one is served with an
answer the official SDK reads, or refused with a 4xx in that API's own error shape naming the field — never a 5xx.

Where the shapes come from:
- OpenAI: openai/openai-openapi@f85dbe223d40 ``openapi.yaml`` — CreateChatCompletionRequest (its "Default", "Image
  input" and "Functions" examples), ChatCompletionToolChoiceOption, CreateResponse, ToolChoiceParam.
- Anthropic: anthropic-python 2.15.0 ``types/message_create_params.py``, ``tool_choice_param.py`` (auto, any, tool,
  none), ``thinking_config_param.py`` (enabled, disabled, adaptive, between_tools).
- Ollama: ollama/ollama@fb30760996871 ``docs/api.md`` (the "Generate request (With options)" example: every option,
  ``keep_alive``, ``context``, ``raw``, ``format`` as a schema) and ``api/types.go`` (ThinkValue.UnmarshalJSON:
  "invalid think value").
- JSON itself: RFC 8259 §6 ("Numeric values that cannot be represented … (such as Infinity and NaN) are not
  permitted"); gzip members: RFC 1952 §2.2; content codings in the order applied: RFC 9110 §8.4.

Rows marked ``new`` failed on the old code: NaN/Infinity in a schema or ``options`` sent on as ``null``; an unknown
``tool_choice``/``thinking``/``think`` read as on or as "required"; Ollama's ``context`` (the conversation so far)
dropped, ``raw`` with a ``template`` served; an image in ``system`` told its ``text`` was no string; every Responses
answer refused by the SDK's own ``Response`` type (``usage.input_tokens_details.cache_write_tokens``, required by
the spec, missing). So did the gzip test (two members, or gzipped twice: a 400), the HTTP-framing tests (uvicorn's
text/plain "Invalid HTTP request received."), the Ollama option-type tests, Anthropic's 405 (typed ``api_error``)
and the Anthropic and Ollama SDK tests (their last refusal). The other rows, and the openai SDK test, are guards:
they passed before and keep the promise as the parsing changes.
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from typing import Any, NamedTuple

import anthropic
import httpx
import ollama
import openai
import pytest
from anthropic.types import Message as AnthropicMessage
from openai.types.chat import ChatCompletion
from openai.types.responses import Response as OpenAIResponse

from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config

PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages",
         "ollama_chat": "/api/chat", "ollama_generate": "/api/generate"}
HI = [{"role": "user", "content": "Hello!"}]
BASE: dict[str, dict[str, Any]] = {
    "chat": {"model": "coder", "messages": HI},
    "responses": {"model": "coder", "input": "Hello!"},
    "messages": {"model": "writer", "max_tokens": 64, "messages": HI},
    "ollama_chat": {"model": "coder", "stream": False, "messages": HI},
    "ollama_generate": {"model": "coder", "stream": False, "prompt": "Why is the sky blue?"},
}
WEATHER = {"type": "object", "properties": {"location": {"type": "string"},
                                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["location"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_current_weather",
                                                "description": "Get the current weather", "parameters": WEATHER}}]
RESP_TOOLS = [{"type": "function", "name": "get_current_weather", "parameters": WEATHER}]
ANTH_TOOLS = [{"name": "get_current_weather", "input_schema": WEATHER}]
CALLED = [*HI, {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function",
     "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "22C"}]


class Row(NamedTuple):
    api: str
    name: str
    extra: dict[str, Any] | bytes  # fields merged into the API's base body, or a whole raw body
    status: int  # 200, or the 4xx expected
    field: str | None = None  # the field the error must name
    new: bool = False  # failed on the old code


def _raw(api: str, fragment: bytes) -> bytes:
    """The API's base body with ``fragment`` (``"key": value``, JSON text as sent) added."""
    return json.dumps(BASE[api]).encode()[:-1] + b", " + fragment + b"}"


ROWS = [
    # -- chat completions: the spec's own examples and field set
    Row("chat", "spec Default example (developer role)",
        {"messages": [{"role": "developer", "content": "You are a helpful assistant."}, *HI]}, 200),
    Row("chat", "spec Functions example", {"tools": CHAT_TOOLS, "tool_choice": "auto"}, 200),
    Row("chat", "spec Image input example", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]}], "max_tokens": 300},
        400, "messages[0].content[1].type"),
    Row("chat", "input_audio part", {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}, 400,
        "messages[0].content[0].type"),
    Row("chat", "file part", {"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-abc"}}]}]}, 400, "messages[0].content[0].type"),
    Row("chat", "name on messages, text parts", {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}], "name": "sys"},
        {"role": "user", "content": "Hello!", "name": "alice"}]}, 200),
    Row("chat", "assistant tool_calls with null content, then a tool message",
        {"messages": CALLED, "tools": CHAT_TOOLS}, 200),
    Row("chat", "json_schema response_format", {"response_format": {"type": "json_schema", "json_schema": {
        "name": "weather", "schema": WEATHER, "strict": True}}}, 200),
    Row("chat", "json_object response_format", {"response_format": {"type": "json_object"}}, 200),
    Row("chat", "max_completion_tokens beside max_tokens", {"max_completion_tokens": 50, "max_tokens": 10}, 200),
    Row("chat", "seed user metadata store service_tier parallel_tool_calls", {
        "seed": 42, "user": "u-1", "metadata": {"k": "v"}, "store": False, "service_tier": "auto",
        "parallel_tool_calls": False, "tools": CHAT_TOOLS}, 200),
    Row("chat", "prediction, verbosity, prompt_cache_key, safety_identifier, unknown extra", {
        "prediction": {"type": "content", "content": "x"}, "verbosity": "low", "prompt_cache_key": "k",
        "safety_identifier": "s", "x_vendor_field": {"a": [1]}}, 200),
    Row("chat", "reasoning_effort", {"reasoning_effort": "low"}, 200),
    Row("chat", "modalities text only", {"modalities": ["text"]}, 200),
    Row("chat", "modalities audio", {"modalities": ["text", "audio"]}, 400, "modalities"),
    Row("chat", "n=2", {"n": 2}, 400, "n"),
    Row("chat", "logprobs", {"logprobs": True, "top_logprobs": 2}, 400, "logprobs"),
    Row("chat", "logit_bias", {"logit_bias": {"50256": -100}}, 200),
    Row("chat", "tool_choice named function", {"tools": CHAT_TOOLS, "tool_choice": {
        "type": "function", "function": {"name": "get_current_weather"}}}, 200),
    Row("chat", "tool_choice allowed_tools", {"tools": CHAT_TOOLS, "tool_choice": {"type": "allowed_tools",
        "allowed_tools": {"mode": "auto",
                          "tools": [{"type": "function", "function": {"name": "get_current_weather"}}]}}},
        200),
    Row("chat", "tool_choice of an unknown type", {"tools": CHAT_TOOLS, "tool_choice": {"type": "weird"}}, 400,
        "tool_choice.type", new=True),
    Row("chat", "tool_choice function without its name", {"tools": CHAT_TOOLS, "tool_choice": {"type": "function"}},
        400, "tool_choice", new=True),
    Row("chat", "numbers as strings", {"max_tokens": "100", "temperature": "0.5"}, 200),
    Row("chat", "max_tokens past 64 bits", {"max_tokens": 10**30}, 200),
    Row("chat", "seed past 64 bits", {"seed": 10**30}, 400, "seed"),
    Row("chat", "temperature NaN", _raw("chat", b'"temperature": NaN'), 400, "temperature"),
    Row("chat", "Infinity in a tool's schema", _raw("chat", b'"tools": [{"type": "function", "function": {"name": "f", '
        b'"parameters": {"type": "number", "maximum": Infinity}}}]'), 400, "tools[0].function.parameters.maximum",
        new=True),
    Row("chat", "NaN in a json_schema", _raw("chat", b'"response_format": {"type": "json_schema", "json_schema": '
        b'{"name": "x", "schema": {"type": "number", "minimum": -Infinity}}}'), 400,
        "response_format.json_schema.schema.minimum", new=True),
    Row("chat", "NaN in a string is text", _raw("chat", b'"metadata": {"note": "x: NaN, [Infinity"}'), 200),
    Row("chat", "duplicate keys: the last counts", _raw("chat", b'"model": "nobody", "model": "coder"'), 200),
    Row("chat", "nested 50,000 deep", _raw("chat", b'"metadata": ' + b"[" * 50_000 + b"]" * 50_000), 400),
    Row("chat", "not UTF-8", b'{"model": "coder", "messages": [{"role": "user", "content": "caf\xe9"}]}', 400),
    Row("chat", "empty body", b"", 400),
    # -- responses
    Row("responses", "instructions and input items", {"instructions": "Be brief.", "input": [
        {"type": "message", "role": "developer", "content": "Answer in English."},
        {"role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}]}, 200, new=True),
    Row("responses", "function_call and its output", {"tools": RESP_TOOLS, "input": [
        *HI, {"type": "function_call", "call_id": "c1", "name": "get_current_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "22C"}]}, 200, new=True),
    Row("responses", "text.format json_schema, reasoning, store, include", {
        "text": {"format": {"type": "json_schema", "name": "w", "schema": WEATHER, "strict": True}},
        "reasoning": {"effort": "low"}, "store": False, "include": ["reasoning.encrypted_content"],
        "max_output_tokens": 100}, 200, new=True),
    Row("responses", "input_image", {"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"}]}]}, 400, "input[0].content[0].type"),
    Row("responses", "previous_response_id", {"previous_response_id": "resp_1"}, 400, "previous_response_id"),
    Row("responses", "tool_choice as an unknown word", {"tools": RESP_TOOLS, "tool_choice": "sometimes"}, 400,
        "tool_choice", new=True),
    Row("responses", "tool_choice naming a hosted tool not given", {"tools": RESP_TOOLS,
        "tool_choice": {"type": "file_search"}}, 400, "tool_choice.type", new=True),
    Row("responses", "tool_choice function by name", {"tools": RESP_TOOLS, "tool_choice": {
        "type": "function", "name": "get_current_weather"}}, 200, new=True),
    # -- Anthropic messages
    Row("messages", "system as blocks with cache_control", {"system": [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}, 200),
    Row("messages", "an image block in system", {"system": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}, 400, "system[0].type", new=True),
    Row("messages", "an image block in a system message mid-conversation", {"messages": [*HI, {"role": "system",
        "content": [{"type": "text", "text": "Now be brief."}, {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]}, 400,
        "messages[1].content[1].type", new=True),
    Row("messages", "thinking enabled with a budget", {"max_tokens": 2048, "thinking": {
        "type": "enabled", "budget_tokens": 1024}}, 200),
    Row("messages", "thinking adaptive", {"thinking": {"type": "adaptive"}}, 200),
    Row("messages", "budget_tokens as a string of digits", {"max_tokens": 2048, "thinking": {
        "type": "enabled", "budget_tokens": "1024"}}, 200),
    Row("messages", "budget_tokens that is no number", {"thinking": {"type": "enabled", "budget_tokens": "lots"}}, 400,
        "thinking.budget_tokens", new=True),
    Row("messages", "budget_tokens a digit int() refuses", {"thinking": {"type": "enabled", "budget_tokens": "²"}},
        400, "thinking.budget_tokens", new=True),
    Row("messages", "budget_tokens of 5,000 digits", {"thinking": {"type": "enabled", "budget_tokens": "9" * 5000}},
        400, "thinking.budget_tokens", new=True),
    Row("messages", "thinking of an unknown type", {"thinking": {"type": "sometimes"}}, 400, "thinking.type", new=True),
    Row("messages", "tool_choice any", {"tools": ANTH_TOOLS, "tool_choice": {"type": "any"}}, 200),
    Row("messages", "tool_choice none", {"tools": ANTH_TOOLS, "tool_choice": {"type": "none"}}, 200),
    Row("messages", "tool_choice tool, one call", {"tools": ANTH_TOOLS, "tool_choice": {
        "type": "tool", "name": "get_current_weather", "disable_parallel_tool_use": True}}, 200),
    Row("messages", "tool_choice of an unknown type", {"tools": ANTH_TOOLS, "tool_choice": {"type": "sometimes"}}, 400,
        "tool_choice.type", new=True),
    Row("messages", "tool_choice tool without its name", {"tools": ANTH_TOOLS, "tool_choice": {"type": "tool"}}, 400,
        "tool_choice.name", new=True),
    Row("messages", "stop_sequences, metadata, top_k", {"stop_sequences": ["\n\nHuman:"], "metadata": {"user_id": "u"},
                                                        "top_k": 5}, 200),
    Row("messages", "image block", {"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}, {"type": "text", "text": "What?"}]}]},
        400, "messages[0].content[0].type"),
    Row("messages", "plain-text document block", {"messages": [{"role": "user", "content": [{"type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."}}, {"type": "text",
        "text": "Summarise."}]}]}, 200),
    Row("messages", "PDF document block", {"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}]}, 400,
        "messages[0].content[0].source"),
    Row("messages", "server tool", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, 400,
        "tools[0].type"),
    Row("messages", "no max_tokens", {"max_tokens": None}, 400, "max_tokens"),
    Row("messages", "NaN in a tool's input_schema", _raw("messages", b'"tools": [{"name": "f", "input_schema": '
        b'{"type": "object", "x": NaN}}]'), 400, "tools[0].input_schema.x", new=True),
    # -- Ollama
    Row("ollama_generate", "docs' every-option example, unknown keys too", {"options": {
        "num_keep": 5, "seed": 42, "num_predict": 100, "draft_num_predict": 4, "top_k": 20, "top_p": 0.9, "min_p": 0.0,
        "typical_p": 0.7, "repeat_last_n": 33, "temperature": 0.8, "repeat_penalty": 1.2, "presence_penalty": 1.5,
        "frequency_penalty": 1.0, "penalize_newline": True, "stop": ["\n", "user:"], "numa": False, "num_ctx": 1024,
        "num_batch": 2, "num_gpu": 1, "main_gpu": 0, "use_mmap": True, "num_thread": 8, "not_an_option": 1}}, 200),
    Row("ollama_generate", "raw", {"raw": True, "prompt": "<|im_start|>user\nHi<|im_end|>\n"}, 200),
    Row("ollama_generate", "a template without raw", {"template": "{{ .Prompt }}"}, 200),
    # Ollama's GenerateHandler: "raw mode does not support template, system, or context"
    Row("ollama_generate", "raw with a template", {"raw": True, "template": "{{ .Prompt }}"}, 400, "template",
        new=True),
    # the docs' "context": [1, 2, 3]: an earlier answer's token ids (the conversation so far), dropped without a word
    Row("ollama_generate", "context from an earlier answer", {"context": [1, 2, 3]}, 400, "context", new=True),
    Row("ollama_generate", "an empty context", {"context": []}, 200),
    Row("ollama_generate", "images", {"images": ["iVBORw0KGgo="]}, 400, "images"),
    Row("ollama_generate", "NaN in options", _raw("ollama_generate", b'"options": {"temperature": NaN}'), 400,
        "options.temperature", new=True),
    Row("ollama_chat", "format as a schema", {"format": WEATHER}, 200),
    Row("ollama_chat", "NaN in format's schema", _raw("ollama_chat", b'"format": {"type": "number", "maximum": NaN}'),
        400, "format.maximum", new=True),
    Row("ollama_chat", "keep_alive 5m", {"keep_alive": "5m"}, 200),
    Row("ollama_chat", "keep_alive -1", {"keep_alive": -1}, 200),
    Row("ollama_chat", "keep_alive 0", {"keep_alive": 0}, 200),
    Row("ollama_chat", "keep_alive 1.5h", {"keep_alive": "1.5h"}, 200),
    Row("ollama_chat", "keep_alive -1m", {"keep_alive": "-1m"}, 200),
    Row("ollama_chat", "keep_alive \"0\"", {"keep_alive": "0"}, 200),
    # api/types.go Duration.UnmarshalJSON: time.ParseDuration's error, or "unsupported duration type" (a 400)
    Row("ollama_chat", "keep_alive in words", {"keep_alive": "5 minutes"}, 400, "keep_alive", new=True),
    Row("ollama_chat", "keep_alive no duration", {"keep_alive": "abc"}, 400, "keep_alive", new=True),
    Row("ollama_chat", "keep_alive without a unit", {"keep_alive": "-1"}, 400, "keep_alive", new=True),
    Row("ollama_generate", "keep_alive a boolean", {"keep_alive": True}, 400, "keep_alive", new=True),
    Row("ollama_generate", "keep_alive past int64 nanoseconds", {"keep_alive": "3000000h"}, 400, "keep_alive",
        new=True),
    Row("ollama_chat", "think as a level", {"think": "high"}, 200),
    Row("ollama_chat", "think as an unknown word", {"think": "extreme"}, 400, "think", new=True),
    Row("ollama_chat", "tool call and tool_name", {"messages": [*HI, {"role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "get_current_weather", "arguments": {"location": "Oslo"}}}]},
        {"role": "tool", "content": "22C", "tool_name": "get_current_weather"}]}, 200),
    Row("ollama_chat", "images on a message", {"messages": [{"role": "user", "content": "What?",
                                                             "images": ["iVBORw0KGgo="]}]}, 400, "messages[0].images"),
]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[OpenAIServer, OllamaServer, AnthropicServer]]:
    with OpenAIServer(reply_text="Hello from fast.", tool_arguments={"location": "Boston"}) as oa, \
            OllamaServer(reply_text="Hello from backup.") as ol, \
            AnthropicServer(api_key=ANTHROPIC_KEY, reply_text="Hello from cloud.") as an:
        yield oa, ol, an


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: tuple[OpenAIServer, OllamaServer, AnthropicServer]
       ) -> Iterator[GatewayServer]:
    oa, ol, an = fakes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
        with GatewayServer(fake_config(tmp_path_factory.mktemp("shapes"), oa.url, ol.url, an.url)) as server:
            yield server


def _body(row: Row) -> bytes:
    if isinstance(row.extra, bytes):
        return row.extra
    merged = {**BASE[row.api], **row.extra}
    return json.dumps({k: v for k, v in merged.items() if v is not None}).encode()


def _error_text(api: str, error: Any) -> str:
    """The error's message, checked to be in the API's own shape."""
    if api.startswith("ollama"):
        assert isinstance(error["error"], str), error  # Ollama's {"error": "…"}
        return error["error"]
    if api == "messages":
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error", error
        return error["error"]["message"]
    assert isinstance(error["error"]["message"], str) and error["error"]["type"] == "invalid_request_error", error
    return error["error"]["message"]


def _sdk_reads(api: str, answer: dict[str, Any]) -> None:
    """The answer as the official SDK's own response type reads it."""
    if api == "chat":
        assert ChatCompletion.model_validate(answer).choices[0].message.role == "assistant"
    elif api == "responses":
        assert OpenAIResponse.model_validate(answer).status == "completed"
    elif api == "messages":
        assert AnthropicMessage.model_validate(answer).role == "assistant"
    elif api == "ollama_chat":
        assert ollama.ChatResponse.model_validate(answer).done
    else:
        assert ollama.GenerateResponse.model_validate(answer).done


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.api}: {r.name}" for r in ROWS])
def test_a_spec_shaped_request_is_served_or_refused_by_name(gw, row):
    r = httpx.post(gw.url + PATHS[row.api], content=_body(row), timeout=30,
                   headers={"content-type": "application/json", "anthropic-version": "2023-06-01"})
    assert r.status_code < 500, r.text[:400]
    assert r.status_code == row.status, r.text[:400]
    if row.status == 200:
        _sdk_reads(row.api, r.json())
        return
    message = _error_text(row.api, r.json())
    if row.field is not None:
        assert row.field in message, message
        if not row.api.startswith("ollama") and row.api != "messages":
            assert r.json()["error"]["param"] == row.field, r.text


@pytest.mark.parametrize(("options", "field"), [
    ({"temperature": "0.5"}, "options.temperature"),  # a number as a string: Ollama's decoder refuses it too
    ({"num_predict": "100"}, "options.num_predict"),
    ({"top_p": True}, "options.top_p"),
    ({"seed": [1]}, "options.seed"),
])
def test_an_ollama_option_of_the_wrong_type_is_named(gw, fakes, options, field):
    """NEW: Ollama decodes each option into its type and refuses another (api/types.go ``Options.FromMap``: "option %q
    must be of type float32"); here one that was no number was left out without a word — the model sampled at its own
    temperature, wrote past ``num_predict`` — and nothing reached the model to say so."""
    oa = fakes[0]
    before = len(oa.requests)
    r = httpx.post(gw.url + PATHS["ollama_generate"], json={**BASE["ollama_generate"], "options": options}, timeout=30)
    assert r.status_code == 400 and field in r.json()["error"], r.text
    assert len(oa.requests) == before  # refused before any model was asked


def test_an_ollama_integer_option_sent_as_a_whole_float_is_taken(gw, fakes):
    """NEW: ``num_predict: 100.0`` (what a client that keeps numbers as floats sends; Go reads it as 100) was left
    out, and the answer was not bounded."""
    oa = fakes[0]
    r = httpx.post(gw.url + PATHS["ollama_generate"], timeout=30,
                   json={**BASE["ollama_generate"], "options": {"num_predict": 100.0, "seed": 7.0}})
    assert r.status_code == 200, r.text
    sent = oa.last_request.json
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 100 and sent["seed"] == 7, sent


def test_a_chat_answer_has_every_field_the_spec_requires(gw):
    """NEW: CreateChatCompletionResponse (openai-openapi@f85dbe22) requires ``message.refusal`` (null when the model
    did not refuse): it was left out, which a client holding to the spec's required fields reads as a broken answer."""
    r = httpx.post(gw.url + PATHS["chat"], json=BASE["chat"], timeout=30)
    answer = r.json()
    assert {"choices", "created", "id", "model", "object"} <= answer.keys()
    choice = answer["choices"][0]
    assert {"finish_reason", "index", "message", "logprobs"} <= choice.keys()
    assert {"role", "content", "refusal"} <= choice["message"].keys() and choice["message"]["refusal"] is None


CHAT_BODY = json.dumps(BASE["chat"]).encode()


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", gzip.compress(CHAT_BODY[:20]) + gzip.compress(CHAT_BODY[20:])),  # two members: gzip -c a b
    ("gzip, gzip", gzip.compress(gzip.compress(CHAT_BODY))),  # codings in the order applied
    ("gzip", gzip.compress(CHAT_BODY) + b"\0" * 8),  # zeros after the member: padding, as before
])
def test_a_gzip_body_is_read_as_gunzip_reads_it(gw, encoding, body):
    """NEW (the first two): RFC 1952 §2.2 — a gzip file is its members one after another; RFC 9110 §8.4 — codings are
    listed in the order applied. Each was a 400 "not a JSON object" or "'gzip, gzip' is not supported"."""
    r = httpx.post(gw.url + PATHS["chat"], content=body, timeout=30,
                   headers={"content-type": "application/json", "content-encoding": encoding})
    assert r.status_code == 200, r.text[:300]
    assert ChatCompletion.model_validate(r.json()).choices[0].message.content == "Hello from fast."


@pytest.mark.parametrize("api", ["chat", "messages", "ollama_chat"])
@pytest.mark.parametrize(("codec", "said"), [("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE"),
                                             ("utf-32-le", "UTF-32LE"), ("utf-32-be", "UTF-32BE")])
def test_a_wide_body_without_a_byte_order_mark_is_told_to_be_utf_8(gw, api, codec, said):
    """NEW: RFC 8259 §8.1 — JSON between systems MUST be UTF-8; RFC 4627 §3 tells UTF-16/32 without a BOM by where the
    NUL bytes of the first two (ASCII) characters fall. Such a body (``iconv -t UTF-16LE``, .NET's ``Encoding.Unicode``
    with no preamble) got "not a JSON object (expected value at line 1 column 1)" or "(key must be a string at line 1
    column 2)", which said nothing of the encoding."""
    r = httpx.post(gw.url + PATHS[api], content=json.dumps(BASE[api]).encode(codec), timeout=30,
                   headers={"content-type": "application/json", "anthropic-version": "2023-06-01"})
    assert r.status_code == 400, r.text[:300]
    message = _error_text(api, r.json())
    assert said in message and "UTF-8" in message and "RFC 8259" in message, message


def _exchange(port: int, head: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    status_and_headers, _, body = out.partition(b"\r\n\r\n")
    return status_and_headers, body


FRAMING = {
    "two Content-Lengths": b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n%s",
    "Content-Length beside chunked": b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
    "a Content-Length that is no number": b"Content-Length: 12a%d\r\n\r\n%s",
}


@pytest.mark.parametrize("api", ["chat", "messages", "ollama_chat"])
@pytest.mark.parametrize("case", list(FRAMING))
def test_a_request_the_http_parser_refuses_gets_the_apis_error_shape(gw, api, case):
    """NEW: uvicorn answered these with a text/plain "Invalid HTTP request received." that named nothing and that no
    SDK reads as its API's error; now a JSON 400 in the shape of the API the path names, saying what was wrong."""
    body = json.dumps(BASE[api]).encode()
    fmt = FRAMING[case]
    framing = fmt % (len(body), body)
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n" % (
        PATHS[api].encode()) + framing
    status, answer = _exchange(gw.port, head)
    assert status.startswith(b"HTTP/1.1 400") and b"application/json" in status.lower(), status
    message = _error_text(api, json.loads(answer))
    assert "Content-Length" in message or "Transfer-Encoding" in message, message


@pytest.mark.parametrize(("path", "shape"), [("/v1/messages", "messages"), ("/api/chat", "ollama_chat"),
                                           ("/v1/responses", "responses")])
def test_a_method_not_served_is_the_clients_error_in_the_apis_shape(gw, path, shape):
    """NEW (Anthropic's): a GET of ``/v1/messages`` was typed ``api_error``, Anthropic's type for its own faults (its
    errors reference: 500 api_error; a request to mend is an invalid_request_error)."""
    r = httpx.get(gw.url + path, timeout=15)
    assert r.status_code == 405 and "use POST" in _error_text(shape, r.json()), r.text


def test_a_url_past_httptools_bound_is_named(gw):
    """NEW: a target longer than 64 KiB was answered "Invalid HTTP request received." (httptools' "User callback
    error" underneath); the reason now reaches the client."""
    status, answer = _exchange(gw.port, b"POST /v1/chat/completions?" + b"a" * 70_000
                               + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert status.startswith(b"HTTP/1.1 400"), status
    assert "url is too long" in json.loads(answer)["error"]["message"]


# -- the official SDKs on valid-but-unusual requests -------------------------------------------------------------------


def test_the_openai_sdk_reads_a_stream_with_usage_and_a_responses_stream(gw):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=15)
    chunks = list(client.chat.completions.create(
        model="coder", messages=[{"role": "developer", "content": "Be brief."}, *HI], stream=True,
        stream_options={"include_usage": True}, max_completion_tokens=50, seed=1, user="u", metadata={"k": "v"},
        store=False, logprobs=False))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from fast."
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    with client.responses.stream(model="coder", input="Hello!", instructions="Be brief.", store=False) as stream:
        assert stream.get_final_response().output_text == "Hello from fast."
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="coder", messages=HI, n=2)
    assert refused.value.param == "n"  # type: ignore[attr-defined]


def test_the_anthropic_sdk_reads_a_stream_with_system_blocks_and_thinking(gw):
    client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=15)
    with client.messages.stream(model="writer", max_tokens=2048, messages=HI, stop_sequences=["\n\nHuman:"],
                                system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    assert final.content[-1].type == "text" and final.content[-1].text == "Hello from cloud."
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="writer", max_tokens=64, messages=HI, tools=ANTH_TOOLS,  # type: ignore[arg-type]
                               tool_choice={"type": "tool"})  # type: ignore[typeddict-item]
    assert "tool_choice.name" in str(refused.value)


def test_the_ollama_client_reads_streams_with_every_keep_alive_form(gw):
    client = ollama.Client(host=gw.url, timeout=15)
    for keep_alive in ("5m", -1, 0, 1.5):
        parts = list(client.chat(model="coder", messages=HI, stream=True, keep_alive=keep_alive,
                                 format=WEATHER, options={"temperature": 0.2, "not_an_option": True}))
        assert "".join(p.message.content or "" for p in parts) == "Hello from fast." and parts[-1].done
    answer = client.generate(model="coder", prompt="Why is the sky blue?", system="Be brief.", keep_alive="1h30m")
    assert answer.response == "Hello from fast." and answer.done
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(model="coder", messages=HI, think="extreme")  # type: ignore[arg-type]
    assert refused.value.status_code == 400 and "think" in refused.value.error
