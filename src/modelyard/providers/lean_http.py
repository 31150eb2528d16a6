"""A lean HTTP/1.1 client for the hop to a plain ``http://`` backend with no proxy (a local Ollama, llama-server,
vLLM): the hop every gateway request makes. aiohttp's client cost ~379k instructions a request of ``serve``'s ~1,163k
(issue #15, benchmarks/README.md); this one parses with httptools (llhttp, what uvicorn uses) on a bare asyncio
protocol, and keeps only what :class:`~modelyard.providers.http.HttpClient` uses of aiohttp's response.

It raises aiohttp's own exception types, built as aiohttp builds them, so every rule ``http.py`` has for a failure
(a stale keep-alive connection asked again, a body cut short of its framing, a refused connect) reads them unchanged:
``ServerDisconnectedError`` / ``ClientOSError`` for a connection closed or reset before the head,
``ClientConnectorError`` (``…DNSError``) for a connect that failed, ``ConnectionTimeoutError`` for one that timed out,
``ClientResponseError`` (caused by aiohttp's ``HttpProcessingError``) for a head that does not parse or passes the
limits, ``ClientPayloadError`` caused by ``TransferEncodingError`` / ``ContentLengthError`` for a body cut short.
TLS, proxies, a server learned to write bytes after its answers, and the control-plane calls stay on aiohttp.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import TYPE_CHECKING

import aiohttp
import httptools
from aiohttp import http_exceptions
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy

if TYPE_CHECKING:
    from collections.abc import Callable

#: bytes held unread before the socket is no longer read (aiohttp's StreamReader: twice its 64 KiB limit)
HIGH_WATER = 2**17
#: aiohttp's words for a body cut short, kept so that what is logged reads as before
NOT_COMPLETED = "Response payload is not completed"
#: status codes with no body whatever their head says (RFC 9112 §6.3)
_NO_BODY = frozenset({204, 304})


def _as_aiohttp_reads(parser: httptools.HttpResponseParser) -> None:
    """Read heads as leniently as aiohttp's client reads them: its response parser sets these three of llhttp's
    leniencies (outside Python's dev mode; aio-libs/aiohttp#7491), httptools' sets none. Without them a server aiohttp
    read — a head of bare LFs (GoAhead-Webs, aiohttp#7494), a control character in a header's value (a ``Set-Cookie``
    with ``\\x01``, aiohttp#5269), spaces after a chunk's size (Tomcat's Coyote, iipc/jwarc#33) — was a
    malformed_response, its model failed over and cooled. Once per connection, not per request. httptools before
    0.6.3 has no such switch: its parser stays strict."""
    lenient = getattr(parser, "set_dangerous_leniencies", None)
    if lenient is not None:
        lenient(lenient_headers=True, lenient_optional_cr_before_lf=True, lenient_spaces_after_chunk_size=True)


class Body:
    """What the readers of a body use of aiohttp's ``StreamReader``: :meth:`readany` (everything received so far,
    ``b""`` at the end; a break is raised before what was buffered, as aiohttp does) and :meth:`at_eof`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Conn):
        self._conn = conn

    async def readany(self) -> bytes:
        conn = self._conn
        while True:
            if conn.broke is not None:
                raise conn.broke
            if conn.buffer:
                return conn.take()
            if conn.complete:
                return b""
            waiter = conn.waiter = conn.loop.create_future()
            try:
                await waiter
            finally:
                conn.waiter = None

    def at_eof(self) -> bool:
        return self._conn.complete and not self._conn.buffer


class Response:
    """The part of ``aiohttp.ClientResponse`` that ``http.py`` reads."""

    __slots__ = ("_conn", "content", "content_length", "headers", "status")

    def __init__(self, conn: Conn, status: int, headers: CIMultiDictProxy[str]):
        self._conn, self.status, self.headers = conn, status, headers
        self.content = Body(conn)
        length = headers.get("content-length")
        self.content_length = int(length) if length is not None and length.isdigit() else None

    def release(self) -> None:
        """The body was read whole: the connection goes back to the pool if it may be used again."""
        self._conn.pool.put(self._conn)

    def close(self) -> None:
        self._conn.close()


