"""A ninth outside-in pass (hunt9): what the eighth left open, and provider faults the fakes never produced. Each is
the server's own, taken from its source or an issue thread where its users met it (cited per test), replayed verbatim
(``Fault.raw``) through the router.

- a whole answer whose end marker never comes, on a connection kept open (bifrost#6784): lost once per server and
  process before, now kept the first time too;
- OpenRouter's 404 "No endpoints found that support tool use" (and its tool_choice and parameter forms): a
  property of the request, not of the model's presence;
- heads aiohttp refused and the official SDKs' parser (h11) reads: a field past 8,190 bytes, more than 128 fields, a
  ``content-length`` given twice (or as a list) with one value;
- an Anthropic event whose JSON spans several ``data:`` lines (sse-starlette writes one per line of the payload);
- a chat template that cannot render the request (a later system message under Qwen's template, Ollama's template
  errors), said as a 500;
- LocalAI's 500 for a model none of its backends can load.

Each failed on the code before this pass; the guards marked so held already.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import KEY, _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, SSE, chunk
from tests.integration.test_wire_shapes_round3 import REQ, outcomes, route_cooling
from tests.integration.test_wire_shapes_round4 import ANTHROPIC_EVENTS, _Endpoint, _requests, _start, _stop

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message

PLAIN = ChatRequest(messages=[Message("user", "Say hello")])


def _rows(tmp_path: Path) -> int:
    return int(connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0])


async def _routed(kind: str, servers: dict[str, Any], tmp_path: Path, *requests: ChatRequest) -> list[Any]:  # noqa
    """Each request routed in turn by one router (closed after, whatever happened)."""
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    try:
        return [await router.complete("agent", request) for request in requests]
    finally:
        await router.aclose()
        writer.close()


# -- an end marker that never comes, on a connection kept open --------------------------------------------------------

@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_whole_answer_whose_end_marker_never_comes_is_kept_the_first_time(kind: str,
                                                                                  servers: dict[str, Any],  # noqa: F811
                                                                                  tmp_path: Path) -> None:
    """A proxy whose upstream leaves ``[DONE]`` out keeps the connection open and sends keep-alive comments
    (bifrost#6784); an Anthropic-compatible one, ``message_stop``. The answer was whole (its finish reason came) and
    was lost to the idle bound; since the fourth hunt that first loss taught a short grace for the server's later
    answers, but the first answer per server and process was still lost (a fallback, or a committed stream ended by
    an error event after its whole text). Now the end is waited for half the idle bound at most — keep-alive comments
    do not move that on — the answer is kept, and the short grace is learned for the next."""
    if kind == "openai":
        body = [chunk({"role": "assistant", "content": "Sunny."}),  # the finish and the usage in one write
                chunk({}, "stop") + 'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}\n\n']
    else:
        body = [*ANTHROPIC_EVENTS[:-1]]  # no message_stop
    fault = Fault.raw(200, *body, *[": keep-alive\n\n"] * 40, headers=SSE, end="hang", interval=0.1)
    servers[kind].push(fault, fault)
    router, writer = router_for(kind, servers, tmp_path / "log.db")  # idle bound 2 s
    client = router.providers["primary"].client  # type: ignore[attr-defined]
    try:
        first = await router.complete("agent", REQ)
        learned = client.no_end_marker
        second = await router.complete("agent", REQ)
    finally:
        await router.aclose()
        writer.close()
    for routed in (first, second):
        assert outcomes(routed) == [("primary", "ok", None)]
        assert routed.response.text == "Sunny." and routed.record.tokens_out == (2 if kind == "openai" else 7)
    assert first.record.total_ms >= 900  # the first waited out its grace (half the idle bound) through the comments
    assert learned  # and the next was read with the short one
    assert _rows(tmp_path) == 2


async def test_a_finish_reason_on_every_chunk_is_not_taken_for_the_end(servers: dict[str, Any],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Guard (held before; the grace above must not break it): servers that put a finish reason on every chunk —
    LiteLLM relaying Gemini (litellm#2195: ``finish_reason='stop'`` on each), Open WebUI on its reasoning chunks
    (open-webui#16377) — are read to their real end: data after a finish reason moves the grace on."""
    fault = Fault.raw(200, chunk({"role": "assistant", "content": "Sun"}, "stop"), chunk({"content": "ny"}, "stop"),
                      chunk({"content": "."}, "stop"), DONE, headers=SSE, interval=0.2)
    servers["openai"].push(fault)
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."


# -- OpenRouter: no upstream of the model takes what the request holds ------------------------------------------------

@pytest.mark.parametrize("said", [
    # a model without tool calling, asked with tools (fast-agent#122, mastra#2839, home-assistant.io#41145,
    # pydantic-ai#2896: {"error": {"message": "No endpoints found that support tool use. …", "code": 404}})
    "No endpoints found that support tool use. To learn more about provider routing, visit: "
    "https://openrouter.ai/docs/provider-routing",
    # zed#36094
    "No endpoints found that support the provided 'tool_choice' value. To learn more about provider routing, visit: "
    "https://openrouter.ai/docs/provider-routing",
    # a parameter no upstream of the model advertises (response_format, parallel_tool_calls)
    "No endpoints found that can handle the requested parameters.",
], ids=["tool_use", "tool_choice", "parameters"])
async def test_openrouters_no_endpoint_for_the_request_is_the_requests_not_the_models(said: str,
                                                                                     servers: dict[str, Any],  # noqa
                                                                                     tmp_path: Path) -> None:
    """OpenRouter answers 404 when no upstream of the model takes the request's tools, tool_choice or parameters. As a
    404 it was model_missing: the model cooled for ``cooldown.max_seconds`` and every request skipped it — those
    without tools, which it answers, too. It is the request's, as Ollama's 400 "does not support tools" is: the next
    model takes this one, and the model stays in service."""
    servers["openai"].push(Fault.raw(404, json.dumps({"error": {"message": said, "code": 404}}), headers=JSON))
    with_tools, plain = await _routed("openai", servers, tmp_path, REQ, PLAIN)
    assert outcomes(with_tools) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert said[:40] in with_tools.record.attempts[0].detail
    assert outcomes(plain) == [("primary", "ok", None)]  # was skipped: cooling_down
    assert _rows(tmp_path) == 2


async def test_openrouters_data_policy_refusal_still_cools_the_model(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """Guard: "No endpoints found matching your data policy" is the account's privacy setting, the same for every
    request to the model: it still cools it as a model not there."""
    said = ("No endpoints found matching your data policy (Free model publication). Configure: "
            "https://openrouter.ai/settings/privacy")
    servers["openai"].push(Fault.raw(404, json.dumps({"error": {"message": said, "code": 404}}), headers=JSON))
    [routed] = await _routed("openai", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]


# -- response heads the official SDKs read and aiohttp refused --------------------------------------------------------

ANSWER = (chunk({"role": "assistant", "content": "Sunny."}) + chunk({}, "stop") + DONE).encode()


@pytest.mark.parametrize("fields", [
    # one field past aiohttp's 8,190 bytes: a BentoML runner's Payload-Meta (BentoML#4346; aiohttp#2304, #3862)
    b"payload-meta: " + b"a" * 9000 + b"\r\n",
    # more than aiohttp's 128 fields
    b"".join(b"x-trace-%d: on\r\n" % i for i in range(150)),
    # content-length twice with one value (a server adding its own beside the application's: nodejs/node#6517,
    # libhtp#73, libmicrohttpd#15); RFC 9110 §8.6 lets a recipient read it as one
    b"content-length: %d\r\nx-served-by: edge\r\n" % len(ANSWER),
    # the two joined into a list by a proxy
    None,
], ids=["long_field", "many_fields", "length_twice", "length_list"])
async def test_a_head_the_official_clients_read_is_read(fields: bytes | None, servers: dict[str, Any],  # noqa: F811
                                                       tmp_path: Path) -> None:
    """aiohttp refused each of these heads ("Got more than 8190 bytes when reading", "Too many headers received",
    "Duplicate Content-Length", "Invalid character in Content-Length"): malformed_response on every request, the model
    behind that server or proxy never used. The official ``openai`` client (httpx over h11) reads them, and now so
    does modelyard; two lengths that differ stay refused (the body's end is not known)."""
    length = b"content-length: %d, %d\r\n" % (len(ANSWER), len(ANSWER)) if fields is None else (
        fields + b"content-length: %d\r\n" % len(ANSWER))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n" + length + b"\r\n" + ANSWER)
            await writer.drain()

    server = await _start(handle)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        answers = await _routed("openai", {**servers, "openai": _Endpoint(endpoint)}, tmp_path, PLAIN, PLAIN)

        def read_with_the_official_client() -> str:  # in a thread: the server runs on this loop
            stream = openai.OpenAI(base_url=endpoint + "/v1", api_key="sk-none", max_retries=0,
                                   timeout=10).chat.completions.create(
                model="local", messages=[{"role": "user", "content": "Hi"}], stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        official = await asyncio.to_thread(read_with_the_official_client)
    finally:
        await _stop(server)
    for routed in answers:
        assert outcomes(routed) == [("primary", "ok", None)] and routed.response.text == "Sunny."
    assert official == "Sunny."
    assert _rows(tmp_path) == 2


async def test_two_lengths_that_differ_stay_refused(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Guard: two ``content-length`` values that differ leave the body's end unknown (a smuggling shape): still a
    malformed_response, the next model answers."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n"
                         b"content-length: %d\r\n\r\n" % (len(ANSWER), len(ANSWER) - 9) + ANSWER)
            await writer.drain()

    server = await _start(handle)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        [routed] = await _routed("openai", {**servers, "openai": _Endpoint(endpoint)}, tmp_path, PLAIN)
    finally:
        await _stop(server)
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)]


# -- an Anthropic event over several data lines -----------------------------------------------------------------------

def _pretty(name: str, obj: dict[str, Any]) -> str:
    """One event as sse-starlette writes a payload that holds newlines: a ``data:`` line per line (sse-starlette#96:
    "always splits the data into multiple data lines when it encounters a newline"), here pretty-printed JSON."""
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in json.dumps(obj, indent=2).split("\n")) + "\n"


