"""A fourth outside-in pass over what servers and the proxies in front of them send (helper-45's hunt): what the third
pass left, and shapes the fakes never produced, each from the spec or an issue thread of the server that sends it.

Each ends in the primary's answer read as the server meant it, or in a fallback with the reason that makes the router
retry, cool or move on as it should; each case here failed on the code before this pass unless it says it guards one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault, OllamaServer
from tests.integration.test_fault_shapes import _reset, primary, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, JSON, SSE, chunk, event
from tests.integration.test_wire_shapes_outside_in import MESSAGE_STOP, block, delta, message_delta
from tests.integration.test_wire_shapes_round3 import REQ, outcomes, route, route_cooling

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message, ToolCall

WHOLE = {"id": "chatcmpl-1", "object": "chat.completion", "model": "local",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 2}}


# -- bytes after a whole answer ---------------------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
_open: dict[asyncio.Server, set[asyncio.StreamWriter]] = {}


async def _start(handle: Handler) -> asyncio.Server:
    """``asyncio.start_server`` on a loopback port, remembering its connections for :func:`_stop`."""
    writers: set[asyncio.StreamWriter] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        await handle(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    _open[server] = writers
    return server


async def _stop(server: asyncio.Server) -> None:
    """Close the server and the connections it accepted: ``Server.close`` leaves those open (and Python 3.11's
    ``wait_closed`` does not wait for them), so their transports were left to the collector once the test's loop
    was closed — an unclosed-transport ResourceWarning in a later test."""
    server.close()
    for writer in _open.pop(server, set()):
        writer.close()
    await asyncio.sleep(0.01)  # their connection_lost callbacks, and the handlers see the end


async def _requests(reader: asyncio.StreamReader) -> Any:
    """Each request of a kept-alive connection, read whole (head and content-length body)."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        yield await reader.readexactly(length)


def _answering(body: bytes, tail: bytes, content_type: bytes = b"application/json") -> Handler:
    """A server that writes ``tail`` right after each answer of ``content-length`` bytes, in the same write."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type
                         + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body + tail)
            await writer.drain()
        writer.close()
    return handle


@pytest.mark.parametrize(("kind", "body", "content_type"), [
    ("openai", json.dumps(WHOLE).encode(), b"application/json"),
    ("ollama", json.dumps({"model": "qwen3.5:latest", "message": {"role": "assistant", "content": "Sunny."},
                           "done": True, "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 2}).encode(),
     b"application/x-ndjson"),
])
@pytest.mark.parametrize("tail", [b"<!-- served by edge-7 -->", b"\x00\x00\x00", b"}\n"])
async def test_bytes_after_a_whole_answer_do_not_fail_it(kind: str, body: bytes, content_type: bytes, tail: bytes,
                                                         servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """A server (or a proxy that appends a footer) writes bytes past ``content-length``, in the same write as the
    answer's end: aiohttp read them as the next response's status line and threw the whole answer away ('Bad status
    line'), a complete answer failed as malformed_response. Now the first such answer is asked once more and read
    leniently (bytes past the body dropped), and the server's later answers are read so at once."""
    server = await _start(_answering(body, tail, content_type))
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        router, writer = router_for(kind, {**servers, kind: _Endpoint(endpoint)}, tmp_path / "log.db")
        for _ in range(3):
            routed = await router.complete("agent", REQ)
            assert outcomes(routed) == [("primary", "ok", None)]
            assert routed.response.text == "Sunny."
        assert router.providers["primary"].client.lenient  # type: ignore[attr-defined]
        await router.aclose()
        writer.close()
    finally:
        await _stop(server)


class _Endpoint:
    """Stands for a fake server where router_for only reads its url."""

    def __init__(self, url: str):
        self.url = url


# -- proxies' statuses ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "reason"), [
    (408, "server_error"),  # nginx / AWS ALB "Request Timeout": the OpenAI and Anthropic SDKs retry it as a 5xx
    (499, "server_error"),  # nginx "client closed request" from a proxy between
    (460, "server_error"),  # AWS ALB: the client (a proxy between) closed before the idle timeout
    (425, "server_error"),  # "Too Early": replay it
    (502, "server_error"), (504, "server_error"), (520, "server_error"), (521, "server_error"),
    (522, "server_error"), (523, "server_error"), (524, "server_error"),  # Cloudflare's origin errors
    (503, "overloaded"), (529, "overloaded"),
    (400, "bad_request"), (413, "bad_request"), (422, "bad_request"), (404, "model_missing"),
    (405, "model_missing"),  # the path takes no POST there (a web UI on the port): the endpoint is wrong, as for 404
])
def test_what_proxies_answer_is_classified_by_what_it_means(status: int, reason: str) -> None:
    from modelyard.providers.http import reason_for_status

    assert reason_for_status(status) == reason


