"""Wire shapes, hunt 36 (faults36): what a sweep of ~110 real-shaped faults over loopback sockets (Azure's
``prompt_filter_results`` chunk and ``content_filter`` finish, OpenRouter's comments and in-stream errors, vLLM's and
TGI's error events, llama-server's ``error:`` field and 503 "Loading model", Ollama's error lines, ``done_reason``
load/unload and tool arguments as objects, Anthropic's ``event: error`` after ``message_start``, HTML under 200,
Retry-After as a date, fractional or ``retry-after-ms``, gzip/br/deflate on SSE, CR-only lines, a BOM, ``data:``
without a space, ``id:``/``retry:`` fields, usage before the last content, 413/422 in words, servers that never
answer, trickle bytes or keep-alives, 1xx heads, HTTP/1.0 bodies to close, a reset, an SSH banner, a TLS alert…)
found still wrong; each of the others already ended in the answer or in the right reason and fallback, one row
logged, the next request served by the primary.

- ``content-length`` *before* ``transfer-encoding: chunked`` in one head (a FastAPI proxy's, powerproxy-aoai#53;
  RFC 9112 §6.3: chunked wins, as h11 and so the official SDKs read it). The lenient reading that mends the pair was
  learned from aiohttp's words for it, "Content-Length can't be present with Transfer-Encoding" — which llhttp (the
  lean client's parser for every plain-http backend) says only when the length comes second; the other order it
  words "Transfer-Encoding can't be present with Content-Length". Every answer of such a server was
  malformed_response and the model never used. Now read as chunked, the first answer and every later one.
- the text-completion stream (``/v1/completions``: raw prompts and fill-in-the-middle) read fewer shapes than the
  chat stream: a comment passed on as data, events framed twice, ``data: null``, a document over several data lines,
  the server's error in words, glued after a chunk, in Gemini's array or as MiniMax's ``base_resp`` were each
  malformed_response (or a dropped connection) — never asked again, and a raw prompt has no fallback. Now read by the
  chat stream's own reading of them (providers/openai.py ``_odd_event``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import Fault
from tests.integration.test_fault_shapes import OK, _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_wire_shapes import DONE, SSE, chunk, data, event, ndjson
from tests.integration.test_wire_shapes_outside_in import MESSAGE_START, MESSAGE_STOP, block, delta, message_delta
from tests.integration.test_wire_shapes_round3 import outcomes
from tests.integration.test_wire_shapes_round4 import _Endpoint, _requests

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message, TextPrompt

EVENTS = [chunk({"role": "assistant", "content": "Sunny."}).encode(), chunk({}, "stop").encode(), DONE.encode()]
HEADS = {
    "length-first": b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 1234\r\n"
                    b"transfer-encoding: chunked\r\n\r\n",
    "chunked-first": b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                     b"content-length: 1234\r\n\r\n",
}


async def _routed(kind: str, servers: dict[str, Any], tmp_path: Path, body: str,  # noqa: F811
                  request: ChatRequest | None = None) -> Any:
    """The routed answer to ``request`` (a question about the weather) with ``body`` as the primary's event stream;
    one row in the routing log."""
    servers[kind].push(Fault.raw(200, body, headers=SSE))
    router, writer = router_for(kind, servers, tmp_path / "log.db")
    try:
        return await router.complete("agent", request or ChatRequest(messages=[Message("user", "Weather?")]))
    finally:
        await router.aclose()
        writer.close()
        assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1


def _framed_twice(head: bytes) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in _requests(reader):
            writer.write(head + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in EVENTS) + b"0\r\n\r\n")
            await writer.drain()
        writer.close()
    return handle


@pytest.mark.parametrize("order", ["length-first", "chunked-first"])
async def test_content_length_beside_chunked_is_read_as_chunked_in_either_order(servers: dict[str, Any],  # noqa: F811
                                                                               tmp_path: Path, order: str) -> None:
    """length-first failed on the code before (malformed_response, every request, the backup answering);
    chunked-first guards the order that was mended before (test_native_protocols_round8.py)."""
    server = await asyncio.start_server(_framed_twice(HEADS[order]), "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        router, writer = router_for("openai", {**servers, "openai": _Endpoint(endpoint)}, tmp_path / "log.db")
        try:
            for _ in range(3):
                routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Weather?")]))
                assert outcomes(routed) == [("primary", "ok", None)], [a.detail for a in routed.record.attempts]
                assert routed.response.text == "Sunny."
        finally:
            await router.aclose()
            writer.close()
        assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 3
    finally:
        server.close()


# -- the text-completion stream (/v1/completions: raw prompts, fill-in-the-middle) -----------------------------------

def _text(text: str, finish: str | None = None) -> str:
    return data({"id": "cmpl-1", "object": "text_completion", "model": "local",
                 "choices": [{"index": 0, "text": text, "finish_reason": finish}]})


CODE = _text("return 1") + _text("", "stop")
#: (name, body, the primary's first attempt: ok or its reason) — each shape from where the chat stream's reading of
#: it cites it (providers/openai.py ``_odd_event``)
TEXT_SHAPES = [
    ("comment-as-data", "data: : OPENROUTER PROCESSING\n\n" + CODE + DONE, OK),  # mnfst/llm-gateway#2053
    ("framed-twice", "data: " + _text("return 1") + "data: " + _text("", "stop") + "data: " + DONE, OK),  # shimmy#26
    ("data-null", "data: null\n\n" + CODE + DONE, OK),  # kilocode#3083
    ("pretty-printed", 'data: {\ndata:  "choices": [{"index": 0, "text": "return 1", "finish_reason": "stop"}]\n'
                       "data: }\n\n" + DONE, OK),  # OmniRoute#4177, bifrost#5262
    ("error-in-words", _text("ret") + "data: error: CUDA out of memory\n\n", "stream_error"),  # http.SAID_ERROR
    ("glued-error", "data: " + json.dumps({"choices": [{"index": 0, "text": "ret"}]})  # openai-python#663
     + json.dumps({"error": {"message": "boom", "type": "server_error"}}) + "\n\n", "stream_error"),
    ("gemini-array-error", "data: " + json.dumps([{"error": {"code": 503, "message": "The model is overloaded.",
                                                             "status": "UNAVAILABLE"}}]) + "\n\n", "overloaded"),
    ("minimax-base-resp", data({"base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded"}}),
     "rate_limited"),  # MiniMax-M2.5#2
]


@pytest.mark.parametrize(("name", "body", "want"), TEXT_SHAPES, ids=[s[0] for s in TEXT_SHAPES])
async def test_a_text_completion_stream_is_read_as_a_chat_stream_is(servers: dict[str, Any],  # noqa: F811
                                                                    tmp_path: Path, name: str, body: str,
                                                                    want: str) -> None:
    """The text-completion stream (a raw prompt, a fill-in-the-middle: Continue's autocomplete through /api/generate
    or /v1/completions) read fewer shapes than the chat stream: each of these was malformed_response — never asked
    again, and a raw prompt has no fallback (the backup skipped, the whole request failed). Now the answer, or the
    server's error asked again."""
    routed = await _routed("openai", servers, tmp_path, body, ChatRequest(
        messages=[Message("user", "def f(")], prompt=TextPrompt("def f(", templated=True)))
    first = outcomes(routed)[0]
    if want == OK:
        assert first == ("primary", "ok", None) and routed.response.text == "return 1", routed.record.attempts
    else:
        assert first == ("primary", "retry", want), [a.detail for a in routed.record.attempts]
        assert outcomes(routed)[-1] == ("primary", "ok", None)


