"""Keep-alives inside an Anthropic stream, and a body cut after its first byte on every wire format.

Keep-alives: the SSE spec (https://html.spec.whatwg.org/multipage/server-sent-events.html, "Interpreting an event
stream") makes a line that starts with a colon a comment ("Ignore the line"), and an event without data a no-op. Relays
send them as comments (``: keepalive``, a bare ``:``), Anthropic as ``event: ping`` (with ``data: {"type": "ping"}``;
proxies drop the data), and some pass a comment on inside a ``data:`` field — ``data: : OPENROUTER PROCESSING``
(mnfst/llm-gateway#2053), which the OpenAI-compatible reader already skips.

A body cut after one byte: a server or proxy that closes the connection after its first bytes, cleanly (a chunked
body's closing chunk sent) or not. What came is the start of a field (``d`` of ``data:``, ``e`` of ``event:``) or of
a JSON document (``{``): a body cut short, as a dropped connection is — not a body that is no answer at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.fakes import AnthropicServer, Fault, OllamaServer, OpenAIServer
from tests.helpers import make_config

from modelyard.router import Router
from modelyard.router.records import ChainExhausted
from modelyard.types import ChatRequest, EmbedInput, Message

KEY = "sk-ant-test-keepalive-abcdefghijklmnop"
REQ = ChatRequest(messages=[Message("user", "Say hello")])
EMBED = ChatRequest(messages=[Message("user", "a text")], embed=EmbedInput(("a text",)))
SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}

#: an Anthropic answer as the Messages API streams it (docs.anthropic.com, "Streaming Messages": message_start, a text
#: block, message_delta with the stop reason, message_stop)
START = ('event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":'
         '"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":3,'
         '"output_tokens":1}}}\n\n')
BLOCK = ('event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text",'
         '"text":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":'
         '"text_delta","text":"Hi there"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop",'
         '"index":0}\n\n')
END = ('event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":'
       '{"output_tokens":2}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    started = {"openai": OpenAIServer(models=["local"]).start(),
               "ollama": OllamaServer(models=["qwen3.5:latest"]).start(),
               "anthropic": AnthropicServer(api_key=KEY).start(),
               "backup": OpenAIServer(models=["backup"], reply_text="backup answer").start()}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(autouse=True)
def _fresh(servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for server in servers.values():
        server.reset()
    monkeypatch.setenv("KEEPALIVE_ANTHROPIC_KEY", KEY)


def _router(kind: str, servers: dict[str, Any], fallback: bool = True, sink: Any = None) -> Router:
    entry = {"openai": {"provider": "openai", "model": "local"},
             "ollama": {"provider": "ollama", "model": "qwen3.5:latest"},
             "anthropic": {"provider": "anthropic", "model": "claude-haiku-4-5",
                           "api_key_env": "KEEPALIVE_ANTHROPIC_KEY"}}[kind]
    return Router(make_config(
        {"primary": {**entry, "endpoint": servers[kind].url},
         "backup": {"provider": "openai", "model": "backup", "endpoint": servers["backup"].url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"] if fallback else []}},
        defaults={"timeouts": {"queue": 2, "connect": 1, "first_token": 3, "idle": 3, "total": 10},
                  "retries": {"attempts": 1, "backoff": 0.01, "max_wait": 1.0}}), sink=sink)


async def _complete(router: Router, request: ChatRequest = REQ) -> Any:
    try:
        return await router.complete("agent", request)
    finally:
        await router.aclose()


@pytest.mark.parametrize("between", [
    "data: : keepalive\n\n",  # a comment passed on as data by a relay
    ": keepalive\n\n:\n\n",  # SSE comments (guard: skipped before too)
    "event: ping\n\n",  # a ping whose data a proxy dropped (guard: skipped before too)
], ids=["data_colon_keepalive", "comment_lines", "ping_without_data"])
async def test_anthropic_keepalives_between_events_are_skipped(servers: dict[str, Any], between: str) -> None:
    """The answer is the model's whatever keep-alive comes between its events. ``data: : keepalive`` was held as the
    start of a JSON document, joined to the next event and the answer refused as malformed_response (the other two
    are guards: the reader already skipped comments and a data-less event)."""
    servers["anthropic"].push(Fault.raw(200, START, between, BLOCK, between, END, headers=SSE))
    routed = await _complete(_router("anthropic", servers))
    assert routed.response.text == "Hi there"
    assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [("primary", "ok", None)]


CUTS = [
    ("openai", Fault.raw(200, "d", headers=SSE)),  # the first byte of "data: ", then a clean end
    ("anthropic", Fault.raw(200, "e", headers=SSE)),  # the first byte of "event: "
    ("openai", Fault.raw(200, "{", headers=JSON)),  # a whole answer (stream: false honoured) cut after "{"
    ("anthropic", Fault.raw(200, "{", headers=JSON)),
    ("openai", Fault.raw(200, "d", headers=SSE, end="drop")),  # guard: a dropped connection was already so
    ("ollama", Fault.raw(200, "{", headers=NDJSON)),  # guard: Ollama's reader already said so
]


@pytest.mark.parametrize(("kind", "fault"), CUTS, ids=["openai_d", "anthropic_e", "openai_json", "anthropic_json",
                                                       "openai_dropped", "ollama_ndjson"])
async def test_a_body_cut_after_one_byte_is_a_dropped_connection(servers: dict[str, Any], kind: str,
                                                                 fault: Fault) -> None:
    """``connection_dropped``, asked once more, then the fallback; never malformed_response (never asked again, the
    model's answer lost for a proxy's cut) nor internal_error. The clean cuts of an event stream and of a JSON answer
    were malformed_response ("not an event stream", "not valid JSON: '{'"); the dropped connection and Ollama's
    cut NDJSON line are guards (so before too)."""
    servers[kind].push(fault, times=2)
    routed = await _complete(_router(kind, servers))
    assert routed.response.text == "backup answer"
    assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [
        ("primary", "retry", "connection_dropped"), ("primary", "fallback", "connection_dropped"),
        ("backup", "ok", None)]


async def test_a_body_cut_after_one_byte_while_streaming_to_the_caller(servers: dict[str, Any]) -> None:
    """The same cut under the router's streaming walk (a gateway client's stream): the fallback's answer comes, and
    the routing log's row says the primary's body was cut (it said malformed_response)."""
    servers["anthropic"].push(Fault.raw(200, "{", headers=JSON), times=2)
    logged: list[Any] = []
    router = _router("anthropic", servers, sink=logged.append)
    try:
        text = "".join([c.text async for c in router.stream("agent", REQ) if c.kind == "text"])
    finally:
        await router.aclose()
    assert text == "backup answer"
    assert [(a.model, a.reason) for a in logged[0].attempts] == [
        ("primary", "connection_dropped"), ("primary", "connection_dropped"), ("backup", None)]


@pytest.mark.parametrize("kind", ["openai", "ollama"])
async def test_an_embeddings_answer_cut_after_one_byte_is_a_dropped_connection(servers: dict[str, Any],
                                                                               kind: str) -> None:
    """An embeddings answer (one JSON document: OpenAI's /v1/embeddings, Ollama's /api/embed) that ends after "{":
    connection_dropped and asked again, not malformed_response."""
    servers[kind].push(Fault.raw(200, "{", headers=JSON), times=2)
    with pytest.raises(ChainExhausted) as info:
        await _complete(_router(kind, servers, fallback=False), EMBED)
    assert [(a.outcome, a.reason) for a in info.value.record.attempts] == [
        ("retry", "connection_dropped"), ("fallback", "connection_dropped")]