async def test_a_proxys_408_is_retried_and_falls_back_as_a_5xx_does(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """nginx answers 408 (its own HTML page) when the upstream kept it waiting: it was a bad_request, neither retried
    nor counted against the model, and an exhausted chain told the client not to retry (400 rejected_by_models)."""
    page = "<html><head><title>408 Request Time-out</title></head><body><h1>408 Request Time-out</h1></body></html>"
    nginx = Fault.raw(408, page, headers={"content-type": "text/html"})
    routed = await route("openai", servers, tmp_path, nginx, nginx)
    assert outcomes(routed) == [("primary", "retry", "server_error"), ("primary", "fallback", "server_error"),
                                ("backup", "ok", None)]


async def test_retry_after_ms_is_honoured(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """A 429 whose only wait is ``retry-after-ms`` (Azure OpenAI, OpenAI; the official SDKs read it first): the model
    cooled for the breaker's second instead of the four the server asked for."""
    body = json.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": "429"}})
    _, cooling = await route_cooling("openai", servers, tmp_path, Fault.raw(
        429, body, headers={**JSON, "retry-after-ms": "4000"}))
    assert 3 < cooling <= 4


# -- Anthropic's prompt cache -----------------------------------------------------------------------------------------

PRICE = {"input": 3.0, "output": 15.0}


def _anthropic_router(servers: dict[str, Any], log: Path) -> tuple[Router, LogWriter]:  # noqa: F811
    from tests.helpers import make_config

    config = make_config(
        {"primary": {**primary("anthropic", servers), "price": PRICE, "max_response_mb": 1},
         "backup": {"provider": "openai", "model": "backup", "endpoint": servers["backup"].url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"retries": {"attempts": 0}})
    writer = LogWriter(log, local_models=["backup"])
    return Router(config, sink=writer.submit), writer


async def route_anthropic(answer: Fault, servers: dict[str, Any], tmp_path: Path) -> Any:  # noqa: F811
    """The request routed to the Anthropic fake answering ``answer``, logged to ``tmp_path/log.db``: answered."""
    servers["anthropic"].push(answer)
    router, writer = _anthropic_router(servers, tmp_path / "log.db")
    routed = await router.complete("agent", REQ)
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]
    return routed


def _text_answer(start_usage: dict[str, Any], delta_usage: dict[str, Any]) -> Fault:
    return Fault.raw(200, event("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": start_usage}}),
        block(0, {"type": "text", "text": ""}), delta(0, {"type": "text_delta", "text": "Sunny."}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage}),
        MESSAGE_STOP, headers=SSE)


CACHED_START = {"input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 5000,
                "output_tokens": 1}
#: what it costs: 10 tokens at the input price, 1,000 written at 1.25x, 5,000 read at 0.1x, 20 out
CACHED_COST = (10 * 3.0 + 1000 * 3.0 * 1.25 + 5000 * 3.0 * 0.1 + 20 * 15.0) / 1e6


