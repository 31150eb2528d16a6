"""``send_whole`` (gateway/transport.py): a whole JSON answer through uvicorn's httptools cycle in one step — the
same bytes and the same cycle state as uvicorn's ``send`` for ``http.response.start`` and one body (issue #15);
anything it does not take on is left untouched for the ASGI way, where uvicorn refuses what it refuses."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, RequestResponseCycle

from modelyard.gateway.transport import NAME_REFUSED, VALUE_REFUSED, send_whole


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data) -> None:  # type: ignore[no-untyped-def, override]
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _cycle(*, method: str = "POST", keep_alive: bool = True, access_log: bool = False,
           log: logging.Logger | None = None) -> tuple[RequestResponseCycle, _Transport, list[int]]:
    transport = _Transport()
    responses: list[int] = []
    # raw_path as uvicorn's own scope has it (uvicorn 0.55 reads it for the access-log line; earlier releases
    # quoted `path`)
    scope = {"type": "http", "method": method, "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"",
             "http_version": "1.1", "client": ("127.0.0.1", 5555), "headers": []}
    cycle = RequestResponseCycle(scope=scope, transport=transport, flow=FlowControl(transport),  # type: ignore[arg-type]
                                 logger=logging.getLogger("t"), access_logger=log or logging.getLogger("t.access"),
                                 access_log=access_log, default_headers=[(b"date", b"Sun, 29 Nov 2026 06:00:00 GMT")],
                                 message_event=asyncio.Event(), expect_100_continue=False, keep_alive=keep_alive,
                                 on_response=lambda: responses.append(1))
    return cycle, transport, responses


def _state(cycle: RequestResponseCycle) -> tuple:
    return (cycle.response_started, cycle.response_complete, cycle.expected_content_length, cycle.chunked_encoding,
            cycle.message_event.is_set(), cycle.waiting_for_100_continue)


BODY = b'{"id":"chatcmpl-1","object":"chat.completion"}'
PLAIN = [(b"x-modelyard-request-id", b"r1"), (b"x-modelyard-route", b"fast ok (max_tokens 9 clamped to 4)"),
         (b"content-length", b"%d" % len(BODY)), (b"content-type", b"application/json")]


@pytest.mark.parametrize(("headers", "status", "keep_alive"), [
    (PLAIN, 200, True),
    (PLAIN, 200, False),  # the client asked to close: uvicorn adds connection: close and closes
    (PLAIN, 404, True),
    ([(b"X-Mixed-Case", b"v"), *PLAIN], 503, True),
    ([(b"retry-after", b"5"), (b"www-authenticate", b"Bearer"), *PLAIN], 401, True),
    # names as an app may spell them: lowered on the wire, as uvicorn writes them (the length found as any case)
    ([(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(BODY)), (b"X-Request-ID", b"r1")],
     200, True),
])
def test_the_same_bytes_and_state_as_uvicorns_send(headers, status, keep_alive) -> None:
    async def main() -> None:
        theirs, their_transport, their_responses = _cycle(keep_alive=keep_alive)
        await theirs.send({"type": "http.response.start", "status": status, "headers": headers})
        await theirs.send({"type": "http.response.body", "body": BODY})
        ours, our_transport, our_responses = _cycle(keep_alive=keep_alive)
        assert send_whole(ours.send, status, headers, BODY)
        assert b"".join(our_transport.written) == b"".join(their_transport.written)
        assert len(our_transport.written) == 1  # head and body in one write
        assert _state(ours) == _state(theirs)
        assert our_responses == their_responses == [1]
        assert our_transport.closed == their_transport.closed == (not keep_alive)

    asyncio.run(main())


def test_the_access_log_line_is_uvicorns(caplog) -> None:
    async def main() -> list[str]:
        lines = []
        for way in ("theirs", "ours"):
            cycle, _, _ = _cycle(access_log=True, log=logging.getLogger(f"access.{way}"))
            with caplog.at_level(logging.INFO):
                caplog.clear()
                if way == "theirs":
                    await cycle.send({"type": "http.response.start", "status": 200, "headers": PLAIN})
                    await cycle.send({"type": "http.response.body", "body": BODY})
                else:
                    assert send_whole(cycle.send, 200, PLAIN, BODY)
                lines += [r.getMessage() for r in caplog.records]
        return lines

    theirs, ours = asyncio.run(main())
    assert ours == theirs == '127.0.0.1:5555 - "POST /v1/chat/completions HTTP/1.1" 200'


@pytest.mark.parametrize("case", ["header name", "header value", "a newline in a name", "length", "two lengths",
                                  "two lengths, one capitalised", "connection", "Connection", "chunked",
                                  "Transfer-Encoding", "head", "started", "not uvicorn's"])
def test_what_it_does_not_take_on_is_left_untouched(case) -> None:
    async def main() -> None:
        cycle, transport, responses = _cycle(method="HEAD" if case == "head" else "POST")
        headers = list(PLAIN)
        send = cycle.send
        if case == "header name":
            headers.append((b"bad name", b"v"))
        elif case == "header value":
            headers.append((b"x-injected", b"a\r\nset-cookie: b"))
        elif case == "a newline in a name":
            headers.append((b"x-a\nconnection", b"v"))
        elif case == "length":
            headers[2] = (b"content-length", b"3")
        elif case == "two lengths":
            headers.append((b"content-length", b"%d" % len(BODY)))
        elif case == "two lengths, one capitalised":
            headers.append((b"Content-Length", b"%d" % len(BODY)))
        elif case == "connection":
            headers.append((b"connection", b"close"))
        elif case == "Connection":
            headers.append((b"Connection", b"close"))
        elif case == "chunked":
            headers.append((b"transfer-encoding", b"chunked"))
        elif case == "Transfer-Encoding":
            headers.append((b"Transfer-Encoding", b"chunked"))
        elif case == "started":
            await cycle.send({"type": "http.response.start", "status": 200, "headers": PLAIN})
            transport.written.clear()
        elif case == "not uvicorn's":
            async def send(message):  # type: ignore[no-untyped-def]
                raise AssertionError("not called")
        before = _state(cycle)
        assert not send_whole(send, 200, headers, BODY)
        assert transport.written == [] and responses == [] and _state(cycle) == before
        if case in ("header name", "header value", "a newline in a name"):  # the ASGI way: uvicorn refuses it
            with pytest.raises(RuntimeError, match="Invalid HTTP header"):
                await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})

    asyncio.run(main())


def test_the_refused_bytes_are_uvicorns_patterns() -> None:
    """``send_whole`` checks the names and the values by the bytes uvicorn's two patterns refuse (a table pass, not
    their scan): on every byte, and on strings of mixed bytes, both say the same."""
    rng = random.Random(15)
    for pattern, refused in ((HEADER_RE, NAME_REFUSED), (HEADER_VALUE_RE, VALUE_REFUSED)):
        assert refused and all((pattern.search(bytes((b,))) is None) == (b not in refused) for b in range(256))
        for _ in range(2000):
            text = bytes(rng.choice(range(256)) if rng.random() < 0.05 else rng.choice(b"abc-XYZ09 ")
                         for _ in range(rng.randrange(0, 40)))
            assert (pattern.search(text) is None) == (len(text.translate(None, refused)) == len(text))
