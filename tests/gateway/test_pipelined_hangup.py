"""A client that hangs up with pipelined requests queued behind the one being answered.

HTTP/1.1 pipelining (RFC 9112 §9.3): a client may send its next requests before the answer to the first; the server
answers them in order. uvicorn under httptools queues a pipelined request (``pipeline``) and makes it the protocol's
``cycle`` at once, while the first one's task runs — and when the connection is lost it tells only that ``cycle``,
the queued one, that the client went (Kludex/uvicorn, ``HttpToolsProtocol.connection_lost``). The request being
answered was never told: its model call went on for nobody to its end, holding its slot, and its row said ``ok``.
The queued requests never run (uvicorn starts the next only on a live connection): the model is not asked, nothing is
sent, and there is no row — the gateway never began them, as for a request in a connection closed before it is read.

Driven by a raw socket (no HTTP client library pipelines), both ways a client leaves: a FIN (``close``) and a reset
(``SO_LINGER`` 0, what a killed process's socket or a proxy's abort sends).
"""

from __future__ import annotations

import json
import socket
import struct

import pytest

from modelyard.ledger import connect
from tests.fakes import Fault
from tests.gateway.harness import GatewayServer


def _post(model: str, text: str) -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body)) + body


def _rows(gateway: GatewayServer) -> list[tuple[str, str]]:
    conn = connect(gateway.runtime.log_path, readonly=True)
    try:
        return [tuple(r) for r in conn.execute("SELECT agent, outcome FROM requests ORDER BY ts")]
    finally:
        conn.close()


@pytest.mark.parametrize("queued", [1, 2])
@pytest.mark.parametrize("how", ["fin", "reset"])
def test_a_hang_up_cancels_the_request_being_answered_and_runs_none_queued(gateway, fakes, how, queued):
    oa, ol, _ = fakes
    oa.push(Fault.hang_before_headers())  # the first request's model answers nothing: only a cancel ends it
    slots = gateway.router.pool.local("fast").slots
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(_post("solo", "first") + b"".join(_post("backup", f"queued {i}") for i in range(queued)))
    gateway.wait_for(lambda: slots.in_flight == 1 and oa.in_flight == 1)
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    # the request being answered is cancelled at once, well inside the 3 s first-token bound, its slot freed
    gateway.wait_for(lambda: slots.in_flight == 0, timeout=1.0)
    assert gateway.wait_for(lambda: _rows(gateway), timeout=2.0) == [("solo", "cancelled")]
    # the queued ones were never begun: no model asked, no row
    assert ol.requests == [] and len(oa.requests) == 1
    assert _rows(gateway) == [("solo", "cancelled")]


def test_a_hang_up_while_the_second_of_three_runs_cancels_it(gateway, fakes):
    """After the first answer uvicorn starts the second from its queue while the third stays the protocol's
    ``cycle``: a hang-up then told the third, and the second ran on for nobody."""
    oa, ol, _ = fakes
    oa.push(Fault.ok(), Fault.hang_before_headers())
    slots = gateway.router.pool.local("fast").slots
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(_post("solo", "one") + _post("solo", "two") + _post("backup", "three"))
    gateway.wait_for(lambda: len(oa.requests) == 2 and slots.in_flight == 1 and oa.in_flight == 1)
    sock.close()
    gateway.wait_for(lambda: slots.in_flight == 0, timeout=1.0)
    assert gateway.wait_for(lambda: len(_rows(gateway)) == 2 and _rows(gateway), timeout=2.0) == \
        [("solo", "ok"), ("solo", "cancelled")]
    assert ol.requests == []


def test_pipelined_requests_on_a_connection_that_stays_are_all_answered_and_logged(gateway, fakes):
    """Guard (passes on the old code): without a hang-up each queued request is run, answered in order and logged."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(_post("solo", "one") + _post("backup", "two") + _post("solo", "three"))
        got = b""
        while got.count(b"HTTP/1.1 200") < 3 or not got.endswith(b"}"):
            piece = sock.recv(65536)
            assert piece, got
            got += piece
    assert sorted(gateway.wait_for(lambda: len(_rows(gateway)) == 3 and _rows(gateway))) == \
        [("model:backup", "ok"), ("solo", "ok"), ("solo", "ok")]
