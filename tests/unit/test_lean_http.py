"""The lean HTTP/1.1 client of the backend hop (providers/lean_http.py, issue #15) against raw-socket servers that
misbehave as real ones do, through ``HttpClient.stream`` — the path every provider takes — so each failure is read in
the same words as aiohttp's was:

- a kept-alive connection the server closed between two requests (RFC 9112 §9.3–9.6: a server may close an idle
  connection at any time; uvicorn's ``timeout_keep_alive`` is 5 s, llama-server's and Node's the same order): the
  request that met it is asked once more on a new connection, as ``HttpClient._post_again`` does for aiohttp;
- a chunked body cut mid-chunk (RFC 9112 §7.1, §8: an incomplete message) and a body short of its content-length;
- a head field past the limit (``HEAD_FIELD``, h11's 16 KiB) and one just under it;
- interim answers before the final one (RFC 9110 §15.2: a client must read and discard 1xx: ``100 Continue``,
  ``103 Early Hints``, which nginx and Cloudflare send);
- ``content-length`` beside ``transfer-encoding: chunked`` (RFC 9112 §6.3: chunked wins; a FastAPI proxy's,
  powerproxy-aoai#53);
- bytes after a whole answer (a footer a proxy appends), a refused connection, the pool's bound.

Each server is an ``asyncio.start_server`` writing the bytes given here, no HTTP library between. aiohttp read each
of these shapes the same way (the outcomes are kept, not changed); every request here is checked to go through the
lean client, so the tests fail on the code before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from modelyard.config.schema import Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.http import HttpClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SSE = b"data: {\"a\": 1}\n\ndata: [DONE]\n\n"
TIMEOUTS = Timeouts(connect=5.0, idle=5.0)
#: SSE as ``aiter_lines`` gives it, joined
LINES = "\n".join(SSE.decode().split("\n")[:-1])


def _extract(data: Any) -> tuple[str, str]:
    return "", str(data)


async def _request(reader: asyncio.StreamReader) -> bool:
    """Read one request (head and content-length body); False when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return True


def _answer(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n%s\r\n" % (len(body), extra)
            + body)


@contextlib.asynccontextmanager
async def _server(handle: Handler) -> AsyncIterator[tuple[HttpClient, list[int]]]:
    """A raw server on a free port, a client of it; the list counts the connections the server accepted."""
    accepted: list[int] = []
    handlers: list[asyncio.Task[None]] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handle(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    client = HttpClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield client, accepted
    finally:
        await client.aclose()  # each handler then reads the end of its connection
        server.close()
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 10)
        await server.wait_closed()


async def _read(client: HttpClient, lean: bool = True) -> str:
    """The lines of one streamed POST, asked through the lean client (its pool, not aiohttp's session) if ``lean``."""
    assert not lean or (client._lean_at is not None and client._session is None and not client.lenient)
    async with (asyncio.timeout(10), client.stream("/v1/chat/completions", {"stream": True}, TIMEOUTS,
                                                   _extract) as response,
                contextlib.aclosing(response.aiter_lines()) as lines):
        return "\n".join([line async for line in lines])


def test_a_plain_http_endpoint_goes_through_the_lean_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """http:// reached directly: the lean client; https://, a proxy, a user in the URL or
    ``MODELYARD_HTTP_CLIENT=aiohttp``: aiohttp's."""
    assert HttpClient("http://127.0.0.1:11434")._lean_at == ("127.0.0.1", 11434, "http://127.0.0.1:11434")
    assert HttpClient("http://localhost/v1")._lean_at == ("localhost", 80, "http://localhost")
    assert HttpClient("https://api.example.com/v1")._lean_at is None
    assert HttpClient("http://user:pw@example.com/v1")._lean_at is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert HttpClient("http://models.example.com/v1")._lean_at is None
    monkeypatch.setenv("MODELYARD_HTTP_CLIENT", "aiohttp")
    assert HttpClient("http://127.0.0.1:11434")._lean_at is None


async def test_keep_alive_reuses_one_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            writer.write(_answer(SSE))
            await writer.drain()

    async with _server(handle) as (client, accepted):
        for _ in range(3):
            assert await _read(client) == LINES
        assert len(accepted) == 1


