"""The lean client (providers/lean_http.py) reads a response head as leniently as aiohttp's client did, so a server
that worked before it does not become a malformed_response (a health failure: its model failed over and cooled).

aiohttp's response parser (``_http_parser.pyx``, ``HttpResponseParser``) sets three of llhttp's leniencies outside
Python's dev mode, since 3.8.6 (aio-libs/aiohttp#7491, "Use lenient headers for response parser"); httptools' parser,
which the lean client feeds, sets none. The shapes they let through, each seen from real servers:

- a head whose lines end in a bare LF: GoAhead-Webs' ``HTTP/1.0 200 OK\\nServer: GoAhead-Webs\\r\\n…``
  (aio-libs/aiohttp#7494), llhttp 9 refusing ``HTTP/1.1 200 OK\\nContent-Length: 0\\n\\n`` (nodejs/llhttp#236);
- a control character in a header's value: a ``Set-Cookie`` with a ``\\x01`` in it (aio-libs/aiohttp#5269), tase.co.il's
  headers (aio-libs/aiohttp#5730), dezeen.com's (aio-libs/aiohttp#5355);
- spaces after a chunk's size: Tomcat's Coyote padding sizes with blanks (iipc/jwarc#33), ESPAsyncWebServer
  (nodejs/node#47528), load balancers (erikdubbelboer/fasthttp#34); undici took the same leniency
  (nodejs/undici#5286).

A NUL in a header value is still refused, as aiohttp refuses it even when lenient (RFC 9110 §5.5).
Each shape is read through both clients here: the lean one must read what aiohttp reads.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.unit.test_lean_http import LINES, SSE, _read, _request, _server

from modelyard.errors import ProviderError, Reason

_CHUNKED = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

LENIENT = {
    "bare-lf-head": (b"HTTP/1.1 200 OK\ncontent-type: text/event-stream\ncontent-length: %d\n\n" % len(SSE)) + SSE,
    "control-char-in-a-value": (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nset-cookie: id=a\x01b; path=/"
                                b"\r\ncontent-length: %d\r\n\r\n" % len(SSE)) + SSE,
    "spaces-after-chunk-size": _CHUNKED + b"%x   \r\n%s\r\n0  \r\n\r\n" % (len(SSE), SSE),
}


def _serving(answer: bytes):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            writer.write(answer)
            await writer.drain()
    return handle


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "aiohttp"])
@pytest.mark.parametrize("shape", list(LENIENT))
async def test_a_head_aiohttp_reads_leniently_is_read(shape: str, lean: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not lean:
        monkeypatch.setenv("MODELYARD_HTTP_CLIENT", "aiohttp")
    async with _server(_serving(LENIENT[shape])) as (client, accepted):
        for _ in range(2):  # and the connection is kept alive after it
            assert await _read(client, lean=lean) == LINES
        assert len(accepted) == 1
        assert not client.lenient  # read as it is, not learned as a server that writes bytes after its answers


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "aiohttp"])
async def test_a_nul_in_a_header_value_is_still_refused(lean: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not lean:
        monkeypatch.setenv("MODELYARD_HTTP_CLIENT", "aiohttp")
    answer = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-meta: a\x00b\r\ncontent-length: %d\r\n\r\n"
              % len(SSE)) + SSE
    async with _server(_serving(answer)) as (client, _):
        with pytest.raises(ProviderError) as caught:
            await _read(client, lean=lean)
    assert caught.value.reason is Reason.MALFORMED_RESPONSE
