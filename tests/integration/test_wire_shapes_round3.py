"""A third outside-in pass over what servers send (helper-41's hunt): shapes the first two passes did not build,
each from the public spec or an issue thread of the server that sends it, replayed verbatim (``Fault.raw``)
through the router.

Each ends in the primary's answer read as the server meant it, or in a fallback with the right reason (and no
retry where the same bytes would come again), never in a wrong answer passed on as right, and always with one row
in the routing log. Each case here failed on the code before this pass (but the one marked as guarding a fix).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, NDJSON, SSE, call, chunk, event, fn, ndjson
from tests.integration.test_wire_shapes_outside_in import MESSAGE_START, MESSAGE_STOP, block, delta, message_delta

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message, ToolDefinition

REQ = ChatRequest(messages=[Message("user", "Weather in Paris?")], tools=[ToolDefinition("get_weather")])
PARIS = {"city": "Paris"}


async def route(kind: str, servers: dict[str, Any], tmp_path: Path, *faults: Fault) -> Any:  # noqa: F811
    return (await route_cooling(kind, servers, tmp_path, *faults))[0]


async def route_cooling(kind: str, servers: dict[str, Any], tmp_path: Path,  # noqa: F811
                        *faults: Fault) -> tuple[Any, float]:
    """The routed answer, and how long the primary cools down after it."""
    for fault in faults:
        servers[kind].push(fault)
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    cooling = router.pool.local("primary").health.seconds_left()
    await router.aclose()
    writer.close()
    rows = connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert rows == 1 and writer.health().failures == 0
    return routed, cooling


def outcomes(routed: Any) -> list[tuple[str, str, str | None]]:
    return [(a.model, a.outcome, a.reason) for a in routed.record.attempts]


# -- Anthropic-compatible tool calls ---------------------------------------------------------------------------

async def test_anthropic_tool_input_given_whole_in_block_start(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Anthropic-compatible servers and OpenAI-to-Anthropic adapters (Ollama's /v1/messages, crustly#38; antseed#15,
    gajae-code#1895) send the whole ``input`` in content_block_start and no input_json_delta. It was read as {}: a
    call with its arguments lost, passed on as a good answer."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(
        200, MESSAGE_START, block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": PARIS}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}), message_delta("tool_use"),
        MESSAGE_STOP, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == [("get_weather", PARIS, "toolu_1")]


async def test_anthropic_tool_input_deltas_win_over_the_start_input(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """Where both come (the documented shape has ``input: {}`` first), the streamed deltas are the arguments
    (guards the fix above)."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(
        200, MESSAGE_START, block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                      "input": {"city": "?"}}),
        delta(0, {"type": "input_json_delta", "partial_json": json.dumps(PARIS)}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}), message_delta("tool_use"),
        MESSAGE_STOP, headers=SSE))
    assert [c.arguments for c in routed.response.tool_calls] == [PARIS]