async def test_a_kept_alive_connection_the_server_closed_is_asked_again_on_a_new_one() -> None:
    """The server answers one request per connection and closes the next request's connection without a byte (a
    keep-alive timeout that fired as the request was sent): the request is asked once more, on a new connection."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _request(reader):
            writer.write(_answer(SSE))
            await writer.drain()
        await _request(reader)  # the next request on this connection: closed unanswered

    async with _server(handle) as (client, accepted):
        assert await _read(client) == LINES
        assert await _read(client) == LINES
        assert len(accepted) == 2


@pytest.mark.parametrize(("body", "said"), [
    (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
     b"f\r\ndata: {\"a\": 1}\n\r\n40\r\ndata: {\"b\"", "cut off before its last chunk"),
    (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 400\r\n\r\ndata: {\"a\": 1}\n\n",
     "cut off short of its content-length"),
], ids=["mid-chunk", "short-of-length"])
async def test_a_body_cut_short_is_a_dropped_connection(body: bytes, said: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(body)
        await writer.drain()

    async with _server(handle) as (client, _):
        with pytest.raises(ProviderError) as caught:
            await _read(client)
    assert caught.value.reason is Reason.CONNECTION_DROPPED and said in str(caught.value)


@pytest.mark.parametrize(("size", "read"), [(16000, True), (20000, False)])
async def test_a_head_field_past_the_limit_is_refused(size: int, read: bool) -> None:
    """A field of 16,000 bytes is read (h11's bound, as aiohttp was set); one of 20,000 is a malformed answer."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            writer.write(_answer(SSE, b"x-meta: " + b"a" * size + b"\r\n"))
            await writer.drain()

    async with _server(handle) as (client, _):
        if read:
            assert await _read(client) == LINES
            return
        with pytest.raises(ProviderError) as caught:
            await _read(client)
    assert caught.value.reason is Reason.MALFORMED_RESPONSE and "too long" in str(caught.value)


async def test_interim_answers_are_skipped() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n")
            await writer.drain()
            writer.write(_answer(SSE))
            await writer.drain()

    async with _server(handle) as (client, accepted):
        for _ in range(2):
            assert await _read(client) == LINES
        assert len(accepted) == 1


async def test_content_length_beside_chunked_is_read_as_chunked() -> None:
    """The lean client refuses the pair in aiohttp's words, so ``HttpClient._post_again`` asks once more leniently
    and reads such a server so from then on, as it did before the lean client."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                         b"content-length: 1234\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(SSE), SSE))
            await writer.drain()

    async with _server(handle) as (client, _):
        assert await _read(client) == LINES  # refused by the lean client, asked once more leniently (aiohttp)
        assert client.lenient and await _read(client, lean=False) == LINES


async def test_bytes_after_a_whole_answer_leave_it_whole_and_are_learned() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            writer.write(_answer(SSE) + b"<!-- served by edge-7 -->")
            await writer.drain()

    async with _server(handle) as (client, _):
        assert await _read(client) == LINES  # whole, and the server learned to write them
        assert client.lenient
        for _ in range(2):  # read leniently from now on, as HttpClient._post_again learns it of aiohttp's reads
            assert await _read(client, lean=False) == LINES


async def test_a_refused_connection_says_so() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    client = HttpClient(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ProviderError) as caught:
            await _read(client)
    finally:
        await client.aclose()
    assert caught.value.reason is Reason.CONNECT_ERROR and "connection refused" in str(caught.value)


async def test_the_pool_bound_makes_requests_wait_for_a_connection() -> None:
    """At the bound, a request waits for a connection to come back, as aiohttp's connector makes it."""
    from modelyard.providers import lean_http

    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            await release.wait()
            writer.write(_answer(SSE))
            await writer.drain()

    async with _server(handle) as (client, accepted):
        pool = client._lean()
        assert isinstance(pool, lean_http.Pool)
        pool.limit = 1
        reads = [asyncio.create_task(_read(client)) for _ in range(3)]
        await asyncio.sleep(0.2)  # a bounded wait for what must NOT happen: a second connection
        assert len(accepted) == 1
        release.set()
        assert await asyncio.gather(*reads) == [LINES] * 3
        assert len(accepted) == 1


async def test_a_request_cancelled_while_waiting_for_a_connection_leaves_the_pool_whole() -> None:
    """A request cancelled in the queue for a connection (its first-token bound, a client gone) is taken out of it:
    the connection given back goes to the next request, not to a request no longer there."""
    from modelyard.providers import lean_http

    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _request(reader):
            await release.wait()
            writer.write(_answer(SSE))
            await writer.drain()

    async with _server(handle) as (client, accepted):
        pool = client._lean()
        assert isinstance(pool, lean_http.Pool)
        pool.limit = 1
        first = asyncio.create_task(_read(client))
        waiting = asyncio.create_task(_read(client))
        async with asyncio.timeout(10):  # the waiter is queued within a few turns of the loop
            while not pool._waiters:
                await asyncio.sleep(0)
        waiting.cancel()
        release.set()
        assert await first == LINES
        assert await asyncio.wait_for(_read(client), 10) == LINES
        assert waiting.cancelled() and not pool._waiters and len(accepted) == 1


@pytest.mark.parametrize("how", ["fin", "reset"])
async def test_a_body_the_close_ends_is_whole_whether_the_server_closes_or_resets(how: str) -> None:
    """A head with neither ``content-length`` nor chunked framing: the body ends when the server closes (RFC 9112
    §6.3 rule 8) — an HTTP/1.0 server (Python's ``http.server``, whose ``BaseHTTPRequestHandler`` answers HTTP/1.0 by
    default: mlx_lm.server's base). A server that closes without lingering (h2o#2534: "closes the socket as soon as it
    finishes writing the entire response") or with ``SO_LINGER`` 0 ends it with a reset. aiohttp read the body whole
    either way (its parser's ``feed_eof``); the lean client said connection_dropped, "short of its content-length"."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _request(reader):
            writer.write(b"HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.12\r\ncontent-type: text/event-stream"
                         b"\r\n\r\n" + SSE)
            await writer.drain()
            await asyncio.sleep(0.05)  # the body reaches the client before the close
            if how == "reset":
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

    async with _server(handle) as (client, accepted):
        for _ in range(2):  # a connection the close ended is not used again
            assert await _read(client) == LINES
        assert len(accepted) == 2