class Conn(asyncio.Protocol):
    """One kept-alive connection and the response being read on it."""

    def __init__(self, pool: Pool):
        self.pool, self.loop = pool, pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        _as_aiohttp_reads(self.parser)
        self.closed = False
        self.idle_since = 0.0
        self.head: asyncio.Future[Response] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.complete = False
        self.broke: BaseException | None = None
        #: a body that ends when the server closes (no content-length, not chunked)
        self.until_close = False
        self.chunked = False
        self.interim = False
        self.reusable = False
        self._fields: list[tuple[str, str]] = []
        self._status_line = 0
        #: the response whose head this read completed, handed over once the whole read is parsed
        self._ready: Response | None = None
        #: bytes that opened no status line (:meth:`_not_a_status_line`)
        self._bad = b""

    # -- asyncio ----------------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes after a whole answer, read later (or on an idle connection: a 408 before the
            self.reusable = False  # close): no part of it, and the connection is not used again
            if self.head is None:
                self.close()
            return
        if self._bad:  # bytes after a status line that was none: held until the head would end, as aiohttp reads
            self._not_a_status_line(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):  # raised by a callback of this class: a limit passed
                self._refuse(exc.__context__.error)
            elif self.complete:  # the answer ended inside this read and something else followed it
                self._trailing()
                self._hand_over()
            elif self._ready is None and not self._fields and self.head is not None and not self.head.done():
                self._not_a_status_line(data)
            elif self._ready is not None or (self.head is not None and not self.head.done()):
                # the head, or its body's framing in the same read, does not parse: aiohttp refused the answer whole
                self._refuse(http_exceptions.BadHttpMessage(str(exc) or type(exc).__name__))
            else:
                self._cut(None)
            return
        except httptools.HttpParserUpgrade:
            self._refuse(http_exceptions.BadHttpMessage("an upgrade was not asked for"))
            return
        self._hand_over()

    def _hand_over(self) -> None:
        """The head this read completed, handed over once the whole read is parsed, as aiohttp's is."""
        ready = self._ready
        if ready is not None:
            self._ready = None
            if self.head is not None and not self.head.done():
                self.head.set_result(ready)

    def _not_a_status_line(self, data: bytes) -> None:
        """Bytes where a status line must begin that are none: refused once a head's end came (aiohttp's "Bad status
        line", which ``http.py`` reads as bytes after a body, :func:`~modelyard.providers.http._bytes_after_body`);
        a server that closes before that one closed without answering, as aiohttp says."""
        self._bad += data
        if b"\r\n\r\n" in self._bad or b"\n\n" in self._bad:
            line = self._bad.split(b"\n", 1)[0].rstrip(b"\r")
            self._refuse(http_exceptions.BadStatusLine(line.decode("utf-8", "surrogateescape")[:200]))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.pool.lost(self)
        head = self.head
        if head is not None and not head.done():
            head.set_exception(aiohttp.ServerDisconnectedError() if exc is None
                               else aiohttp.ClientOSError(*getattr(exc, "args", ())))
            return
        if self.complete or head is None:
            return
        if self.until_close:  # the close ends such a body, a reset as a FIN: aiohttp's parser completes it either way
            self.complete = True  # (its feed_eof); it was connection_dropped "short of its content-length", and the
            self._wake()  # answer a server ended with an abortive close (h2o's non-lingering close, h2o#2534) lost
            return
        self._cut(exc)

    # -- httptools --------------------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._fields = []
        self._status_line = 0

    def on_status(self, status: bytes) -> None:
        self._status_line += len(status)
        if self._status_line > self.pool.max_line:
            raise _Refused(http_exceptions.LineTooLong("Status line is too long", str(self.pool.max_line)))

    def on_header(self, name: bytes, value: bytes) -> None:
        fields = self._fields
        if len(name) + len(value) > self.pool.max_field:
            raise _Refused(http_exceptions.LineTooLong("Header value is too long", str(self.pool.max_field)))
        if b"\x00" in value:  # refused even where llhttp is lenient, as aiohttp refuses it (RFC 9110 §5.5)
            raise _Refused(http_exceptions.InvalidHeader(value))
        if len(fields) >= self.pool.max_headers:
            raise _Refused(http_exceptions.BadHttpMessage("Too many headers received"))
        fields.append((name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): the final one follows
            self.interim = True
            return
        headers = CIMultiDictProxy(CIMultiDict(self._fields))
        coding = headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in coding
        self.until_close = (not self.chunked and "content-length" not in headers and status not in _NO_BODY)
        self.reusable = self.parser.should_keep_alive() and not self.until_close
        self._ready = Response(self, status, headers)

    def on_body(self, body: bytes) -> None:
        self.buffer.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self._wake()

    # -- the reader's side ------------------------------------------------------------------------------------------
    def take(self) -> bytes:
        buffer = self.buffer
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def start(self, request: bytes) -> asyncio.Future[Response]:
        """Send a request on this connection: the future of its response's head."""
        self.complete = self.until_close = self.chunked = self.interim = self.reusable = False
        self.broke = self._ready = None
        head = self.head = self.loop.create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        return head

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.pool.lost(self)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _trailing(self) -> None:
        if self.reusable:
            self.reusable = False
            self.pool.trailing()

    def _refuse(self, error: http_exceptions.HttpProcessingError) -> None:
        """A head that does not parse, or passes the limits: aiohttp's ``ClientResponseError`` caused by its parser's
        error, as ``ClientResponse.start`` raises it."""
        head = self.head
        if head is not None and not head.done():
            failure = aiohttp.ClientResponseError(self.pool.request_info(), (), status=error.code,
                                                  message=error.message, headers=error.headers)
            failure.__cause__ = error
            head.set_exception(failure)
        else:
            self._cut(error)
        self.close()

    def _cut(self, exc: BaseException | None) -> None:
        """A body that stopped short of its framing: aiohttp's ``ClientPayloadError`` with its parser's reason."""
        if self.chunked:
            cause: Exception = http_exceptions.TransferEncodingError(
                "Not enough data to satisfy transfer length header.")
        else:
            cause = http_exceptions.ContentLengthError("Not enough data to satisfy content length header.")
        message = f"{NOT_COMPLETED}: {cause!r}" + (f". {exc!r}" if exc is not None else "")
        self.broke = aiohttp.ClientPayloadError(message)
        self.broke.__cause__ = cause
        self._wake()
        self.close()


class _Refused(Exception):
    """Raised out of a parser callback to stop the parse: the head passed a limit."""

    def __init__(self, error: http_exceptions.HttpProcessingError):
        super().__init__(error.message)
        self.error = error


class Pool:
    """Kept-alive connections to one host and port, at most ``limit`` at once (a request past it waits for one, as
    aiohttp's connector makes it), each idle for ``idle`` seconds at most (see ``http.POOL_IDLE``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, url: str, *, limit: int, idle: float,
                 max_line: int, max_field: int, max_headers: int, trailing: Callable[[], None]):
        self.loop, self.host, self.port, self.url = loop, host, port, url
        self.limit, self.idle = limit, idle
        self.max_line, self.max_field, self.max_headers = max_line, max_field, max_headers
        self.trailing = trailing
        self._idle: list[Conn] = []
        self._open: set[Conn] = set()
        self._waiters: deque[asyncio.Future[Conn | None]] = deque()

    async def send(self, request: bytes, connect: float | None) -> Response:
        """``request`` (its head and body, whole) on a kept-alive connection or a new one: its response once its
        head is read."""
        conn = await self._take(connect)
        try:
            return await conn.start(request)
        except BaseException:
            conn.close()
            raise

    async def _take(self, connect: float | None) -> Conn:
        now = self.loop.time()
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.idle:
                return conn
            conn.close()
        if len(self._open) >= self.limit:
            waiter: asyncio.Future[Conn | None] = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    if (given := waiter.result()) is not None:
                        self.put(given)  # handed over as this request was cancelled: the next one takes it
                    else:
                        self.lost_place()  # a place freed for it: the next waiting request takes it
                raise
            if handed is not None:
                return handed
        return await self._connect(connect)

    async def _connect(self, connect: float | None) -> Conn:
        conn = Conn(self)
        self._open.add(conn)
        try:
            async with asyncio.timeout(connect):
                await self.loop.create_connection(lambda: conn, self.host, self.port)
        except TimeoutError as exc:
            self.lost(conn)
            raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {self.url}") from exc
        except OSError as exc:
            self.lost(conn)
            kind = aiohttp.ClientConnectorDNSError if isinstance(exc, socket.gaierror) else aiohttp.ClientConnectorError
            raise kind(ConnectionKey(self.host, self.port, False, True, None, None, None, None), exc) from exc
        except BaseException:
            self.lost(conn)
            raise
        return conn

    def put(self, conn: Conn) -> None:
        if conn.closed or not conn.reusable or not conn.complete or conn.buffer:
            conn.close()
            return
        conn.head = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle_since = self.loop.time()
        idle = self._idle
        if idle and conn.idle_since - idle[0].idle_since >= self.idle:
            idle.pop(0).close()  # the oldest has outlived the idle bound: the server may close it any moment
        idle.append(conn)

    def drop_idle(self) -> None:
        """Close every idle connection: the server was found closing one it let idle (a 408, ``http.py``)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def lost(self, conn: Conn) -> None:
        """``conn`` is closed: its place in the pool goes to the next request waiting, if any."""
        if conn in self._open:
            self._open.discard(conn)
            if conn in self._idle:
                self._idle.remove(conn)
            self.lost_place()

    def lost_place(self) -> None:
        """A place in the pool is free: the first request waiting for one connects anew."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it connects anew
                break

    def request_info(self) -> aiohttp.RequestInfo:
        from yarl import URL

        url = URL(self.url)
        return aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)

    def close(self) -> None:
        for conn in list(self._open):
            conn.close()