# -- Anthropic: events framed twice ------------------------------------------------------------------------------------

async def test_an_anthropic_stream_framed_twice_is_read(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """``data: data: {...}`` on every event (a server or relay that adds its own framing to framed events: shimmy#26,
    aprender#2015, read so by the OpenAI-compatible provider since): the Anthropic provider refused the whole answer
    as malformed_response, never asked again. Now the answer; ``[DONE]`` framed so ends it too."""
    body = (MESSAGE_START + block(0, {"type": "text", "text": ""}) + delta(0, {"type": "text_delta", "text": "Sunny."})
            + event("content_block_stop", {"type": "content_block_stop", "index": 0}) + message_delta("end_turn")
            + MESSAGE_STOP).replace("data: ", "data: data: ")
    routed = await _routed("anthropic", servers, tmp_path, body)
    assert outcomes(routed) == [("primary", "ok", None)], [a.detail for a in routed.record.attempts]
    assert routed.response.text == "Sunny."


# -- Ollama: a relay's event stream under /api/chat --------------------------------------------------------------------

def _ollama_line(text: str, done: bool = False) -> dict[str, Any]:
    line: dict[str, Any] = {"model": "qwen3.5:latest", "message": {"role": "assistant", "content": text}, "done": done}
    if done:
        line.update(done_reason="stop", prompt_eval_count=9, eval_count=2)
    return line


RELAYED = [
    # Ollama's own lines in an event stream's framing, a comment and an event name between
    ("ollama-lines-framed", ": keep-alive\n\n" + data(_ollama_line("Sunny.")) + "event: message\n"
     + data(_ollama_line("", done=True))),
    # the upstream's OpenAI-compatible chunks passed on as they came (oai2ollama#6), [DONE] at the end
    ("openai-chunks", chunk({"role": "assistant", "content": "Sunny."}) + chunk({}, "stop") + DONE),
    ("openai-chunks-no-finish", chunk({"role": "assistant", "content": "Sunny."}) + DONE),
]


@pytest.mark.parametrize(("name", "body"), RELAYED, ids=[r[0] for r in RELAYED])
async def test_an_ollama_chat_relayed_as_an_event_stream_is_read(servers: dict[str, Any],  # noqa: F811
                                                                 tmp_path: Path, name: str, body: str) -> None:
    """An Ollama-emulating relay's /api/chat in an event stream (CNSeniorious000/oai2ollama#6 streams its upstream's
    /chat/completions bytes as text/event-stream): each line was refused as malformed_response ("Ollama stream line is
    not valid JSON: 'data: {…'"), or read as nothing and asked again. Now the answer."""
    routed = await _routed("ollama", servers, tmp_path, body)
    assert outcomes(routed) == [("primary", "ok", None)], [a.detail for a in routed.record.attempts]
    assert routed.response.text == "Sunny."


async def test_relayed_tool_call_pieces_move_the_chain_on(servers: dict[str, Any],  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """Tool-call pieces in a relayed chunk cannot be joined line by line: the answer is not passed on as an empty one
    or a call lost silently; the chain moves on (unusable_reply: no text, no call read)."""
    body = data({"model": "x", "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": "{}"}}]}}]}) + DONE
    routed = await _routed("ollama", servers, tmp_path, body)
    assert outcomes(routed)[0] == ("primary", "fallback", "unusable_reply"), routed.record.attempts


async def test_an_openai_shaped_error_in_an_ollama_stream_is_said_in_its_words(servers: dict[str, Any],  # noqa: F811
                                                                             tmp_path: Path) -> None:
    """An error object (``{"error": {"message", "type"}}``, a relay's) where Ollama writes a string: the row's detail
    was the object's Python repr; now its message. Still the server's error, asked again."""
    body = ndjson(_ollama_line("Sun")) + ndjson({"error": {"message": "upstream overloaded", "type": "server_error"}})
    routed = await _routed("ollama", servers, tmp_path, body)
    first = routed.record.attempts[0]
    assert (first.outcome, first.reason) == ("retry", "stream_error")
    assert first.detail.endswith("upstream overloaded") and "{" not in first.detail, first.detail
