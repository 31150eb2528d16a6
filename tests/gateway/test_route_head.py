"""A routed answer's headers (gateway/responses.py ``route_headers``, ``JSONBody.head``; gateway/transport.py
``send_whole``'s ``head``): a route's part encoded and checked once, the same bytes on the wire as before — as
Starlette lists the headers and as uvicorn's own ``send`` writes them (issue #15: ~440 bytecodes per answer)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.responses import Response

from modelyard.gateway.responses import JSONBody, SSEResponse, replayed, route_headers
from modelyard.gateway.transport import send_whole
from modelyard.outcomes import AttemptOutcome
from modelyard.router.records import Attempt, RequestRecord, new_request_id
from tests.gateway.test_send_whole import _cycle

BODY = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'


def _record(agent: str = "bench", model: str | None = "fast", detail: str = "") -> RequestRecord:
    attempts = [Attempt("slow", "openai", AttemptOutcome.SKIPPED, reason=None, detail=""),
                Attempt(model or "fast", "openai", AttemptOutcome.OK, detail=detail)]
    return RequestRecord(new_request_id(), agent, model=model, attempts=attempts)


RECORDS = {
    "plain": lambda: _record(),
    "no model": lambda: _record(model=None),
    "not ascii": lambda: _record(agent="caf\u00e9 \u2192 b\u00e4r", detail="max_tokens 9 clamped to 4 \u2014 note"),
    # a byte uvicorn refuses in a value (a provider's detail with a newline): the ASGI way, where uvicorn refuses it
    "a newline": lambda: _record(detail="line one\r\nset-cookie: x"),
}
SERVER = [(b"date", b"Sun, 29 Nov 2026 21:00:00 GMT"), (b"server", b"uvicorn")]


@pytest.mark.parametrize("case", list(RECORDS))
@pytest.mark.parametrize("truncated", [False, True])
def test_a_routed_answer_lists_and_writes_the_same_headers(case: str, truncated: bool) -> None:
    record = RECORDS[case]()
    headers = route_headers(record, truncated=truncated)
    plain = dict(headers)
    ours = JSONBody(BODY, 200, headers)
    assert ours.raw_headers == Response(BODY, 200, plain, media_type="application/json").raw_headers
    sse = SSEResponse(replayed([]), headers)
    assert sse.raw_headers == SSEResponse(replayed([]), plain).raw_headers
    assert (ours.head is None) == (case == "a newline")  # None on the old code for every case: it had no head

    async def main() -> None:
        for keep_alive in (True, False):
            theirs, their_transport, _ = _cycle(keep_alive=keep_alive)
            theirs.default_headers = list(SERVER)
            ours_cycle, our_transport, responses = _cycle(keep_alive=keep_alive)
            ours_cycle.default_headers = list(SERVER)
            sent = send_whole(ours_cycle.send, 200, ours.raw_headers, ours.body, ours.head)
            if case == "a newline":
                assert not sent and our_transport.written == []
                with pytest.raises(RuntimeError, match="Invalid HTTP header"):
                    await theirs.send({"type": "http.response.start", "status": 200, "headers": ours.raw_headers})
                continue
            await theirs.send({"type": "http.response.start", "status": 200, "headers": ours.raw_headers})
            await theirs.send({"type": "http.response.body", "body": BODY})
            assert sent and responses == [1]
            assert b"".join(our_transport.written) == b"".join(their_transport.written)

    asyncio.run(main())


def test_a_route_is_encoded_once() -> None:
    """Two answers by the same route share its encoded headers; only the request id is new."""
    first, second = JSONBody(BODY, 200, route_headers(_record())), JSONBody(BODY, 200, route_headers(_record()))
    assert first.raw_headers[0] != second.raw_headers[0]  # the request ids
    assert all(a[1] is b[1] for a, b in zip(first.raw_headers[1:4], second.raw_headers[1:4], strict=True))


def test_the_server_s_own_headers_are_looked_at_again_when_uvicorn_makes_them_anew() -> None:
    """uvicorn makes its list of default headers anew each second (its date) and from its config (``headers``): a
    new list is written as it is, and one holding a byte uvicorn refuses sends the answer the ASGI way."""
    ours = JSONBody(BODY, 200, route_headers(_record()))

    async def main() -> None:
        for server in (SERVER, [(b"date", b"Sun, 29 Nov 2026 21:00:01 GMT"), (b"server", b"uvicorn")],
                       [*SERVER, (b"x-config", b"a\nb")], [*SERVER, (b"Connection", b"close")]):
            theirs, their_transport, _ = _cycle()
            theirs.default_headers = server
            cycle, transport, _ = _cycle()
            cycle.default_headers = server
            if not send_whole(cycle.send, 200, ours.raw_headers, ours.body, ours.head):
                assert server[-1][0] in (b"x-config", b"Connection") and transport.written == []
                continue
            await theirs.send({"type": "http.response.start", "status": 200, "headers": ours.raw_headers})
            await theirs.send({"type": "http.response.body", "body": BODY})
            assert server[-1][0] == b"server"
            assert b"".join(transport.written) == b"".join(their_transport.written)

    asyncio.run(main())

