"""A request that has reached the gateway's socket when the connection's idle bound comes due is answered and
logged, never dropped with the connection.

The fault shape is the keep-alive race users of every HTTP server meet: the server closes a connection it thinks
idle just as the client sends its next request on it, and the client gets a reset for a POST it cannot safely send
again (nodejs/node#52649 "http: keepalive race condition near timeout"; lsst-sqre/phalanx#5103: uvicorn closing a
pooled connection, ingress-nginx answering the request that met the reset with a 502). Over a network part of that
race is the wire's (a FIN still in flight) and no server can close it; the part that is the gateway's is a request
that is already in its socket's receive queue when its timer runs: on a busy loop the callbacks queued before the
timer in the same iteration take long enough for the request to arrive after the loop last looked at the socket.
The gateway closed such a connection, unread: the request reached the machine, was never routed, and no row said
so. Driven here exactly: the gateway's loop is held (a callback that blocks, as a long ready queue does) until the
bound is due, and in the next iteration a callback queued before the timer lets the client send and waits until
the request is in the server's socket.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config
from tests.reliability.kit import read_db

#: the idle bound of the gateway under test (``modelyard serve``: 75 s)
BOUND = 1.0


@pytest.fixture
def gateway_with_bound(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), timeout_keep_alive=BOUND) as gw:
        yield gw


def _request(i: int) -> bytes:
    body = json.dumps({"model": "solo", "messages": [{"role": "user", "content": f"idle-race-{i}"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body) + body)


def _answer(sock: socket.socket) -> bytes:
    """The whole response on ``sock`` (``content-length`` framed), or what came before the connection ended."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def _server_socket(gw: GatewayServer, client: socket.socket) -> socket.socket:
    """The gateway's end of ``client``'s connection, once the gateway has taken it (uvicorn keeps its connections in
    ``server_state``; a connection closed before may still be there, so it is found by the client's port)."""
    server = gw._server
    assert server is not None
    port = client.getsockname()[1]
    deadline = time.monotonic() + 10
    while True:
        for connection in list(server.server_state.connections):
            if connection.client is not None and connection.client[1] == port:
                return connection.transport.get_extra_info("socket")
        assert time.monotonic() < deadline, "the gateway never took the connection"
        time.sleep(0.005)


def _send_as_the_bound_comes_due(gw: GatewayServer, client: socket.socket, request: bytes) -> None:
    """Hold the gateway's loop past the connection's idle bound; then, in the iteration whose timers include it and
    before its timer runs, send ``request`` and wait until it is in the gateway's socket, unread."""
    loop = gw.loop
    assert loop is not None
    server_end = _server_socket(gw, client)
    sent = threading.Event()
    done = threading.Event()

    def send_before_the_timer() -> None:  # queued before the timer that came due meanwhile: runs first
        try:
            client.sendall(request)
            # in the gateway's receive queue, not read: the loop is here
            assert select.select([server_end], [], [], 5)[0], "the request never reached the gateway's socket"
            sent.set()
        finally:
            done.set()

    def hold_past_the_bound() -> None:
        time.sleep(BOUND * 1.5)  # the bound comes due while the loop is busy
        loop.call_soon(send_before_the_timer)

    loop.call_soon_threadsafe(hold_past_the_bound)
    assert done.wait(10) and sent.is_set()


def test_a_request_in_the_socket_when_the_idle_bound_comes_due_is_answered_and_logged(gateway_with_bound) -> None:
    gw = gateway_with_bound
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as client:
        # between requests (a pooled connection reused), and its first request: the bound runs from the connection's
        # start until a request comes (gateway/transport.py), so both waits end the same way
        client.sendall(_request(0))
        first = _answer(client)
        assert first.startswith(b"HTTP/1.1 200"), first
        _send_as_the_bound_comes_due(gw, client, _request(1))
        try:
            second = _answer(client)
        except ConnectionResetError:  # closed with the request unread: the kernel resets it
            second = b"reset"
        assert second.startswith(b"HTTP/1.1 200"), f"the request that had arrived got {second[:80]!r}"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as client:
        _send_as_the_bound_comes_due(gw, client, _request(2))  # a connection's first request
        try:
            third = _answer(client)
        except ConnectionResetError:
            third = b"reset"
        assert third.startswith(b"HTTP/1.1 200"), f"the request that had arrived got {third[:80]!r}"
    gw.runtime.log.flush()
    conn = read_db(gw.runtime.log_path)
    try:
        rows = sorted(r[0] for r in conn.execute("SELECT prompt FROM requests WHERE prompt LIKE 'idle-race-%'"))
    finally:
        conn.close()
    assert rows == ["idle-race-0", "idle-race-1", "idle-race-2"]