@pytest.mark.parametrize("answer", [
    _text_answer(CACHED_START, {"output_tokens": 20}),
    # message_delta's usage is cumulative, the cache counts given again (as the API documents): not counted twice
    _text_answer(CACHED_START, {"input_tokens": 10, "cache_creation_input_tokens": 1000,
                                "cache_read_input_tokens": 5000, "output_tokens": 20}),
    # a proxy that knows the counts only at the end (LiteLLM, SGLang: zeros in message_start)
    _text_answer({"input_tokens": 0, "output_tokens": 0},
                 {"input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 5000,
                  "output_tokens": 20}),
    # the whole message where a stream was asked for
    Fault.raw(200, json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                               "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
                               "usage": {**CACHED_START, "output_tokens": 20}}), headers=JSON),
], ids=["start", "cumulative_delta", "delta_only", "whole_message"])
async def test_anthropic_cache_tokens_are_counted_and_priced(answer: Fault, servers: dict[str, Any],  # noqa: F811
                                                             tmp_path: Path) -> None:
    """The Messages API counts the cached part of a prompt apart from ``input_tokens``
    (``cache_creation_input_tokens``, ``cache_read_input_tokens``) and bills it at 1.25x and 0.1x the input price.
    Neither was counted: a 6,010-token prompt was logged as 10, its cost as 10 tokens' worth, and the all-cloud
    comparison (tokens in x a cloud price) saw a tenth of a percent of the prompt."""
    routed = await route_anthropic(answer, servers, tmp_path)
    assert (routed.record.tokens_in, routed.record.tokens_out) == (6010, 20)
    assert routed.record.cost_usd == pytest.approx(CACHED_COST)
    row = connect(tmp_path / "log.db").execute("SELECT tokens_in, cost_usd FROM requests").fetchone()
    assert row[0] == 6010 and row[1] == pytest.approx(CACHED_COST)


def test_cache_prices_can_be_configured() -> None:
    from modelyard.config.schema import Price

    assert Price(input=3, output=15).cost(6010, 20, 5000, 1000) == pytest.approx(CACHED_COST)
    assert Price(input=3, output=15, cache_read=0.3, cache_write=6).cost(6010, 20, 5000, 1000) == pytest.approx(
        (10 * 3 + 1000 * 6 + 5000 * 0.3 + 20 * 15) / 1e6)
    assert Price(input=3, output=15).cost(100, 10) == pytest.approx((100 * 3 + 10 * 15) / 1e6)


def test_the_gateways_anthropic_wire_gives_the_cache_counts_back() -> None:
    """Through modelyard's own /v1/messages a client (Claude Code) reads the API's shape: input_tokens without the
    cached part, the cache counts beside it."""
    from modelyard.gateway.messages_wire import _usage
    from modelyard.types import Usage

    assert _usage(Usage(6010, 20, 5000, 1000)) == {"input_tokens": 10, "output_tokens": 20,
                                                   "cache_creation_input_tokens": 1000,
                                                   "cache_read_input_tokens": 5000}


# -- Anthropic-compatible tool input as text --------------------------------------------------------------------------

async def test_anthropic_tool_input_given_as_a_json_string(servers: dict[str, Any],  # noqa: F811
                                                           tmp_path: Path) -> None:
    """OpenAI-to-Anthropic adapters copy OpenAI's ``arguments`` text into ``input`` (bamboo-agent#351, rig#1964):
    the call went on with arguments ``{}``, passed as a good answer."""
    routed = await route("anthropic", servers, tmp_path, Fault.raw(
        200, event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9}}}),
        block(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": '{"city": "Paris"}'}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}), message_delta("tool_use"),
        MESSAGE_STOP, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert [(c.name, c.arguments) for c in routed.response.tool_calls] == [("get_weather", {"city": "Paris"})]


# -- keep-warm --------------------------------------------------------------------------------------------------------

async def test_keep_warm_is_not_held_by_a_model_whose_warm_up_hangs(tmp_path: Path) -> None:
    """An Ollama that accepts and never answers held keep-warm's loop for its 300 s bound: the next model was not
    loaded at start-up, nor refreshed before its keep-alive ran out (it unloaded: the next request waited for a cold
    load). Each model keeps its own time now."""
    import yaml

    from modelyard.ops.warmup import keep_warm
    from modelyard.runtime import open_runtime

    with OllamaServer(["stuck:1b"]) as stuck, OllamaServer(["qwen3:8b"]) as good:
        stuck.set_default(Fault.hang_before_headers())
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({
            "log": {"path": str(tmp_path / "log.sqlite3")},
            "models": {"stuck": {"provider": "ollama", "model": "stuck:1b", "endpoint": stuck.url},
                       "qwen": {"provider": "ollama", "model": "qwen3:8b", "endpoint": good.url}},
            "agents": {"chat": {"primary": "stuck", "fallbacks": ["qwen"]}}}))
        runtime = open_runtime(path)
        task = asyncio.create_task(keep_warm(runtime, 0.2))
        try:
            await good.wait_for_async(
                lambda: len([r for r in good.requests_to("/api/chat") if r.json.get("messages") == []]) >= 3,
                timeout=20)
            assert good.loaded_models == ["qwen3:8b"] and stuck.requests_to("/api/chat")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await runtime.aclose()


