"""A chunked body cut short — mid-chunk, mid-line, in a chunk's size line — and a body short of its content-length.

RFC 9112 §7.1: a chunked body is a series of ``size CRLF data CRLF`` ending with a zero-size chunk; a connection
closed before that last chunk is an incomplete message (§8: the recipient must consider it so). What users of peer
systems meet so: a reverse proxy or a load balancer that kills a long stream at its own timeout (nginx's
``proxy_read_timeout``, an idle cut at a cloud load balancer), a server process killed mid-answer. Each cut here is
a dropped connection, asked once more and then the next model (``connection_dropped``, never ``malformed_response``,
which is not retried), with one row logged; a cut after the answer's finish reason keeps the answer, as the README's
"an answer whose finish reason came before the connection was reset" says. Replayed byte for byte from a raw server.
Users of aiohttp-based clients meet it as "TransferEncodingError: Not enough data to satisfy transfer length header"
(modelscope/evalscope#851: SGLang under load; lbjlaq/Antigravity-Manager#2321: a relay whose upstream failed aborted
its chunked answer without the last chunk; open-webui/open-webui#24559).

The outcomes were right before (guards); the row's detail said only ``stream broke: ClientPayloadError`` — now what
happened (failed on the old code).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_fault_shapes import _reset, router_for, servers  # noqa: F401 - fixtures
from tests.integration.test_native_protocols_round8 import _Endpoint
from tests.integration.test_wire_shapes import chunk
from tests.integration.test_wire_shapes_round3 import outcomes

from modelyard.ledger import connect
from modelyard.types import ChatRequest, Message

FIRST = chunk({"role": "assistant", "content": "Sunny"}).encode()
LAST = chunk({"content": " and warm."}, "stop").encode()
WHOLE = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "local", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Sunny and warm."}, "finish_reason": "stop"}]}).encode()


def framed(data: bytes, size: int | None = None) -> bytes:
    """One chunk (RFC 9112 §7.1), its size line saying ``size`` when given (more than is sent: a cut)."""
    return b"%x\r\n" % (len(data) if size is None else size) + data + (b"\r\n" if size is None else b"")


DROPPED = [("primary", "retry", "connection_dropped"), ("primary", "fallback", "connection_dropped"),
           ("backup", "ok", None)]
KEPT = [("primary", "ok", None)]
CASES: dict[str, tuple[bytes, bytes, list[Any]]] = {
    "sse-cut-mid-line": (b"text/event-stream", framed(FIRST) + framed(LAST[:25], len(LAST)), DROPPED),
    "sse-cut-mid-text": (b"text/event-stream", framed(FIRST) + framed(LAST[:LAST.index(b" warm") + 3], len(LAST)),
                         DROPPED),
    "sse-cut-in-a-size-line": (b"text/event-stream", framed(FIRST) + b"4", DROPPED),
    "sse-cut-after-the-finish-reason": (b"text/event-stream", framed(FIRST) + framed(LAST, len(LAST) + 40), KEPT),
    "sse-no-last-chunk": (b"text/event-stream", framed(FIRST) + framed(LAST), KEPT),
    "json-cut": (b"application/json", framed(WHOLE[:30], len(WHOLE)), DROPPED),
    "json-cut-mid-string": (b"application/json", framed(WHOLE[:WHOLE.index(b"Sunny") + 4], len(WHOLE)), DROPPED),
    "json-whole-then-cut": (b"application/json", framed(WHOLE, len(WHOLE) + 10), KEPT),
}


def _answering(content_type: bytes, body: bytes) -> Callable[..., Any]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ntransfer-encoding: chunked\r\n\r\n"
                     + body)
        await writer.drain()
        writer.close()
    return handle


async def _routed_through(handle: Any, fakes: dict[str, Any], tmp_path: Path) -> Any:
    """One request of an agent whose primary is the raw server ``handle`` (its fallback: the fake OpenAI server)."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        router, writer = router_for("openai", {**fakes, "openai": _Endpoint(endpoint)}, tmp_path / "log.db")
        routed = await router.complete("agent", ChatRequest(messages=[Message("user", "Weather?")]))
        await router.aclose()
        writer.close()
    finally:
        server.close()
    return routed


@pytest.mark.parametrize("case", list(CASES))
async def test_a_chunked_body_cut_short_is_a_dropped_connection(case: str, servers: dict[str, Any],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    content_type, body, expected = CASES[case]
    routed = await _routed_through(_answering(content_type, body), servers, tmp_path)
    assert outcomes(routed) == expected
    assert routed.response.text == ("Sunny and warm." if expected is KEPT else "backup answer")
    assert connect(tmp_path / "log.db").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 1
    if expected is DROPPED:
        assert "cut off" in routed.record.attempts[0].detail and "mid-answer" in routed.record.attempts[0].detail


async def test_a_body_short_of_its_content_length_says_so(servers: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """The same cut without chunked framing: a whole JSON answer whose connection closed before its content-length."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(WHOLE)
                     + WHOLE[:40])
        await writer.drain()
        writer.close()

    routed = await _routed_through(handle, servers, tmp_path)
    assert outcomes(routed) == DROPPED
    assert "short of its content-length" in routed.record.attempts[0].detail