async def test_anthropic_tool_block_never_closed_is_still_the_call(servers: dict[str, Any],  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """A proxy that skips content_block_stop: the message ends whole (stop_reason tool_use, message_stop) but the
    call was dropped, and an answer that was only the call was refused as empty (or its text passed on alone)."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(
        200, MESSAGE_START, block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        delta(0, {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'}), message_delta("tool_use"),
        MESSAGE_STOP, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", PARIS)]


# -- an account that cannot pay ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "status", "body"), [
    # Anthropic documents 402 billing_error ("There's an issue with your billing or payment information")
    ("anthropic", 402, {"type": "error", "error": {"type": "billing_error", "message": "Your credit balance is too "
                                                                                      "low to access the API."}}),
    # OpenRouter: 402 when the key's credits run out
    ("openai", 402, {"error": {"message": "Insufficient credits. Add more using https://openrouter.ai/credits",
                               "code": 402}}),
    # OpenAI: a 429 that is no rate limit (no retry-after, waiting does not help) but an exhausted quota
    ("openai", 429, {"error": {"message": "You exceeded your current quota, please check your plan and billing "
                                          "details.", "type": "insufficient_quota", "param": None,
                               "code": "insufficient_quota"}}),
])
async def test_an_account_out_of_credit_cools_like_a_refused_key(kind: str, status: int, body: dict[str, Any],
                                                                 servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """It was a bad_request (asked again, and refused, on every request) or a rate limit (asked again at once, then
    cooled for the breaker's second): it lasts until someone pays, as a revoked key does until someone acts."""
    routed, cooling = await route_cooling(kind, servers, tmp_path, Fault.raw(status, json.dumps(body), headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "auth_error"), ("backup", "ok", None)]
    assert cooling > 4  # cooldown.max_seconds (5), not the breaker's 1 s


# -- tool-call arguments no wire can write back -----------------------------------------------------------------

@pytest.mark.parametrize(("kind", "raw"), [
    ("openai", [call(index=0, id="call_1", type="function", function=fn("get_weather", '{"temp": NaN}')),
                chunk({}, "tool_calls"), DONE]),
    ("openai", [call(index=0, id="call_1", type="function", function=fn("get_weather", '{"temp": -Infinity}')),
                chunk({}, "tool_calls"), DONE]),
    ("ollama", ['{"model":"qwen3.5:latest","message":{"role":"assistant","content":"","tool_calls":[{"function":'
                '{"name":"get_weather","arguments":{"temp":NaN}}}]},"done":false}\n',
                ndjson({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
                        "done_reason": "stop"})]),
])
async def test_nan_in_tool_arguments_is_malformed(kind: str, raw: list[str], servers: dict[str, Any],  # noqa: F811
                                                  tmp_path: Path) -> None:
    """NaN and Infinity are not JSON, though Python's parser takes them: the chat completions wire passed
    ``{"temp": NaN}`` on as arguments JSON.parse refuses, the Anthropic and Ollama wires as ``null`` (another value
    than the model's, passed on as its own)."""
    routed = await route(kind, servers, tmp_path, Fault.raw(200, *raw, headers=SSE if kind == "openai" else NDJSON))
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)]


async def test_a_lone_surrogate_in_tool_arguments_is_repaired(servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path) -> None:
    """A JavaScript server's lone UTF-16 half (``\\ud83d`` without its pair) in a string argument: U+FFFD, as in
    text. Left as it was, every orjson writer refused it (the gateway's Ollama stream answered 500)."""
    args = '{"city": "Paris \\ud83d", "note": "\\ud83d\\ude00"}'
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, call(index=0, id="call_1", type="function", function=fn("get_weather", args)), chunk({}, "tool_calls"),
        DONE, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.tool_calls[0].arguments == {"city": "Paris \ufffd", "note": "\U0001f600"}


# -- bodies that end as the server framed them ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["openai", "ollama", "anthropic"])
@pytest.mark.parametrize(("name", "fault"), [
    ("content_length_0", Fault.raw(200, headers={**SSE, "content-length": "0"})),
    ("chunked_without_chunks", Fault.raw(200, headers=SSE)),
    ("no_content_204", Fault.raw(204)),
])
async def test_an_empty_body_is_no_answer_and_not_asked_again(kind: str, name: str, fault: Fault,
                                                              servers: dict[str, Any],  # noqa: F811
                                                              tmp_path: Path) -> None:
    """A 200 (or 204) whose framing says the body is empty was connection_dropped: asked again (the same nothing
    came), and the model counted as dropping connections. The server ended it as it meant to: malformed, next
    model. (A body that ends by a close alone stays connection_dropped: it cannot be told from a crash.) An
    OpenAI-compatible event stream framed empty is asked once more whole (fifth hunt: llama_cpp.server says why
    only so), and here gets the same nothing."""
    routed = await route(kind, servers, tmp_path, *((fault, fault) if kind == "openai" else (fault,)))
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)], \
        routed.record.attempts[0].detail


@pytest.mark.parametrize("kind", ["openai", "ollama", "anthropic"])
async def test_a_body_whose_encoding_does_not_decode_is_malformed(kind: str, servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """gzip that does not decode (a proxy that cut it, or compressed twice): it was connection_dropped and asked
    again for the same bytes."""
    broken = gzip.compress(b"data: x\n\n" * 200)[:30] + b"\x00" * 40
    routed = await route(kind, servers, tmp_path, Fault.raw(
        200, broken, headers={**SSE, "content-encoding": "gzip", "content-length": str(len(broken))}))
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)], \
        routed.record.attempts[0].detail