def test_a_usage_count_survives_the_shape_check() -> None:
    """shapes.checked repairs odd counts: it kept input and output and dropped the cache counts (guards the fix)."""
    from modelyard.providers.shapes import checked
    from modelyard.types import Chunk, Usage

    async def chunks() -> Any:
        yield Chunk("text", text="hi")
        yield Chunk("usage", usage=Usage("6010", 20, 5000, "1000"))  # type: ignore[arg-type]
        yield Chunk("done", stop_reason="stop")

    async def run() -> list[Chunk]:
        return [c async for c in checked(chunks(), 2**20)]

    usage = next(c.usage for c in asyncio.run(run()) if c.kind == "usage")
    assert usage == Usage(6010, 20, 5000, 1000)



# -- a kept-alive connection the server closed ------------------------------------------------------------------------

async def test_a_pooled_connection_closed_by_the_server_is_not_a_failure(servers: dict[str, Any],  # noqa: F811
                                                                         tmp_path: Path) -> None:
    """llama_cpp.server answers a prompt over its context with an empty 200 and then closes that connection, after
    aiohttp gave it back to the pool: the next request, sent on it, read 'closed the connection without answering'
    (connect_error), was retried after a backoff and counted against a healthy model (two such, and it cooled down).
    Seen with the real server and model; here a server that closes each kept-alive connection, unanswered, when a
    second request comes on it. A request that no server byte answered is sent once more, at once."""
    body = json.dumps(WHOLE).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for n, _ in _numbered(_requests(reader)):
            if n:
                break  # the connection was closed as the request came: no answer
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                         % len(body) + body)
            await writer.drain()
        writer.close()

    server = await _start(handle)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        router, writer = router_for("openai", {**servers, "openai": _Endpoint(endpoint)}, tmp_path / "log.db")
        for _ in range(3):
            routed = await router.complete("agent", REQ)
            assert outcomes(routed) == [("primary", "ok", None)]
        await router.aclose()
        writer.close()
    finally:
        await _stop(server)


async def _numbered(items: Any) -> Any:
    n = 0
    async for item in items:
        yield n, item
        n += 1


# -- a body under another label ---------------------------------------------------------------------------------------