PRETTY = [
    _pretty("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5",
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}}),
    _pretty("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
    _pretty("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": "Sunny,\nwarm."}}),
    _pretty("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _pretty("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": 4}}),
    _pretty("message_stop", {"type": "message_stop"}),
]


async def test_an_anthropic_event_over_several_data_lines_is_one_event(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """The SSE spec makes consecutive ``data:`` lines one event's data, joined by newlines; an Anthropic-compatible
    proxy on sse-starlette writes a payload that holds newlines so (sse-starlette#96). Each line was read as a JSON
    document of its own: malformed_response on every answer (the OpenAI-compatible reader joined them already). The
    official ``anthropic`` client reads such a stream, and now so does modelyard."""
    fault = Fault.raw(200, *PRETTY, headers=SSE)
    servers["anthropic"].push(fault, fault)
    [routed] = await _routed("anthropic", servers, tmp_path, PLAIN)

    def read_with_the_official_client() -> str:  # in a thread: the fake runs on its own
        with anthropic.Anthropic(base_url=servers["anthropic"].url, api_key=KEY, max_retries=0).messages.stream(
                model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]) as stream:
            return stream.get_final_text()

    official = await asyncio.to_thread(read_with_the_official_client)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == official == "Sunny,\nwarm."
    assert routed.record.tokens_out == 4