# -- a server's error message of any size ------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "fault"), [
    # LiteLLM's errors quote the request they failed ("Received Messages=[...]"): as long as the prompt
    ("openai", Fault.raw(200, chunk({"content": "Sun"}), 'data: {"error": {"message": "litellm.APIError: '
                         + "x" * 15_000 + '", "type": "None", "code": "500"}}\n\n', headers=SSE)),
    ("anthropic", Fault.raw(200, MESSAGE_START, event("error", {"type": "error", "error": {
        "type": "api_error", "message": "y" * 15_000}}), headers=SSE)),
    ("ollama", Fault.raw(200, ndjson({"error": "z" * 15_000}), headers=NDJSON)),
    ("openai", Fault.raw(400, json.dumps({"error": {"message": "w" * 15_000, "type": "invalid_request_error"}}),
                         headers=JSON)),
])
async def test_a_huge_error_message_is_kept_short(kind: str, fault: Fault, servers: dict[str, Any],  # noqa: F811
                                                  tmp_path: Path) -> None:
    """It went whole into each attempt's row (once per retry), the attempts an exhausted chain's error lists, and
    the logs: half a megabyte per attempt here."""
    routed = await route(kind, servers, tmp_path, fault, fault)
    first = routed.record.attempts[0]
    assert first.model == "primary" and 100 < len(first.detail) < 1100, len(first.detail)
    stored = connect(tmp_path / "log.db").execute("SELECT MAX(LENGTH(detail)) FROM attempts").fetchone()[0]
    assert stored < 1100


# -- a whole Anthropic message where a stream was asked for ---------------------------------------------------------