OPENAI_EVENTS = [chunk({"role": "assistant", "content": "Sunny."}), chunk({}, "stop"), DONE]
ANTHROPIC_EVENTS = [event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9}}}),
                    block(0, {"type": "text", "text": ""}), delta(0, {"type": "text_delta", "text": "Sunny."}),
                    event("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    message_delta("end_turn"), MESSAGE_STOP]
ANTHROPIC_WHOLE = {"id": "msg_1", "type": "message", "role": "assistant",
                   "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 9, "output_tokens": 2}}
PLAIN = {"content-type": "text/plain; charset=utf-8"}


@pytest.mark.parametrize(("kind", "fault"), [
    # an event stream labelled JSON (relays and gateways that set the wrong content-type: claude-code-router#45)
    ("openai", Fault.raw(200, *OPENAI_EVENTS, headers=JSON)),
    ("anthropic", Fault.raw(200, *ANTHROPIC_EVENTS, headers=JSON)),
    # a whole answer (a server that ignores stream: true) labelled as an event stream, as text, or not at all
    ("openai", Fault.raw(200, json.dumps(WHOLE), headers=SSE)),
    ("openai", Fault.raw(200, json.dumps(WHOLE, indent=2), headers=PLAIN)),
    ("openai", Fault.raw(200, json.dumps(WHOLE))),
    ("anthropic", Fault.raw(200, json.dumps(ANTHROPIC_WHOLE), headers=SSE)),
    ("anthropic", Fault.raw(200, json.dumps(ANTHROPIC_WHOLE, indent=2), headers=PLAIN)),
], ids=["openai_events_as_json", "anthropic_events_as_json", "openai_json_as_events", "openai_pretty_json_as_text",
        "openai_json_unlabelled", "anthropic_json_as_events", "anthropic_pretty_json_as_text"])
async def test_a_body_is_read_as_what_it_is_whatever_its_label(kind: str, fault: Fault, servers: dict[str, Any],  # noqa: F811
                                                               tmp_path: Path) -> None:
    """The content-type decided how the body was read, and a wrong one made a good answer malformed_response (not
    retried: every request to such a relay fell back). The first line now says which it is, on the slow path only:
    an event stream begins with a field or a comment, a JSON document with ``{``."""
    routed = await route(kind, servers, tmp_path, fault)
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."


@pytest.mark.parametrize(("kind", "fault", "want"), [
    ("openai", Fault.raw(200, "<html><body><h1>502 Bad Gateway</h1></body></html>", headers=PLAIN),
     [("primary", "fallback", "malformed_response"), ("backup", "ok", None)]),
    ("openai", Fault.raw(200, json.dumps({"error": {"message": "upstream overloaded", "code": 529}}, indent=2),
                         headers=SSE), [("primary", "retry", "overloaded"), ("primary", "ok", None)]),
    ("anthropic", Fault.raw(200, json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                                        "message": "Overloaded"}}), headers=PLAIN),
     [("primary", "retry", "overloaded"), ("primary", "ok", None)]),
    ("openai", Fault.raw(200, '{"id": "chatcmpl-1", "choices": ]}', headers=SSE),
     [("primary", "fallback", "malformed_response"), ("backup", "ok", None)]),
    # a document that ended before it did (a clean close after its first bytes) is a body cut short, as a dropped
    # connection is: asked again (http.cut_json). It was malformed_response, never asked again
    ("openai", Fault.raw(200, '{"id": "chatcmpl-1", "choices": [', headers=SSE),
     [("primary", "retry", "connection_dropped"), ("primary", "ok", None)]),
], ids=["html", "openai_pretty_error", "anthropic_error_as_text", "broken_json", "cut_json"])
async def test_what_is_not_an_answer_under_another_label_stays_what_it_was(
        kind: str, fault: Fault, want: list[Any], servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Guards the reading above: a page is still malformed, an error object the server's error (a pretty-printed
    one too, which was malformed), a broken document malformed."""
    routed = await route(kind, servers, tmp_path, fault)
    assert outcomes(routed) == want


@pytest.mark.parametrize(("kind", "body"), [("openai", WHOLE), ("anthropic", ANTHROPIC_WHOLE)])
async def test_a_whole_answer_whose_closing_chunk_never_came_is_the_answer(kind: str, body: dict[str, Any],
                                                                           servers: dict[str, Any],  # noqa: F811
                                                                           tmp_path: Path) -> None:
    """A chunked JSON answer whose connection closed after the last byte of the document, before the closing
    ``0`` chunk (a proxy that closes on its own timer): connection_dropped, asked again for the same whole answer,
    and dropped again. The document was whole: it is the answer (a document cut short still is not)."""
    routed = await route(kind, servers, tmp_path, Fault.raw(200, json.dumps(body), headers=JSON, end="drop"))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny."
    cut = await route(kind, servers, tmp_path / "cut", *[Fault.raw(200, json.dumps(body)[:40], headers=JSON,
                                                                   end="drop")] * 2)
    assert [o[2] for o in outcomes(cut)] == ["connection_dropped", "connection_dropped", None]


# -- Ollama without room for the model ---------------------------------------------------------------------------------

async def test_ollama_without_memory_for_the_model_cools_it_instead_of_retrying(servers: dict[str, Any],  # noqa: F811
                                                                                 tmp_path: Path) -> None:
    """Ollama's 500 "model requires more system memory (5.3 GiB) than is available (3.5 GiB)", among the errors its
    users meet most (continue#11478, #11715, home-assistant#139085): a server_error, asked again at once (the same
    refusal), and again on every request until the breaker opened for seconds. It holds until memory is freed: the
    model rests (round 12: as overloaded, for Ollama's default keep_alive — not as a model the server does not
    have)."""
    body = json.dumps({"error": "model requires more system memory (5.3 GiB) than is available (3.5 GiB)"})
    routed, cooling = await route_cooling("ollama", servers, tmp_path, Fault.raw(500, body, headers=JSON))
    assert outcomes(routed) == [("primary", "fallback", "overloaded"), ("backup", "ok", None)]
    assert "requires more system memory" in routed.record.attempts[0].detail
    assert cooling > 4  # past the breaker's seconds (http.NO_MEMORY_WAIT)


async def test_ollama_leaving_out_a_cached_prompts_count_is_estimated(servers: dict[str, Any],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """Ollama leaves ``prompt_eval_count`` out when the prompt came from its cache (ollama#2068, #3427; again in
    0.30's llama-server runner, #16414): the prompt was logged as 0 tokens (the all-cloud comparison, tokens in x a
    cloud price, saw none of it). It is estimated, as the OpenAI-compatible provider does when a server gives none."""
    done = {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": ""}, "done": True,
            "done_reason": "stop", "eval_count": 2}
    line = {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": "Sunny."}, "done": False}
    routed = await route("ollama", servers, tmp_path, Fault.raw(
        200, json.dumps(line) + "\n", json.dumps(done) + "\n", headers={"content-type": "application/x-ndjson"}))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.record.tokens_in > 0 and routed.record.tokens_out == 2


# -- finish reasons in another spelling -------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "finish", "outcome", "logged"), [
    ("Sunny.", "STOP", "ok", "stop"),
    ("Sunny, and then", "MAX_TOKENS", "ok", "length"),  # cut at max_tokens: it was passed on as a complete answer
    (None, "MAX_TOKENS", "ok", "length"),  # nothing but the cut: an empty truncated answer, as for "length"
    (None, "SAFETY", "ok", "content_filter"),  # withheld: a policy answer, not a broken model
])
async def test_gemini_finish_reasons_in_capitals(content: str | None, finish: str, outcome: str, logged: str,
                                                 servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """Gemini's OpenAI-compatible gateways pass its own finish reasons on in capitals (qwen-code#9884): "MAX_TOKENS"
    was not read as a truncation (the cut answer passed as whole, an empty one refused as unusable), "SAFETY" not
    as a policy answer."""
    delta = {"role": "assistant", "content": content} if content else {"role": "assistant"}
    routed = await route("openai", servers, tmp_path, Fault.raw(200, chunk(delta, finish), DONE, headers=SSE))
    assert outcomes(routed) == [("primary", outcome, None)]
    assert routed.record.finish_reason == logged


# -- a history Claude refuses ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("turn", [Message("assistant", ""), Message("assistant", "  \n"),
                                  Message("assistant", " ", tool_calls=[ToolCall("get_weather", {"city": "Paris"},
                                                                                 "call_1")])])
async def test_claude_takes_over_a_history_with_an_empty_assistant_turn(turn: Message, servers: dict[str, Any],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """A turn another model left empty (thinking only, a refusal, an OpenAI client's content null) went to the API as
    it was: "all messages must have non-empty content except for the optional final assistant message" (a text
    block of blanks likewise, hermes-agent#11906), a 400 on every such turn, so Claude could not take the
    conversation over. The Anthropic fake now refuses such turns as the API does."""
    history = [Message("user", "Hi"), turn]
    if turn.tool_calls:
        history.append(Message("tool", "18C", tool_call_id="call_1", name="get_weather"))
    history.append(Message("user", "Weather in Paris?"))
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", ChatRequest(messages=history))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]


async def test_claude_answers_a_request_that_is_only_a_system_prompt(servers: dict[str, Any],  # noqa: F811
                                                                     tmp_path: Path) -> None:
    """A client that sends its whole prompt as one system message (an OpenAI model answers it) reached the API as
    ``messages: []``: "messages: at least one message is required" (LiteLLM#3019), a 400 every time — a cloud-only
    agent could not answer at all. The prompt is now the one user turn; the fake refuses an empty list as the API
    does."""
    router, writer = router_for("anthropic", servers, tmp_path / "log.db")
    routed = await router.complete("agent", ChatRequest(messages=[Message("system", "Say hello in French.")]))
    await router.aclose()
    writer.close()
    assert outcomes(routed) == [("primary", "ok", None)]
    sent = servers["anthropic"].last_request.json
    assert sent["messages"] == [{"role": "user", "content": "Say hello in French."}] and "system" not in sent


# -- an error's word in its code ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("error", "reason"), [
    ({"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"},
     "rate_limited"),
    ({"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"},
     "auth_error"),
    ({"message": "The server is overloaded", "type": "server_error", "code": "overloaded"}, "overloaded"),
])
async def test_an_error_mid_stream_is_read_by_its_code_too(error: dict[str, Any], reason: str,
                                                           servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """OpenAI and Azure put the error's word in ``code`` (``"type": "requests", "code": "rate_limit_exceeded"``): an
    error event with it under 200 was a plain stream_error (retried at once, no cooldown), an exhausted quota too
    (as a 402 it cools the model: it lasts until someone pays)."""
    fault = Fault.raw(200, chunk({"role": "assistant", "content": "Sun"}), "data: " + json.dumps({"error": error})
                      + "\n\n", headers=SSE)
    routed = await route("openai", servers, tmp_path, fault, fault)
    assert outcomes(routed)[0][2] == reason


async def test_what_is_learned_about_a_server_is_logged_without_its_password(caplog: pytest.LogCaptureFixture,
                                                                             tmp_path: Path) -> None:
    """The lines that say what was learned about a server name its endpoint; one with a user and password in it
    (``http://user:key@proxy``) is named without them."""
    import logging

    from tests.helpers import make_config

    from modelyard.config.schema import Timeouts
    from modelyard.providers.openai import OpenAIProvider

    server = await _start(_answering(json.dumps(WHOLE).encode(), b"<!-- edge -->"))
    endpoint = f"http://proxyuser:s3cr3t-pass@127.0.0.1:{server.sockets[0].getsockname()[1]}"
    config = make_config({"m": {"provider": "openai", "model": "local", "endpoint": endpoint}},
                         {"agent": {"primary": "m"}})
    provider = OpenAIProvider("m", config.models["m"])
    try:
        with caplog.at_level(logging.INFO, logger="modelyard"):
            chunks = [c async for c in provider.stream(REQ, Timeouts())]
    finally:
        await provider.aclose()
        await _stop(server)
    assert "".join(c.text for c in chunks if c.kind == "text") == "Sunny."
    assert "writes bytes after its answers" in caplog.text and "127.0.0.1" in caplog.text
    assert "s3cr3t" not in caplog.text and "proxyuser" not in caplog.text


# -- events framed twice, or not at all ------------------------------------------------------------------------------

def _bare(text: str) -> str:
    """An event as a gateway that lost its ``data: `` writes it."""
    return text.removeprefix("data: ")


@pytest.mark.parametrize("raw", [
    # shimmy#26, aprender#2015: a server that framed its events twice, with blank data lines between them
    ["data: " + chunk({"role": "assistant", "content": "Sunny."}) + "data:\ndata:\n\n",
     "data: " + chunk({}, "stop"), "data: " + DONE],
    # gpustack#6155: the read that held the usage chunk was rewritten, and its other events lost their prefix
    [chunk({"role": "assistant", "content": "Sunny."}),
     _bare(chunk({}, "stop")) + 'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}\n\n'
     + _bare(DONE)],
], ids=["framed_twice", "prefix_lost"])
async def test_events_framed_twice_or_not_at_all_are_read(raw: list[str], servers: dict[str, Any],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """Both made a good answer malformed_response (never retried: every request to such a server fell back)."""
    routed = await route("openai", servers, tmp_path, Fault.raw(200, *raw, headers=SSE))
    assert outcomes(routed) == [("primary", "ok", None)]
    assert routed.response.text == "Sunny." and routed.record.finish_reason == "stop"