async def test_a_broken_data_line_before_a_whole_one_is_still_malformed(servers: dict[str, Any],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """Guard: a data line that is no JSON, followed by one that is whole JSON on its own, is not joined into it: the
    first is broken (malformed_response, the next model), as before."""
    servers["anthropic"].push(Fault.raw(200, 'event: message_start\ndata: {"type": "message_st\n\n', *PRETTY[1:],
                                        headers=SSE))
    [routed] = await _routed("anthropic", servers, tmp_path, PLAIN)
    assert outcomes(routed) == [("primary", "fallback", "malformed_response"), ("backup", "ok", None)]


# -- a chat template that cannot render the request -------------------------------------------------------------------

LATE_SYSTEM = ChatRequest(messages=[Message("system", "You are terse."), Message("user", "Weather in Paris?"),
                                    Message("system", "Today is Sunday.")])
#: llama-server (--jinja) rendering Qwen's template, which raises for a system message that is not the first: its
#: exception handler answers a template's runtime error as ERROR_TYPE_SERVER, a 500 (users: "a live Qwen3.5-4B answered
#: every Ask with HTTP 500 and 'System message must be at the beginning'"; opencode#16560, #20785)
QWEN_TEMPLATE = {"error": {"code": 500, "type": "server_error", "message": (
    "Unable to generate parser for this template. Automatic parser generation failed: \n------------\nWhile executing "
    "CallExpression at line 89, column 28 in source:\n...{{- raise_exception('System message must be at the "
    "beginning.') }}...\nJinja Exception: System message must be at the beginning.")}}
#: Ollama's qwen renderer: routes.go logs "chat prompt error" and answers c.JSON(500, {"error": err.Error()})
OLLAMA_RENDERER = {"error": "system message must be at the beginning"}


@pytest.mark.parametrize(("kind", "refusal", "path"), [
    ("openai", QWEN_TEMPLATE, "/v1/chat/completions"),
    ("ollama", OLLAMA_RENDERER, "/api/chat"),
], ids=["llama_server_qwen_template", "ollama_qwen_renderer"])
async def test_a_later_system_message_the_template_refuses_goes_as_a_user_message(kind: str, refusal: dict[str, Any],
                                                                                  path: str,
                                                                                  servers: dict[str, Any],  # noqa: F811
                                                                                  tmp_path: Path) -> None:
    """Qwen's chat template (the official default since Qwen3.5) raises "System message must be at the beginning."
    for a system message after the first turn, which clients send (Claude Code's hook context, an agent's injected
    state). Said as a 500, it was a server_error: asked again for the same refusal, and counted against the model
    until it cooled for every request. Now the request is asked again at once with the later system message as a
    user message (in place: the prompt's start, and the server's cache of it, unchanged), and later requests go so."""
    servers[kind].push(Fault.raw(500, json.dumps(refusal), headers=JSON))
    first, second = await _routed(kind, servers, tmp_path, LATE_SYSTEM, LATE_SYSTEM)
    sent = [r.json for r in servers[kind].requests_to(path)]
    assert outcomes(first) == outcomes(second) == [("primary", "ok", None)]
    assert len(sent) == 3  # the refused one, the one asked again at once, then the next request as learned
    assert [m["role"] for m in sent[0]["messages"]] == ["system", "user", "system"]
    assert [m["role"] for m in sent[1]["messages"]] == [m["role"] for m in sent[2]["messages"]] == [
        "system", "user", "user"]
    assert sent[2]["messages"][2]["content"] == "Today is Sunday."


async def test_an_ollama_template_that_cannot_render_the_request_is_the_requests(servers: dict[str, Any],  # noqa
                                                                                 tmp_path: Path) -> None:
    """A model's template that fails on the request's tools: Ollama's 500 "template: :108:130: executing \"\" at
    <index $prop.Type 0>: error calling index: reflect: slice index out of range" (gpt-oss with tools, ollama#11800;
    routes.go's "chat prompt error"). Asked again it fails the same: it was a server_error, retried and counted
    against a model that answers other requests. Now the request's: the next model takes it, this one stays in
    service."""
    servers["ollama"].push(Fault.raw(500, json.dumps({"error": (
        'template: :108:130: executing "" at <index $prop.Type 0>: error calling index: reflect: slice index out of '
        "range")}), headers=JSON))
    with_tools, plain = await _routed("ollama", servers, tmp_path, REQ, PLAIN)
    assert outcomes(with_tools) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]
    assert "could not render" in with_tools.record.attempts[0].detail
    assert outcomes(plain) == [("primary", "ok", None)]


# -- LocalAI: no backend can load the model ---------------------------------------------------------------------------

async def test_localai_that_cannot_load_the_model_cools_it(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa
    """LocalAI answers 500 "could not load model - all backends returned error: 25 errors occurred: * could not load
    model: rpc error: code = Unknown desc = failed loading model …" for a model none of its backends can load (a file
    missing or unreadable, a backend not installed: LocalAI#1037, #1133, where langchain asked again and again). It was
    a server_error: asked again at once for the same refusal, on every request until the breaker opened for seconds.
    Now it cools as a model the server cannot load (as Ollama's "unknown model architecture")."""
    said = ("could not load model - all backends returned error: 25 errors occurred:\n\t* could not load model: rpc "
            "error: code = Unknown desc = failed loading model\n\t* could not load model: rpc error: code = Unknown "
            "desc = failed loading model\n")
    refusal = Fault.raw(500, json.dumps({"error": {"code": 500, "message": said, "type": ""}}), headers=JSON)
    routed, cooling = await route_cooling("openai", servers, tmp_path, refusal, refusal)
    assert outcomes(routed) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]
    assert "cannot load the model" in routed.record.attempts[0].detail
    assert cooling > 2  # cooldown.max_seconds (5 here), not the breaker's second
