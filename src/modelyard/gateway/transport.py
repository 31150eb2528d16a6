"""One write per response where uvicorn makes two: the status line and headers leave with the body.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body on the
next message, so every answer costs two ``send`` calls and the client two wake-ups (the head, then
the body). Here the head is held until the next write on the connection — the body, in the same
step of the event loop for a JSON answer — or, at the latest, until the loop's next iteration (an
SSE response whose first event waits for a model gets its head at once). Order is never changed:
whatever is written next goes after the held head, in the same ``send``. Measured (issue #15):
0.03–0.19 ms off the added p50 at concurrency 1 and 3–5% less CPU per request (three A/B runs).

The same protocol keeps one keep-alive timer per connection that lapses when requests came meanwhile,
instead of uvicorn's timer made at every response and cancelled at the next request; and that bound holds for
every wait on the client (uvicorn's covers only the wait between requests): a connection that sends nothing, or
stops halfway through a request, is closed after ``timeout_keep_alive`` seconds of silence (one idle between two
requests after :data:`IDLE_BOUNDS` of them) (halfway through a body,
after a 408; and a body still coming four bounds on gets one too); a head past :data:`HEAD_LIMIT` a 431; and one
that stops reading what it is sent (its receive window shut) is cut off after as long without taking a byte — its
request is cancelled as a disconnect is and its model slot freed, the row saying ``client_stalled``. A connection
whose next request is already in its socket when the bound comes due is not idle: it is read, not closed unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from modelyard.errors import Reason
from modelyard.gateway.answer_budget import FREE, STEP, AnswerBudget
from modelyard.gateway.disconnect import HANGUP, LATE_BODY, Hangup, LateBody

if sys.platform == "linux":
    import fcntl
    import termios

    #: SIOCOUTQ: the bytes in a socket's send queue, sent or not, that the peer has not acknowledged
    _OUTQ: int | None = termios.TIOCOUTQ
    #: SIOCINQ: the bytes in a socket's receive queue that the server has not read yet
    _INQ: int | None = termios.FIONREAD
else:  # elsewhere the transport's own buffer is what counts, and a request's arrival is seen when it is read
    _OUTQ = _INQ = None

#: the bytes uvicorn refuses in a header name and in a value: its two one-character patterns, read byte by byte here
NAME_REFUSED = bytes(b for b in range(256) if HEADER_RE.search(bytes((b,))))
VALUE_REFUSED = bytes(b for b in range(256) if HEADER_VALUE_RE.search(bytes((b,))))
_HEAD = b"HTTP/1.1 "
#: a keep-alive bound this close counts as reached (the loop runs timers up to its clock resolution early)
_EARLY = 0.001
_END_OF_HEAD = b"\r\n\r\n"
#: the most bytes of a request's head (request line and headers) read after the read that began it, before a 431
HEAD_LIMIT = 64 * 1024


class _BodyOf:
    """The callbacks of a parser that reads only the body of a request whose ``Upgrade`` was declined
    (``OneWriteProtocol._read_declined``): its pieces go to the request, its end completes it once."""

    __slots__ = ("done", "protocol")

    def __init__(self, protocol: OneWriteProtocol):
        self.protocol = protocol
        self.done = False

    def on_body(self, body: bytes) -> None:
        if not self.done:
            self.protocol.on_body(body)

    def on_message_complete(self) -> None:
        if not self.done:
            self.done = True
            self.protocol._declined_read()


def refusal(status: bytes, target: bytes, message: str, code: str = "invalid_request") -> bytes:
    """A whole response (``connection: close``) refusing a request the HTTP parser could not read, its error in the
    shape of the API its path names — Ollama's ``{"error": "…"}`` under ``/api/``, Anthropic's under
    ``/v1/messages``, else OpenAI's — as the app's own errors are (app.py ``_in_the_apis_shape``). uvicorn answered
    a duplicate ``Content-Length``, one beside ``Transfer-Encoding`` or a bad chunk size with a text/plain "Invalid
    HTTP request received." that named nothing and that an SDK could not read as an error. ``target``: the request
    line's target as read so far (b"" before it)."""
    path = target.partition(b"?")[0]
    if path.startswith(b"/api/") and path not in (b"/api/log", b"/api/summary"):
        error: dict[str, Any] = {"error": message, "code": code}
    elif path.startswith(b"/v1/messages"):
        error = {"type": "error", "error": {"type": "invalid_request_error", "message": message, "code": code}}
    else:
        error = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    body = json.dumps(error).encode()
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (
        status, len(body), body)
