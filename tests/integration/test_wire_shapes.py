"""Bytes real servers send, replayed verbatim (``Fault.raw``) through the router: shapes our own fakes
never render, each with the server or thread it was seen in.

Each ends in the primary's answer (read as the server meant it), or in a fallback with the right
reason — never in a wrong answer that passes as right (a tool called by a doubled name, two calls
glued into one) — and always with its row in the routing log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message, ToolDefinition

REQ = ChatRequest(messages=[Message("user", "Weather in Paris and Rome?")], tools=[ToolDefinition("get_weather")])
SSE = {"content-type": "text/event-stream"}
DONE = "data: [DONE]\n\n"
OK = "ok"


def data(obj: Any) -> str:
    return "data: " + json.dumps(obj) + "\n\n"


def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> str:
    """One OpenAI-style ``chat.completion.chunk`` event."""
    return data({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


def call(**fields: Any) -> str:
    return chunk({"tool_calls": [fields]})


def fn(name: Any = None, arguments: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name is not None:
        out["name"] = name
    if arguments is not None:
        out["arguments"] = arguments
    return out


def ndjson(obj: Any) -> str:
    return json.dumps(obj) + "\n"


def message(content: str) -> dict[str, Any]:
    """One line of an Ollama /api/chat stream."""
    return {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": content}, "done": False}


def event(name: str, obj: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(obj)}\n\n"


ANTHROPIC_TEXT = "".join([
    event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}),
    event("ping", {"type": "ping"}),
    event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}),
    event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": "Sunny."}}),
    event("content_block_stop", {"type": "content_block_stop", "index": 0}),
])
MESSAGE_DELTA = event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                        "usage": {"output_tokens": 2}})
NDJSON = {"content-type": "application/x-ndjson"}
PARIS, ROME = {"city": "Paris"}, {"city": "Rome"}
TWO_CALLS = [("get_weather", PARIS), ("get_weather", ROME)]

JSON = {"content-type": "application/json"}
#: a whole chat.completion: what a server that ignores stream: true answers
WHOLE = {"id": "chatcmpl-1", "object": "chat.completion", "model": "local",
         "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                      "tool_calls": [{"id": c, "type": "function", "function": fn("get_weather", json.dumps(args))}
                                     for c, args in (("a", PARIS), ("b", ROME))]}}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 12}}

#: (name, wire format, the raw answer, what the primary's attempt ends in, the answer: text or tool calls)
SHAPES: list[tuple[str, str, Fault, str, Any]] = [
    # vLLM (vllm#18412): every fragment repeats the function name; it is one call to get_weather
    ("vllm_name_in_every_fragment", "openai", Fault.raw(
        200, chunk({"role": "assistant", "content": ""}),
        call(index=0, id="chatcmpl-tool-1", type="function", function=fn("get_weather", '{"city"')),
        call(index=0, function=fn("get_weather", ': "Paris"}')),
        chunk({}, "tool_calls"), DONE, headers=SSE), OK, [("get_weather", PARIS)]),
    # lmdeploy / vLLM parsers (lmdeploy#3412): parallel calls all at index 0, told apart by a new id
    ("parallel_calls_all_at_index_0", "openai", Fault.raw(
        200, call(index=0, id="call_a", type="function", function=fn("get_weather", "")),
        call(index=0, id="", function=fn(arguments='{"city": "Paris"}')),
        call(index=0, id="call_b", type="function", function=fn("get_weather", "")),
        call(index=0, id="", function=fn(arguments='{"city": "Rome"}')),
        chunk({}, "tool_calls"), DONE, headers=SSE), OK, TWO_CALLS),
    # Gemini's OpenAI endpoint and some proxies (AstrBot#6661): no index at all
    ("calls_without_index", "openai", Fault.raw(
        200, call(id="a", type="function", function=fn("get_weather", '{"city": "Paris"}')),
        call(id="b", type="function", function=fn("get_weather", '{"city": "Rome"}')),
        chunk({}, "tool_calls"), DONE, headers=SSE), OK, TWO_CALLS),
    ("arguments_as_an_object", "openai", Fault.raw(
        200, call(index=0, id="a", type="function", function=fn("get_weather", PARIS)),
        chunk({}, "tool_calls"), DONE, headers=SSE), OK, [("get_weather", PARIS)]),
    ("tool_call_fragment_not_an_object", "openai", Fault.raw(
        200, chunk({"tool_calls": ["get_weather"]}), chunk({}, "tool_calls"), DONE, headers=SSE),
     "malformed_response", None),
    ("tool_name_a_number", "openai", Fault.raw(
        200, call(index=0, id="a", function=fn(7, "{}")), chunk({}, "tool_calls"), DONE, headers=SSE),
     "malformed_response", None),
    # llama-server: "content": null in the first delta, its own timings object beside usage
    ("llama_server_null_content_and_timings", "openai", Fault.raw(
        200, chunk({"role": "assistant", "content": None}), chunk({"content": "Sunny."}),
        chunk({}, "stop", timings={"prompt_n": 9, "predicted_n": 2, "predicted_per_second": 21.4},
              usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}), DONE, headers=SSE),
     OK, "Sunny."),
    # llama-server while it loads the model: 503 with its own error object
    ("llama_server_loading_503", "openai", Fault.raw(
        503, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}',
        headers={"content-type": "application/json"}), "overloaded", None),
    ("error_object_is_a_list", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), data({"error": ["overloaded"]}), headers=SSE), "stream_error", None),
    # a reverse proxy's login page for a revoked key
    ("proxy_401_html", "openai", Fault.raw(
        401, "<html><head><title>401 Authorization Required</title></head><body>nginx</body></html>",
        headers={"content-type": "text/html"}), "auth_error", None),
    ("content_length_lie", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), headers={**SSE, "content-length": "5000"}), "connection_dropped", None),
    # slow lorises: keep-alive comments and never a token; one token, then a byte at a time, never a line
    ("keepalive_comments_and_no_token", "openai", Fault.raw(
        200, *[": keep-alive\n\n"] * 100, headers=SSE, interval=0.05), "first_token_timeout", None),
    ("a_byte_at_a_time_after_the_first_token", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), *[b"d", b"a"] * 50, headers=SSE, interval=0.1), "idle_timeout", None),
    # SSE lets one event's data span several data: lines (joined by newlines): pretty-printed JSON
    ("json_over_several_data_lines", "openai", Fault.raw(
        200, "".join(f"data: {line}\n" for line in json.dumps(
            {"choices": [{"index": 0, "delta": {"content": "Sunny."}, "finish_reason": "stop"}]}, indent=2
        ).split("\n")) + "\n", DONE, headers=SSE), OK, "Sunny."),
    ("a_broken_data_line_then_good_ones", "openai", Fault.raw(
        200, 'data: {"choices": [\n\n', chunk({"content": "Sunny."}, "stop"), DONE, headers=SSE),
     "malformed_response", None),
    ("json_nested_past_the_parsers_depth", "openai", Fault.raw(
        200, "data: " + "[" * 5000 + "]" * 5000 + "\n\n", DONE, headers=SSE), "malformed_response", None),
    # arguments orjson still parses (1024 levels) but nothing can write back from inside a request: a 500 at the
    # gateway, which re-serialises them; no real tool takes them
    ("tool_arguments_nested_1000_deep", "openai", Fault.raw(
        200, call(index=0, id="a", type="function", function=fn("get_weather", '{"a":' * 1000 + "1" + "}" * 1000)),
        chunk({}, "tool_calls"), DONE, headers=SSE), "malformed_response", None),
    # a server or proxy that ignores stream: true: the whole completion as one (here pretty-printed) JSON body
    ("whole_completion_instead_of_a_stream", "openai", Fault.raw(200, json.dumps(WHOLE, indent=2), headers=JSON), OK,
     TWO_CALLS),
    # llama-server before llama.cpp#16109 (Sept 2025) sent a mid-stream error as an "error:" field of its own (the
    # context filling up is the prompt's: test_native_protocols_round8)
    ("llama_server_error_field", "openai", Fault.raw(
        200, chunk({"content": "Sun"}),
        'error: {"code":500,"message":"Context size has been exceeded.","type":"server_error"}\n\n', headers=SSE),
     "bad_request", None),
    ("llama_server_error_field_other", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), 'error: {"code":500,"message":"Compute error.","type":"server_error"}\n\n',
        headers=SSE), "stream_error", None),
    # SSE's own error event, a flat error object as its data
    ("sse_error_event", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), 'event: error\ndata: {"message":"quota exceeded","code":429}\n\n',
        headers=SSE), "rate_limited", None),
    # vLLM when its engine aborts the request (shutdown, sleep, scale-down: vllm#57082): 200, then [DONE]
    ("vllm_finish_reason_abort", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), chunk({}, "abort"), DONE, headers=SSE), "stream_error", None),
    # a byte order mark opening the body (SSE says drop it; .NET servers write one)
    ("bom_before_the_event_stream", "openai", Fault.raw(
        200, "\ufeff" + chunk({"content": "Sunny."}), chunk({}, "stop"), DONE, headers=SSE), OK, "Sunny."),
    # the answer is whole (finish reason given); the connection is reset before [DONE]
    ("reset_after_the_finish_reason", "openai", Fault.raw(
        200, chunk({"content": "Sunny."}), chunk({}, "stop"), headers=SSE, end="drop"), OK, "Sunny."),
    ("reset_before_the_finish_reason", "openai", Fault.raw(
        200, chunk({"content": "Sun"}), headers=SSE, end="drop"), "connection_dropped", None),
    # a proxy compressing with an encoding the client never offered
    ("brotli_not_asked_for", "openai", Fault.raw(
        200, b"\x0b\x02\x80\x00", headers={**SSE, "content-encoding": "br"}), "malformed_response", None),
    ("ollama_bom", "ollama", Fault.raw(
        200, "\ufeff" + ndjson(message("Sunny.")), ndjson({"done": True, "done_reason": "stop"}),
        headers=NDJSON), OK, "Sunny."),
    # Anthropic: the stop reason came, message_stop did not (the connection closed or was reset)
    ("anthropic_close_before_message_stop", "anthropic", Fault.raw(
        200, ANTHROPIC_TEXT, MESSAGE_DELTA, headers=SSE), OK, "Sunny."),
    ("anthropic_reset_before_message_stop", "anthropic", Fault.raw(
        200, ANTHROPIC_TEXT, MESSAGE_DELTA, headers=SSE, end="drop"), OK, "Sunny."),
    ("anthropic_reset_before_the_stop_reason", "anthropic", Fault.raw(
        200, ANTHROPIC_TEXT, headers=SSE, end="drop"), "connection_dropped", None),
    ("anthropic_error_event_as_text", "anthropic", Fault.raw(
        200, ANTHROPIC_TEXT, event("error", {"type": "error", "error": "Overloaded"}), headers=SSE),
     "stream_error", None),
    # Ollama: not enough memory for the model, as a 500 with a string error: not worth asking again at once
    # (test_wire_shapes_round4: it rests instead; round 12: overloaded, the host's memory now, not a model missing)
    ("ollama_needs_more_memory", "ollama", Fault.raw(
        500, '{"error":"model requires more system memory (5.2 GiB) than is available (3.1 GiB)"}',
        headers={"content-type": "application/json"}), "overloaded", None),
]


def answer_of(routed: Any) -> Any:
    calls = routed.response.tool_calls
    return [(c.name, c.arguments) for c in calls] if calls else routed.response.text


@pytest.mark.parametrize(("name", "kind", "fault", "want", "expect"), SHAPES, ids=[s[0] for s in SHAPES])
async def test_raw_wire_shape(name: str, kind: str, fault: Fault, want: str, expect: Any,
                              servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811 - fixture
    servers[kind].push(fault)
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    first = routed.record.attempts[0]
    await router.aclose()
    writer.close()
    if want == OK:
        assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [("primary", "ok", None)]
        assert answer_of(routed) == expect
    else:
        assert (first.model, first.reason) == ("primary", want), (first.reason, first.detail)
        assert first.outcome in ("retry", "fallback")
        assert routed.record.outcome in ("ok", "fallback")  # answered all the same, by a retry or the backup
    rows = connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert rows == 1 and writer.health().failures == 0


async def test_a_redirect_is_not_followed_and_the_key_stays_home(servers: dict[str, Any],  # noqa: F811 - fixture
                                                                  tmp_path: Path) -> None:
    """A 307 from the Anthropic endpoint to another host: aiohttp would send the x-api-key along (it only
    drops Authorization). Not followed; the error says where it pointed; the chain moves on."""
    elsewhere = servers["backup"]
    servers["anthropic"].push(Fault.raw(307, "", headers={"location": elsewhere.url + "/v1/messages"}))
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    first = routed.record.attempts[0]
    assert (first.outcome, first.reason) == ("fallback", "model_missing")
    assert elsewhere.url + "/v1/messages" in first.detail
    assert routed.record.model == "backup"
    assert [r.path for r in elsewhere.requests] == ["/v1/chat/completions"]  # only the fallback's own call
    assert all("x-api-key" not in r.headers for r in elsewhere.requests)


async def test_a_key_the_server_echoes_back_never_reaches_the_log(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy's 401 or an error event that quotes the key: a key with no sk- prefix (vLLM's --api-key, a
    self-hosted proxy's token) matched no redaction pattern and was stored in the routing log."""
    from tests.fakes import OpenAIServer
    from tests.helpers import make_config

    from modelyard.ledger import LogWriter
    from modelyard.router import Router

    key = "correct-horse-battery-staple-1234"
    monkeypatch.setenv("ECHO_KEY", key)
    quoted = json.dumps({"error": {"message": f"Invalid API key: {key}", "type": "invalid_request_error"}})
    with OpenAIServer(models=["m"]) as primary, OpenAIServer(models=["b"]) as second, \
            OpenAIServer(models=["c"], reply_text="third") as third:
        primary.push(Fault.raw(401, quoted, headers={"content-type": "application/json"}))
        second.push(Fault.raw(200, chunk({"content": "Sun"}), data({"error": {"message": f"bad key {key}"}}),
                              headers=SSE))
        config = make_config(
            {name: {"provider": "openai", "model": name[0], "endpoint": server.url, "api_key_env": "ECHO_KEY"}
             for name, server in (("m1", primary), ("b2", second), ("c3", third))},
            {"agent": {"primary": "m1", "fallbacks": ["b2", "c3"]}}, defaults={"retries": {"attempts": 0}})
        writer = LogWriter(tmp_path / "log.db")
        router = Router(config, sink=writer.submit)
        routed = await router.complete("agent", ChatRequest(messages=[Message("user", "hi")]))
        await router.aclose()
        writer.close()
    assert [(a.reason, "***" in a.detail) for a in routed.record.attempts[:2]] == [("auth_error", True),
                                                                                  ("stream_error", True)]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in stored and routed.response.text == "third"


async def test_the_context_window_running_out_is_a_truncated_answer(servers: dict[str, Any],  # noqa: F811 - fixture
                                                                    tmp_path: Path) -> None:
    """Anthropic's stop reason model_context_window_exceeded (2025) is a cut-off answer, like max_tokens."""
    delta = event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "model_context_window_exceeded"},
                                    "usage": {"output_tokens": 2}})
    servers["anthropic"].push(Fault.raw(200, ANTHROPIC_TEXT, delta, event("message_stop", {"type": "message_stop"}),
                                        headers=SSE))
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert routed.response.text == "Sunny." and routed.response.truncated
    assert routed.record.finish_reason == "length"