WHOLE_MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                 "content": [{"type": "thinking", "thinking": "Paris in June.", "signature": "EqQB"},
                             {"type": "text", "text": "Sunny."},
                             {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": PARIS}],
                 "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 7}}


async def test_a_whole_anthropic_message_where_a_stream_was_asked_for(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """A server or proxy that ignores ``stream: true`` (a caching proxy, an Anthropic-compatible endpoint that only
    answers whole) answers one JSON message: it was malformed_response, while the OpenAI-compatible provider reads
    the same from its servers. Read as the server meant it: text, thinking apart, the call, the usage."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(200, json.dumps(WHOLE_MESSAGE), headers=JSON))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert (routed.response.text, routed.response.thinking) == ("Sunny.", "Paris in June.")
    assert [(c.name, c.arguments, c.id) for c in routed.response.tool_calls] == [("get_weather", PARIS, "toolu_1")]
    assert (routed.record.tokens_in, routed.record.tokens_out) == (9, 7)


@pytest.mark.parametrize(("body", "want"), [
    ({**WHOLE_MESSAGE, "stop_reason": "pause_turn"}, "unusable_reply"),
    ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "overloaded"),
    ({**WHOLE_MESSAGE, "content": "Sunny."}, "malformed_response"),
])
async def test_a_whole_anthropic_message_is_judged_as_a_stream_is(body: dict[str, Any], want: str,
                                                                  servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """A paused turn is half an answer here too (it passed as one); an error object and content that is not a list of
    blocks are refused as before (these two guard the new reading)."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(200, json.dumps(body), headers=JSON),
                         Fault.raw(200, json.dumps(body), headers=JSON))
    assert routed.record.attempts[0].reason == want and routed.record.model == "backup"


@pytest.mark.parametrize(("kind", "fault"), [
    ("openai", Fault.raw(200, chunk({"content": "Sun"}), 'data: {"error": {"message": "cut \\ud83d", "type": "x"}}\n\n',
                         headers=SSE)),
    ("openai", Fault.raw(400, '{"error": {"message": "cut \\udc00", "type": "\\ud800"}}', headers=JSON)),
    ("anthropic", Fault.raw(200, MESSAGE_START, 'event: error\ndata: {"type": "error", "error": {"type": '
                            '"api_error", "message": "cut \\ud83d"}}\n\n', headers=SSE)),
    ("ollama", Fault.raw(200, '{"error": "cut \\ud83d"}\n', headers=NDJSON)),
])
async def test_a_lone_utf16_half_in_an_error_message_is_no_log_failure(kind: str, fault: Fault,
                                                                        servers: dict[str, Any],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """A JavaScript server's error text cut inside an emoji (a lone ``\\ud83d`` in its JSON): SQLite refused the
    attempt's row (a log failure in /healthz, the row written only after the writer repaired it). Now U+FFFD, as in
    answers; route() checks the writer saw no failure."""
    routed = await route(kind, servers, tmp_path, fault, fault)
    assert "cut \ufffd" in routed.record.attempts[0].detail


@pytest.mark.parametrize(("kind", "raw"), [
    ("openai", [chunk({"content": "Sunny."}), 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop'
                                              '\\ud83d"}]}\n\n', DONE]),
    ("ollama", ['{"model":"q","message":{"role":"assistant","content":"Sunny."},"done":true,"done_reason":"'
                + "s" * 5000 + '\\ud83d"}\n']),
])
async def test_an_odd_finish_reason_is_no_log_failure(kind: str, raw: list[str], servers: dict[str, Any],  # noqa: F811
                                                      tmp_path: Path) -> None:
    """The finish reason is the server's word, kept in the log: a lone UTF-16 half made SQLite refuse the row, and
    a reason of kilobytes went whole into it. Repaired and kept short; the answer stands."""
    routed = await route(kind, servers, tmp_path, Fault.raw(200, *raw, headers=SSE if kind == "openai" else NDJSON))
    assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert len(routed.record.finish_reason or "") <= 64


# -- tool-call arguments sent again whole ------------------------------------------------------------------------

def _call(args: str, first: bool = False) -> str:
    return (call(index=0, id="call_1", type="function", function=fn("get_weather", args)) if first
            else call(index=0, function=fn(arguments=args)))


@pytest.mark.parametrize(("name", "pieces"), [
    # DeepSeek's and Baidu Qianfan's cumulative mode: every piece is the arguments so far (hermes-agent#35718)
    ("cumulative", [_call("", True), _call('{"city"'), _call('{"city": "Par'), _call('{"city": "Paris"}')]),
    # Gemini's OpenAI endpoint: a {} placeholder, then the whole arguments (autogen#7549)
    ("placeholder_then_whole", [_call("{}", True), _call('{"city": "Paris"}')]),
    # Mistral's API (with the id and name) and GLM-style servers: the whole arguments, then again (opencode#17339)
    ("whole_twice", [_call('{"city": "Paris"}', True), _call('{"city": "Paris"}')]),
])
async def test_arguments_sent_again_whole_are_read_once(name: str, pieces: list[str], servers: dict[str, Any],  # noqa: F811
                                                        tmp_path: Path) -> None:
    """Joined, they were no JSON (``{}{"city": "Paris"}``): malformed_response, so these servers could never call a
    tool. The last piece is the arguments when it is whole and the earlier ones are its start or objects of their
    own."""
    routed = await route("openai", servers, tmp_path, Fault.raw(200, *pieces, chunk({}, "tool_calls"), DONE,
                                                                headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", PARIS)]


async def test_arguments_that_are_broken_stay_as_written(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Guards the reading above: pieces that join into no JSON and are no resend of a whole are not read as one —
    the call carries them as written, for the agent loop's repair or the gateway's client (they were
    malformed_response, the next model asked, before arguments that are no JSON became a call to repair)."""
    routed = await route("openai", servers, tmp_path, Fault.raw(
        200, _call('{"city": "Paris"', True), _call("}}"), chunk({}, "tool_calls"), DONE, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    [call] = routed.response.tool_calls
    assert (call.arguments, call.raw) == ({}, '{"city": "Paris"}}')
    assert call.invalid.startswith("not valid JSON (Extra data")


# -- a control-plane answer that never ends -------------------------------------------------------------------------

async def test_a_model_listing_that_never_ends_is_bounded_in_size(tmp_path: Path) -> None:
    """/v1/models answered with an endless body (a wrong port, a broken proxy): the control plane read it whole
    within its 3 s bound, gigabytes a second on loopback. Now refused past 32 MB, its memory bounded by that."""
    import asyncio
    import tracemalloc

    from tests.helpers import make_config

    from modelyard.providers.openai import OpenAIProvider

    piece = b"100000\r\n" + b"[" * 0x100000 + b"\r\n"  # chunked pieces of 1 MiB, forever

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(piece)
                await writer.drain()
        except ConnectionError:
            pass

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    config = make_config({"m": {"provider": "openai", "model": "local", "endpoint": endpoint}},
                         {"agent": {"primary": "m"}})
    provider = OpenAIProvider("m", config.models["m"])
    tracemalloc.start()
    try:
        window = await asyncio.wait_for(provider.context_window(), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await provider.aclose()
        server.close()
    assert window.trained is None and "response_too_large" in window.source, window
    assert peak < 3 * 32 * 2**20, f"{peak / 2**20:.0f} MB held"


# -- usage reported where the spec allows it -------------------------------------------------------------------------

async def test_anthropic_input_tokens_reported_in_message_delta_are_billed(servers: dict[str, Any],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """message_delta's usage is cumulative, as documented; LiteLLM's proxy and SGLang send input_tokens 0 in
    message_start and the prompt's count only there (paseo#4295, sglang#33419). It was logged as 0 input tokens: the
    cost and the spend caps read from the log saw none of the prompt."""
    start = event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 0,
                                                                                   "output_tokens": 0}}})
    routed = await route("anthropic", servers, tmp_path, Fault.raw(
        200, start, block(0, {"type": "text", "text": ""}), delta(0, {"type": "text_delta", "text": "Sunny."}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                "usage": {"input_tokens": 74, "output_tokens": 62}}), MESSAGE_STOP, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert (routed.record.tokens_in, routed.record.tokens_out) == (74, 62)


# -- a history begun by another model ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "ids"), [
    # Kimi K2's ids through vLLM ("functions.<name>:<n>"): '.' and ':' are outside the API's pattern
    ("kimi_ids", ["functions.get_weather:0", "functions.get_weather:1"]),
    # Ollama gives its tool calls no id (and its tool results answer by name)
    ("ollama_no_ids", ["", ""]),
])
async def test_claude_takes_over_a_tool_conversation_begun_by_another_model(
        name: str, ids: list[str], servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The fallback to Claude is there to take over, but the history's ids came from another model, and the API
    refuses an id outside ^[a-zA-Z0-9_-]+$ or a tool_result that answers no tool_use: a 400 (bad_request) on every
    such turn (the fake checks both, with the API's wording). The ids are made valid, missing ones made up and paired
    with their results in order."""
    from modelyard.types import ToolCall

    calls = [ToolCall("get_weather", {"city": city}, call_id) for city, call_id in zip(("Paris", "Rome"), ids,
                                                                                       strict=True)]
    history = ChatRequest(messages=[
        Message("user", "Weather in Paris and Rome?"), Message("assistant", "", tool_calls=calls),
        Message("tool", "sunny", tool_call_id=ids[0], name="get_weather"),
        Message("tool", "rainy", tool_call_id=ids[1], name="get_weather"),
    ], tools=[ToolDefinition("get_weather")])
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", history)
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    sent = servers["anthropic"].requests[-1].json["messages"]
    uses = [b["id"] for b in sent[1]["content"] if b["type"] == "tool_use"]
    assert [b["tool_use_id"] for b in sent[2]["content"]] == uses and len(set(uses)) == 2


async def test_an_openai_compatible_model_takes_over_a_tool_conversation_begun_on_ollama(
        servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Ollama's calls and results carry no id: the calls were sent as call_0, call_1 and the results with an empty
    tool_call_id, which OpenAI's API refuses ('messages with role 'tool' must be a response to a preceeding message
    with 'tool_calls'', checked by the fake as it does). Each result now names its call, in order."""
    from modelyard.types import ToolCall

    calls = [ToolCall("get_weather", {"city": "Paris"}, ""), ToolCall("get_weather", {"city": "Rome"}, "")]
    history = ChatRequest(messages=[
        Message("user", "Weather in Paris and Rome?"), Message("assistant", "", tool_calls=calls),
        Message("tool", "sunny", name="get_weather"), Message("tool", "rainy", name="get_weather"),
    ], tools=[ToolDefinition("get_weather")])
    router, writer = router_for("openai", servers, tmp_path / "log.db")
    routed = await router.complete("agent", history)
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)], routed.record.attempts[0].detail
    sent = servers["openai"].requests[-1].json["messages"]
    assert [m["tool_call_id"] for m in sent[2:]] == [c["id"] for c in sent[1]["tool_calls"]]