#: a body still coming this many keep-alive bounds after it was first seen coming gets a 408 (``serve``: 300 s)
BODY_BOUNDS = 4
#: a connection idle between requests is closed after this many keep-alive bounds (``serve``: 120 s for its 75 s):
#: longer than the idle pools of common clients — Go's net/http and Rust's hyper/reqwest (Codex CLI) keep an idle
#: connection 90 s, so at 75 s the server closed it just as the client reused it ("connection closed before message
#: completed": duolahypercho/codex-router#165, 514-labs/moosestack#3698; Soju06/codex-lb#2042 on hyper-util's
#: 90 s). Every wait inside a request (its head, its body, a client not taking its answer) keeps the keep-alive bound.
IDLE_BOUNDS = 1.6
#: what a connection's transport buffers of an answer its client has not taken yet before the answer waits on the
#: client (a reverse proxy's ``proxy_buffering``): a slow reader no longer holds its model's slot — the answer is
#: read at the model's pace, the slot freed and the row written when it is whole, and the client reads the rest from
#: memory. Past it the stream waits on the client as before (logged once per connection). Past its first 64 KiB a
#: connection's buffer comes from the budget all connections share (gateway/answer_budget.py).
ANSWER_BUFFER = 4 * 1024 * 1024
#: how often a connection holding some of the answer budget looks whether its client has taken it (to give it back)
BUDGET_LOOK = 0.25
#: the transport's methods a server calls per request, bound on the wrapper itself
_ASKED = ("get_extra_info", "is_closing", "pause_reading", "resume_reading")


