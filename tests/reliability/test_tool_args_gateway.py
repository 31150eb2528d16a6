"""Tool-call arguments a server sends that a client could not read back, through the gateway's four APIs
(helper-41's hunt): whatever the arguments hold, the client gets strict JSON (no NaN, no lone UTF-16 half), never
a 500 — the Ollama stream answered a lone surrogate with a 500 and a traceback — and NaN, which is not JSON, is
not passed on as the model's answer (as ``NaN`` in chat completions, as ``null`` in the Anthropic and Ollama APIs).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.fakes import Fault
from tests.reliability.test_fault_shapes_gateway import fakes, gateway  # noqa: F401 - fixtures

SSE = {"content-type": "text/event-stream"}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
#: api -> (path, request body for stream true/false)
APIS: dict[str, tuple[str, Any]] = {
    "chat": ("/v1/chat/completions", lambda stream: {
        "model": "coder", "stream": stream, "tools": [TOOL], "messages": [{"role": "user", "content": "w?"}]}),
    "responses": ("/v1/responses", lambda stream: {
        "model": "coder", "stream": stream, "input": "w?",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}),
    "messages": ("/v1/messages", lambda stream: {
        "model": "coder", "stream": stream, "max_tokens": 100, "messages": [{"role": "user", "content": "w?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}),
    "ollama": ("/api/chat", lambda stream: {
        "model": "coder", "stream": stream, "tools": [TOOL], "messages": [{"role": "user", "content": "w?"}]}),
}


def tool_call_stream(arguments: str) -> Fault:
    frag = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": arguments}}
    return Fault.raw(200, "data: " + json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [frag]},
                                                             "finish_reason": None}]}) + "\n\n",
                     'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
                     "data: [DONE]\n\n", headers=SSE)


def strict(text: str) -> Any:
    """JSON as JavaScript's JSON.parse reads it: no NaN/Infinity, and every string encodable as UTF-8."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")
    value = json.loads(text, parse_constant=refuse)
    json.dumps(value, ensure_ascii=False).encode()  # a lone surrogate fails here
    return value


def documents(r: httpx.Response) -> list[Any]:
    """Every JSON document of a response: the body, each SSE data line, or each NDJSON line."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return [strict(line[6:]) for line in r.text.splitlines() if line.startswith("data: ") and line[6:] != "[DONE]"]
    return [strict(line) for line in r.text.splitlines() if line.strip()]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", list(APIS))
def test_a_lone_surrogate_in_arguments_reaches_the_client_repaired(gateway, fakes, api, stream):  # noqa: F811
    fakes[0].push(tool_call_stream('{"city": "Paris \\ud83d"}'))
    path, body = APIS[api]
    r = httpx.post(gateway.url + path, json=body(stream), timeout=30, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text[-300:]
    assert "fast ok" in r.headers["x-modelyard-route"]
    shown = json.dumps(documents(r), ensure_ascii=False)  # the call's broken half as U+FFFD: in an object, or
    assert "Paris \ufffd" in shown or "Paris \\\\ufffd" in shown  # escaped in an arguments string


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", list(APIS))
def test_nan_in_arguments_is_not_passed_on(gateway, fakes, api, stream):  # noqa: F811
    fakes[0].push(tool_call_stream('{"temp": NaN}'))
    path, body = APIS[api]
    r = httpx.post(gateway.url + path, json=body(stream), timeout=30, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text[-300:]
    assert "fast fallback malformed_response" in r.headers["x-modelyard-route"]
    assert r.headers["x-modelyard-model"] == "backup"
    documents(r)


CUT_OFF = '{"city": "Par'


def arguments_seen(api: str, docs: list[Any]) -> Any:
    """The tool call's arguments as the client reads them, from a whole answer or a stream's events."""
    if api == "chat":
        calls = [c for d in docs for c in (d["choices"][0].get("message") or d["choices"][0].get("delta") or {})
                 .get("tool_calls") or []] if docs and "choices" in docs[0] else []
        return "".join(c["function"].get("arguments") or "" for c in calls)
    if api == "responses":
        items = [i for d in docs for i in (d.get("output") or d.get("response", {}).get("output") or [])]
        return next(i["arguments"] for i in items if i.get("type") == "function_call")
    if api == "messages":
        blocks = [b for d in docs for b in d.get("content") or []]
        if blocks:
            return next(b["input"] for b in blocks if b["type"] == "tool_use")
        return json.loads("".join(d["delta"]["partial_json"] for d in docs
                                  if d.get("type") == "content_block_delta"
                                  and d["delta"].get("type") == "input_json_delta"))
    calls = [c for d in docs for c in d.get("message", {}).get("tool_calls") or []]
    return calls[0]["function"]["arguments"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", list(APIS))
def test_arguments_that_are_no_json_reach_the_client_as_written(gateway, fakes, api, stream):  # noqa: F811
    """A small model's cut-off arguments were malformed_response (next model; with one, "no model could answer").
    Like vLLM and llama.cpp's server, the gateway now passes them on as the model wrote them (the client's SDK or
    agent repairs); a wire whose arguments must be an object gets Anthropic's ``{"INVALID_JSON": text}``."""
    fakes[0].push(tool_call_stream(CUT_OFF))
    path, body = APIS[api]
    r = httpx.post(gateway.url + path, json=body(stream), timeout=30, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text[-300:]
    assert "fast ok" in r.headers["x-modelyard-route"]
    seen = arguments_seen(api, documents(r))
    assert seen == (CUT_OFF if api in ("chat", "responses") else {"INVALID_JSON": CUT_OFF})


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_client_sending_such_a_call_back_is_not_refused(gateway, fakes, api):  # noqa: F811
    """The client's next turn carries the call as it got it, with its error result: taken, not a 400 — or the
    repair could never happen. The model is shown its text inside an object every server reads."""
    if api == "chat":
        body = {"model": "coder", "tools": [TOOL], "messages": [
            {"role": "user", "content": "w?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": CUT_OFF}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "error: arguments are not valid JSON"}]}
    else:
        body = {"model": "coder", "input": [
            {"role": "user", "content": "w?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": CUT_OFF},
            {"type": "function_call_output", "call_id": "call_1", "output": "error: arguments are not valid JSON"}]}
    r = httpx.post(gateway.url + APIS[api][0], json=body, timeout=30)
    assert r.status_code == 200, r.text[-300:]
    sent = [m for m in fakes[0].requests_to("/v1/chat/completions")[-1].json["messages"] if m.get("tool_calls")]
    assert json.loads(sent[0]["tool_calls"][0]["function"]["arguments"]) == {"INVALID_JSON": CUT_OFF}