class HeldHead:
    """A transport that holds a response head until the next write or the loop's next iteration."""

    __slots__ = ("_held", "_loop", "_transport", "free", "get_extra_info", "is_closing", "over", "pause_reading",
                 "resume_reading")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        #: past this many bytes unsent, a write calls ``over`` (the connection takes more of the answer budget)
        self.free = sys.maxsize
        self.over: Any = None
        # what the server asks of its transport per request, found here: a name that only __getattr__ finds
        # costs a raised and discarded AttributeError on every access first (issue #15)
        for name in _ASKED:
            if (method := getattr(transport, name, None)) is not None:
                setattr(self, name, method)

    def write(self, data: bytes) -> None:
        held = self._held
        transport = self._transport
        if held is not None:
            self._held = None
            transport.write(held + data)
        elif data.startswith(_HEAD) and data.endswith(_END_OF_HEAD):
            self._held = data
            self._loop.call_soon(self.release)
            return
        else:
            transport.write(data)
        if transport.get_write_buffer_size() > self.free:
            self.over()

    def release(self) -> None:
        """Send a head still held (nothing followed it in the step that wrote it)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.release()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`HeldHead` transport (``uvicorn.run(http=...)``), which
    also tells each request when its connection is lost (a :class:`~modelyard.gateway.disconnect.Hangup`
    in its scope), so a handler need not keep a task reading ``receive`` to find out."""

    #: the answer bytes buffered for a client before a write waits on it (:data:`ANSWER_BUFFER`; a test sets less)
    answer_buffer = ANSWER_BUFFER

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio's 64 KiB high-water mark made a stream wait on a slow reader, its model slot held meanwhile
        transport.set_write_buffer_limits(high=self.answer_buffer)
        head = HeldHead(transport, asyncio.get_running_loop())
        self.answers = _budget_of(self.app)
        if self.answers is not None and self.answer_buffer > FREE:
            head.free, head.over = FREE, self._buffer_more
        super().connection_made(head)  # type: ignore[arg-type]
        # uvicorn bounds only the wait between requests: a connection that never sent a byte, or stopped halfway
        # through a request's head or body (a client gone without a FIN, a slowloris), was held for good, with its
        # handler task waiting for the rest of the body; every wait on the client has the keep-alive bound now
        self._idle_since = now = self.loop.time()
        self.timeout_keep_alive_task = self.loop.call_at(now + self.timeout_keep_alive, self._keep_alive_due)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[HANGUP] = Hangup()  # type: ignore[literal-required]

    # -- pipelined requests: the one being answered is not uvicorn's ``cycle`` -----------------------------------------
    #: the request whose task runs (uvicorn's ``cycle`` is the last request read: a pipelined one queued behind it)
    _running: RequestResponseCycle | None = None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def _answered(self) -> RequestResponseCycle | None:
        """The request being answered: uvicorn's ``cycle`` unless pipelined requests wait behind it."""
        return self._running if self.pipeline else self.cycle

    # -- a request head's size: bounded, as h11 and nginx bound it (httptools does not) -------------------------------
    #: the scope of the request whose head was still incomplete after a read, and the bytes of it read since
    _head_of: object = None
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        """uvicorn's, then — only when the read left a request's head incomplete — its size checked: under httptools
        uvicorn bounds neither a head's size nor its header count (h11's ``max_incomplete_event_size`` is 16 KiB;
        Kludex/uvicorn#157: httptools' limit cannot be set), so one client could send a header of any size — 20 MB
        held 56 MB of the gateway's memory here — or any number of them (vLLM's GHSA-rxc4-3w6r-4v47). The reads
        after the first one that left the head incomplete are counted whole (each is all head); past
        :data:`HEAD_LIMIT` the request gets a 431 and the connection closes. A head that a read completes — every
        request's, from a client that is not trickling it — costs two comparisons."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            elif self.cycle is not None and self.cycle.scope is self.scope and not self.cycle.response_complete:
                self._read_declined(data[exc.args[0]:])
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            self.logger.warning("Invalid HTTP request received.")
            # a callback's own parser error (a URL past 64 KiB: "url is too long…") is the reason (not "User callback
            # error")
            why = exc.__context__ if isinstance(exc.__context__, httptools.HttpParserError) else exc
            self.transport.write(refusal(b"400 Bad Request", getattr(self, "url", b""),
                                         f"the request is not valid HTTP/1.1: {why}"))
            self.transport.close()
            return
        scope, cycle = self.scope, self.cycle
        if scope is None or (cycle is not None and cycle.scope is scope):
            return  # no head coming: between requests, or amid a body
        if self._head_of is not scope:
            self._head_of, self._head_bytes = scope, 0
        else:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self.transport.write(refusal(b"431 Request Header Fields Too Large", getattr(self, "url", b""),
                                             "the request's headers are larger than this gateway takes (64 KiB)",
                                             "headers_too_large"))
                self.transport.close()

    # -- keep-alive: one timer per connection that lapses, not one made and cancelled per response ------------
    #: loop time since which the connection waits on its client — before its first request, for the rest of a
    #: request's head or body, or idle between requests; None while the app answers a whole request
    _idle_since: float | None = None
    #: the app has a whole request and answers it (bytes the client sends meanwhile are no progress to wait for)
    _answering = False
    #: the scope of a request whose head was still coming when the bound came due (a second time closes)
    _slow_head: object = None

    def _unset_keepalive_if_required(self) -> None:  # uvicorn calls it first thing on every read from the client
        if not self._answering:
            self._idle_since = self.loop.time()  # the client is sending: its bound starts again

    # -- an Upgrade declined: its request's body read as HTTP/1.1 (RFC 9110 §7.8: a server may ignore Upgrade) ---------
    def _should_upgrade(self) -> bool:
        """Never: the gateway serves no WebSocket, so ``Upgrade: websocket`` is declined as ``h2c`` is and the request
        served over HTTP/1.1. uvicorn handed it to its WebSocket protocol, which answered a bodiless text/plain 403
        (a POST's body unread, no error in the API's shape, no status a WebSocket client can show)."""
        return False

    def _read_declined(self, rest: bytes) -> None:
        """The body of a request whose ``Upgrade`` is not taken (``Upgrade: h2c``: every JDK ``HttpClient`` offers it
        on a cleartext URL, so LangChain4j, Spring AI's and Spring's RestClient send it on every request). httptools
        stops at such a head and uvicorn handed the app an empty body — a 400 "not a JSON object" for a valid request
        (Kludex/uvicorn#2722, MagicStack/httptools#124, langchain4j/langchain4j#3682; vLLM's #57203). Here the body is
        read by a parser of its own (its framing: the request's ``Content-Length`` or chunked), delivered as any body
        is, and the connection closes after the answer (what followed the body on it is not read)."""
        headers = dict(self.headers)
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length = headers.get(b"content-length", b"0").strip()
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: " + (length if length.isdigit()
                                                                                         else b"0")
        self.cycle.keep_alive = False
        self.parser = httptools.HttpRequestParser(_BodyOf(self))
        self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        self.data_received(rest)

    def _declined_read(self) -> None:
        """The declined upgrade's body is whole: the request is too, and a parser for HTTP/1.1 requests is back."""
        self.parser = httptools.HttpRequestParser(self)
        self.on_message_complete()

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade() and not self._should_upgrade():
            return  # an Upgrade not taken: its body is still to come (_read_declined), the request is not whole
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # not after an early answer (a 401, a 413)
            self._answering = True
            self._idle_since = None  # a keep-alive timer that comes due now lapses

    def on_response_complete(self) -> None:
        """uvicorn's, except for the keep-alive bound: the idle stretch's start is noted and a timer is made only
        if none is pending (uvicorn makes one per response and cancels it when the next request arrives: a
        handle, a push on the loop's heap and a cancelled handle left there per request; issue #15)."""
        self.server_state.total_requests += 1
        self._answering = False
        if self.transport.is_closing():  # connection: close — the close waits for what the client has not taken
            if self._stall is None and self.transport.get_write_buffer_size():
                self._unsent = self._unsent_bytes()  # ...for good, unless a client that takes nothing is cut off
                self._stall = self.loop.call_later(self.timeout_keep_alive, self._write_due)
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._answering = True
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = now = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_at(now + self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        idle = self._idle_since
        if idle is None:  # a request is on the connection: its response arms the bound again
            return
        due = idle + self.timeout_keep_alive
        now = self.loop.time()
        scope, cycle = self.scope, self.cycle
        body_coming = cycle is not None and cycle.scope is scope and cycle.more_body  # amid a request's body
        if due - now > _EARLY:  # requests came and went since: the bound moved on
            if scope is not None and (cycle is None or cycle.scope is not scope):  # amid a request's head
                if self._slow_head is scope:
                    # a head still coming a bound after it was seen coming: a trickle (slowloris), not a client
                    # whose head crosses the network in one packet; without this a byte a bound kept it open for
                    # good (uvicorn bounds a head's size, h11_max_incomplete_event_size, not its time)
                    self.timeout_keep_alive_handler()
                    return
                self._slow_head = scope
            elif body_coming:
                seen = self._slow_body
                if seen is None or seen[0] is not scope:
                    self._slow_body = seen = (scope, now)
                elif now - seen[1] >= self._body_bound() - _EARLY:
                    # a body that keeps coming, a byte a bound, held its handler and what came of it for good
                    self._body_late(cycle, f"the request body took longer than {_seconds(self._body_bound())}, the "
                                    "most this gateway waits for a whole body: send it faster, or a smaller one")
                    return
                # looked at when it runs out, not at the first keep-alive look after (up to a bound late: serve's
                # 408 came 450 s after the head where 375 s is the most said, benchmarks/soak_shared.py)
                due = min(due, seen[1] + self._body_bound())
            self.timeout_keep_alive_task = self.loop.call_at(due, self._keep_alive_due)
        elif self._unread():
            # the client's next bytes are in the socket already: they came after the loop last looked at it, while
            # the callbacks queued before this timer ran (a busy loop). The connection was closed unread — a request
            # that had reached the gateway reset, never routed nor logged, where the client could not safely send a
            # POST again (tests/gateway/test_idle_close_race.py). Not idle: the loop's next iteration reads them.
            self._idle_since = now
            self.timeout_keep_alive_task = self.loop.call_at(now + self.timeout_keep_alive, self._keep_alive_due)
        elif body_coming:
            self._body_late(cycle, f"nothing of the request body came for {_seconds(self.timeout_keep_alive)}, the "
                            "most this gateway waits between two pieces of a body")
        elif self.transport.get_write_buffer_size():
            # idle, its last answer not all taken: a slow reader still taking it gets another bound; one that took
            # nothing is aborted (a close would wait for the unsent bytes for good)
            unsent = self._unsent_bytes()
            seen = self._draining
            if seen is None or seen[0] is not cycle or unsent < seen[1]:
                self._draining = (cycle, unsent)
                self._idle_since = now
                self.timeout_keep_alive_task = self.loop.call_at(now + self.timeout_keep_alive, self._keep_alive_due)
            else:
                self.transport.abort()
        elif cycle is not None and cycle.scope is scope and now - idle < self._idle_bound() - _EARLY:
            # between requests (not before the first, not amid a head): the longer idle bound
            self.timeout_keep_alive_task = self.loop.call_at(idle + self._idle_bound(), self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    #: (request, unsent bytes) when a keep-alive timer last found that answer's bytes still buffered
    _draining: tuple[object, int] | None = None

    def _idle_bound(self) -> float:
        """The longest a connection stays idle between two requests (:data:`IDLE_BOUNDS`)."""
        return IDLE_BOUNDS * self.timeout_keep_alive

    # -- a body that does not come: a 408, as nginx's client_body_timeout answers ----------------------------------
    #: (scope, loop time) of the request whose body a keep-alive timer first saw still coming
    _slow_body: tuple[object, float] | None = None

    def _body_bound(self) -> float:
        """The longest a whole body may take (a multiple of the keep-alive bound: 300 s for ``serve``'s 75 s), counted
        from a timer's first sight of it — so 4 to 5 bounds after the head."""
        return BODY_BOUNDS * self.timeout_keep_alive

    def _body_late(self, cycle: RequestResponseCycle, why: str) -> None:
        """Stop waiting for the rest of ``cycle``'s body: its handler's ``receive`` says the client is gone (so it
        stops reading), and a :class:`~modelyard.gateway.disconnect.LateBody` in its scope lets the handler answer
        it a 408 saying ``why`` (gateway/intake.py), after which the connection closes. A handler that has already
        answered, or that does not take the 408, has its connection closed (at the next bound for the latter)."""
        if cycle.response_started or LATE_BODY in cycle.scope:
            self.timeout_keep_alive_handler()
            return

        def revive() -> None:
            if not self.transport.is_closing():
                cycle.disconnected = False

        cycle.scope[LATE_BODY] = LateBody(why, revive)  # type: ignore[literal-required]
        cycle.keep_alive = False  # the rest of the body would be taken for the next request
        cycle.disconnected = True
        cycle.message_event.set()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    # -- a client that half-closes: answered when it said it would send nothing more --------------------------------
    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio: True keeps the transport open
        """The client shut its side down (a FIN). uvicorn takes every FIN for a client gone — the request is
        cancelled — where the HTTP working group says a half-close means only "nothing more to send"
        (httpwg/http-core#22; Kludex/uvicorn#1264 — Apache, IIS, lighttpd, Varnish and Hypercorn answer, nginx does
        not). A FIN cannot tell a half-close (``shutdown(SHUT_WR)``: netcat ``-N``/``-q``, ``socat``, HTTP/1.0
        scripts) from a close (a stop button, a Ctrl-C, an SDK's timeout), which is the common case and whose model
        slot should be freed at once. So a whole request that said it is the connection's last — HTTP/1.0, or
        ``Connection: close`` — is answered (then the connection closes); any other is taken as gone, as before.
        The cost when such a client had in fact closed: its answer runs to the end for nobody (a stream stops at
        its first writes, refused by the client's end)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return None  # between requests: close
        last = self.pipeline[0][0] if self.pipeline else cycle
        scope = last.scope
        if last.more_body or not (scope.get("http_version") == "1.0" or CLOSE_HEADER in scope["headers"]):
            return None  # mid-request, or a client that meant to keep the connection: gone
        last.keep_alive = False
        return True  # keep the transport open for the answer (asyncio stops reading it)

    # -- a client that stops reading: the same bound on a wait for it to take what it was sent -------------------
    #: the timer that comes due when the client has taken nothing for the bound (armed only while writes are paused)
    _stall: asyncio.TimerHandle | None = None
    #: bytes waiting in the transport's buffer when the stall timer was armed
    _unsent = 0
    #: the log said once that this connection's answer buffer filled
    _said_full = False

    # -- the answer buffer, taken from the budget all connections share (gateway/answer_budget.py) ------------------
    #: the budget (the app's; None: an app without one, whose connections buffer up to answer_buffer each)
    answers: AnswerBudget | None = None
    #: the bytes of the budget this connection holds
    _taken = 0
    #: the budget was spent: this connection's answer waits on its client until it has taken what is buffered
    _short = False
    #: the timer that gives back what the client has taken since (armed while the connection holds some)
    _looking: asyncio.TimerHandle | None = None

    def _buffer_more(self) -> None:
        """A write left more unsent than this connection holds of the budget: take more, in steps, up to the
        connection's own bound; if the budget is spent, bound the transport's buffer to what is held (the transport
        pauses writing at once, and the stream waits on the client as before the answer buffer).

        The transport's ``free`` is always what the connection holds (``FREE + _taken``), refused or not: it was set
        past any bound while refused, to keep this from being called, and a refused connection that held nothing
        kept it so once its client had read — it buffered up to its own 4 MiB again, none of it counted."""
        answers, transport = self.answers, self.transport
        assert answers is not None
        if self._short:  # it waits on its client already: nothing more is taken until the client has read
            return
        size = transport.get_write_buffer_size()
        room = self.answer_buffer - FREE
        while size > FREE + self._taken and self._taken < room:
            step = min(STEP, room - self._taken)
            if not answers.take(step):
                self._short = True
                answers.waiting += 1
                if not answers.said:
                    answers.said = True
                    self.logger.warning(
                        "the answers buffered ahead of slow clients hold %d MiB, all this gateway buffers "
                        "(gateway.max_answers_mb): past %d KiB unsent, a client's answer now waits on it, its model "
                        "slot held, until some is taken (said once; /healthz: answer_buffers)",
                        answers.total >> 20, FREE >> 10)
                transport.set_write_buffer_limits(high=FREE + self._taken)
                break
            self._taken += step
        transport.free = FREE + self._taken  # type: ignore[attr-defined]
        if self._taken and self._looking is None:
            self._looking = self.loop.call_later(BUDGET_LOOK, self._look)

    def _settle(self) -> None:
        """Give back the steps of the budget whose bytes the client has taken."""
        answers = self.answers
        if answers is None or not self._taken:
            return
        over = self.transport.get_write_buffer_size() - FREE
        keep = 0 if over <= 0 else min(self._taken, -(-over // STEP) * STEP)
        answers.give(self._taken - keep)
        self._taken = keep
        self.transport.free = FREE + keep  # type: ignore[attr-defined]

    def _look(self) -> None:
        self._looking = None
        self._settle()
        if self._taken:
            self._looking = self.loop.call_later(BUDGET_LOOK, self._look)

    def pause_writing(self) -> None:
        """The transport's buffer passed its high-water mark: the client takes less than it is sent. uvicorn then
        makes the next ``send`` wait for it with no bound, so a client that stopped reading — a zero receive window:
        an SDK stream left unread (openai-python #969: "break" from the iterator leaks the response), a frozen
        process, a reader stuck on something else — held its handler, its model slot and its upstream request for
        good (hypercorn added ``write_timeout`` for this, pgjones/hypercorn#262). Only here, off the normal path."""
        super().pause_writing()
        if not self._said_full and not self._short:  # the budget's own line said it, once for all connections
            self._said_full = True
            self.logger.warning("a client reads slower than its answer comes: past the %d bytes buffered for it, "
                                "the answer waits on it (its model slot held meanwhile)", self.answer_buffer)
        self._unsent = self._unsent_bytes()
        if self._stall is None:
            self._stall = self.loop.call_later(self.timeout_keep_alive, self._write_due)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._short:  # the client took what was buffered: the next write may take from the budget again
            self._short = False
            assert self.answers is not None
            self.answers.waiting -= 1
            self.transport.set_write_buffer_limits(high=self.answer_buffer)
            self._settle()

    def _write_due(self) -> None:
        """Writes stayed paused for the bound: a client that took some meanwhile is slow and gets the bound again
        (nginx's ``send_timeout`` counts between two writes that move, not the whole answer); one that took nothing
        is cut off: the connection is aborted (a close would wait for the unsent bytes for good: uvicorn's
        ``close`` never reached ``connection_lost``, pipecat-ai/pipecat#5789), its request cancelled as a
        disconnect is, and its row says ``client_stalled``."""
        self._stall = None
        unsent = self._unsent_bytes()
        if unsent < self._unsent:
            self._unsent = unsent
            self._stall = self.loop.call_later(self.timeout_keep_alive, self._write_due)
            return
        cycle = self._answered()
        if cycle is not None and not cycle.response_complete:
            hangup = cycle.scope.get(HANGUP)
            if isinstance(hangup, Hangup):
                hangup.gone = Reason.CLIENT_STALLED  # connection_lost tells the request, with this reason
        self.transport.abort()

    def _unread(self) -> int:
        """The bytes the client sent that the loop has not read yet (0 while reading is paused on purpose: those wait
        for the handler, not for the client; and 0 where the socket cannot be asked)."""
        transport = self.transport
        sock = transport.get_extra_info("socket")
        if _INQ is None or sock is None or not transport.is_reading():
            return 0
        with contextlib.suppress(OSError, ValueError):
            return struct.unpack("i", fcntl.ioctl(sock.fileno(), _INQ, b"\0\0\0\0"))[0]
        return 0

    def _unsent_bytes(self) -> int:
        """What the client has not taken yet: the transport's buffer and the socket's send queue. The queue counts:
        Linux wakes a writer only once half its send buffer (up to 4 MiB) is free, so a client reading slowly moves
        that queue long before the transport's buffer moves at all."""
        unsent = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if _OUTQ is not None and sock is not None:
            with contextlib.suppress(OSError, ValueError):
                unsent += struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
        return unsent

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._looking is not None:
            self._looking.cancel()
            self._looking = None
        if self.answers is not None and self._taken:  # its buffer is freed with it
            self.answers.give(self._taken)
            self._taken = 0
        if self._short:  # gone while its answer waited on it
            self._short = False
            assert self.answers is not None
            self.answers.waiting -= 1
        answered = self._answered()
        super().connection_lost(exc)
        if answered is not None and answered is not self.cycle and not answered.response_complete:
            # uvicorn told only its ``cycle``, a pipelined request queued behind this one (which never runs now): the
            # request being answered ran on for nobody, its model slot held, its row saying ``ok``
            answered.disconnected = True
            answered.message_event.set()
        if answered is not None and not answered.response_complete:
            hangup = answered.scope.get(HANGUP)
            if isinstance(hangup, Hangup):
                hangup.lost(hangup.gone or True)  # a reason the server gave (a stall) stays


def _budget_of(app: Any) -> AnswerBudget | None:
    """The answer budget of the gateway app that uvicorn's app (perhaps wrapped in its middleware) is."""
    for _ in range(4):
        gateway = getattr(app, "gateway", None)
        if gateway is not None:
            return getattr(gateway, "answers", None)
        app = getattr(app, "app", None)
    return None


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def send_whole(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview,
               head: bytes | None = None) -> bool:
    """Write a whole response (status, headers, a body of known length) in one step through uvicorn's httptools
    cycle, as its ``send`` would for ``http.response.start`` and one ``http.response.body``; True once done.

    False, with nothing done, unless ``send`` is such a cycle's in its plain state (nothing sent, connection up,
    writes not paused, not ``HEAD``) and the headers are plain (one ``content-length`` that is the body's, no
    ``connection`` or ``transfer-encoding``): the caller then sends the ASGI way. uvicorn checks each header name
    and value with a regular expression in its own call per message (486 bytecodes per answer, on a lone request's
    path after its commit, issue #15); here the names and the values are each checked in one pass over all of
    them — a forbidden byte in one is one in their concatenation — and a header uvicorn would refuse goes the
    ASGI way, where uvicorn refuses it as before. The same bytes leave, in one write (so no head is held).

    ``head``: ``headers`` as the lines they make, known plain and checked (``JSONBody.head``, made from
    ``route_headers``' answer, its route's part encoded once): only the server's own headers are looked at
    here, and those once per list uvicorn makes (each second, for its ``date``).
    """
    cycle = getattr(send, "__self__", None)
    if type(cycle) is not RequestResponseCycle or cycle.response_started or cycle.disconnected \
            or cycle.flow.write_paused:
        return False
    scope = cycle.scope
    if scope["method"] == "HEAD":
        return False
    server = None if head is None else _server_lines(cycle.default_headers)
    content: list[bytes | memoryview] | None = [STATUS_LINE[status], server, head] \
        if server is not None and head is not None \
        else _listed(status, cycle.default_headers + headers, len(body))
    if content is None:
        return False
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    if cycle.access_log:
        cycle.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                                 get_path_with_query_string(scope), scope["http_version"], status)
    if not cycle.keep_alive:
        content.append(b"connection: close\r\n")
    content += (b"\r\n", body)
    cycle.chunked_encoding = False
    cycle.expected_content_length = 0
    cycle.transport.write(b"".join(content))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()
    return True


def _listed(status: int, headers: list[tuple[bytes, bytes]], length: int) -> list[bytes | memoryview] | None:
    """The status line and header lines, names lower-cased; None unless the headers are plain (see send_whole)."""
    content: list[bytes | memoryview] = [STATUS_LINE[status]]
    names: list[bytes] = []
    values: list[bytes] = []
    said = None
    for name, value in headers:
        name = name.lower()
        if name == b"content-length":
            if said is not None:
                return None
            said = value
        elif name == b"connection" or name == b"transfer-encoding":
            return None
        names.append(name)
        values.append(value)
        content += (name, b": ", value, b"\r\n")
    if said != b"%d" % length:
        return None
    # uvicorn's checks, as bytes deleted: a byte-table pass in C where the regular expressions' character-class scan
    # took ~8,000 instructions per answer (callgrind, issue #15 round 12)
    named, valued = b"".join(names), b"".join(values)
    if len(named.translate(None, NAME_REFUSED)) != len(named) \
            or len(valued.translate(None, VALUE_REFUSED)) != len(valued):
        return None
    return content


#: the server's own headers last seen (uvicorn makes the list anew each second) and their lines, or None if not plain
_server: list[Any] = [None, None]


def _server_lines(defaults: list[tuple[bytes, bytes]]) -> bytes | None:
    """uvicorn's default headers (``date``, ``server``, a config's ``headers``) as lines, if plain (no length, no
    ``connection`` or ``transfer-encoding``, nothing uvicorn refuses); looked at once per list."""
    if defaults is _server[0]:
        return _server[1]
    content = _listed(200, [*defaults, (b"content-length", b"0")], 0)
    lines = None if content is None else b"".join(content[1:-4])  # no status line, no length line
    _server[:] = [defaults, lines]
    return lines

