"""A slow reader takes its answer from the gateway's memory, not from its model's slot; a connection idle between
requests outlives the idle pools of common clients.

Outside in: a reverse proxy reads the backend's answer at the backend's pace into a bounded buffer, frees the
upstream when the answer is whole and feeds the client from the buffer (nginx ``proxy_buffering``,
https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_buffering; Envoy's per-stream buffer limits). The
idle pools: Go's ``net/http`` ``Transport.IdleConnTimeout`` is 90 s (DefaultTransport), hyper/reqwest's pool idle
timeout 90 s (Codex CLI); a server closing at 75 s closed just as such a client reused the connection
("connection closed before message completed": duolahypercho/codex-router#165, 514-labs/moosestack#3698;
Soju06/codex-lb#2042 read reqwest 0.12's pool_idle_timeout default, 90 s).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from modelyard.gateway import server as serve_module
from modelyard.gateway import transport
from tests.fakes import Fault
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config
from tests.gateway.test_client_faults import connect_small, log_row, post, read_head, request_id
from tests.gateway.test_idle_close_race import _answer

#: the gateway's send buffer per connection (the kernel's would otherwise grow to 4 MiB and hide the old wait)
SNDBUF = 65536
#: an answer far larger than the socket buffers between the gateway and a client that does not read, within
#: the answer buffer ``serve`` keeps per connection
ANSWER = 1_500_000


@pytest.fixture
def gateway(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    one_slot = config.models["fast"].model_copy(update={"max_concurrent": 1})
    config = config.model_copy(update={"models": {**config.models, "fast": one_slot}})
    with GatewayServer(config, sndbuf=SNDBUF) as gw:
        yield gw


def test_a_slow_reader_gives_its_slot_back_when_the_model_is_done(gateway, fakes):
    """The slot of the one-slot model is free once the backend's answer is whole, while the client (4 KiB receive
    window) has read only the head; the next request gets the model at once (the queue bound is 0.5 s), and the slow
    client then reads the whole answer, its row ``ok``. Before: the stream waited on the client with the slot held,
    and the second request queued out (no model could answer)."""
    oa = fakes[0]
    assert ANSWER < transport.ANSWER_BUFFER
    oa.push(Fault.shape("huge_answer", size=ANSWER))
    slots = gateway.router.pool.local("fast").slots
    sock = connect_small(gateway.url)
    try:
        post(sock, "/v1/chat/completions",
             {"model": "solo", "stream": True, "messages": [{"role": "user", "content": "x"}]})
        data = read_head(sock)
        assert data.startswith(b"HTTP/1.1 200")
        gateway.wait_for(lambda: slots.in_flight == 0, timeout=10)  # the client has read nothing more
        row, attempts = gateway.wait_for(lambda: log_row(gateway, request_id(data)))
        assert row["outcome"] == "ok", (row, attempts)
        r = httpx.post(gateway.url + "/v1/chat/completions", timeout=10,
                       json={"model": "solo", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.headers["x-modelyard-route"] == "fast ok", r.text
        # the slow reader: 16 KiB at a time, a pause between, until the last chunk
        sock.settimeout(10)
        reads = 0
        while not data.endswith(b"\r\n0\r\n\r\n"):
            piece = sock.recv(16384)
            assert piece, (len(data), data[-200:])
            data += piece
            reads += 1
            if reads % 8 == 0:
                time.sleep(0.01)
        assert data.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
        text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                       for chunk in [data.partition(b"\r\n\r\n")[2]] for line in _events(chunk))
        assert len(text) == ANSWER
    finally:
        sock.close()


def _events(chunked: bytes) -> list[str]:
    """The ``data:`` lines of a chunked SSE body, [DONE] left out."""
    body, rest = b"", chunked
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2:]
    return [line for line in body.decode().split("\n")
            if line.startswith("data: {") and '"choices"' in line]


#: the keep-alive bound of the gateways below (``serve``: 75 s); scaled from serve's, as every bound here is
BOUND = 0.5


def test_serve_keeps_an_idle_connection_longer_than_go_and_hyper_pools_do():
    """The configured figures: the idle bound between requests past the 90 s of Go's and hyper's pools, the bound on
    every wait inside a request still 75 s."""
    assert serve_module.KEEP_ALIVE_SECONDS == 75
    assert serve_module.KEEP_ALIVE_SECONDS * transport.IDLE_BOUNDS > 90


def test_a_connection_idle_past_the_request_bound_is_still_served_and_closed_after_the_idle_bound(tmp_path, fakes,
                                                                                               monkeypatch):
    """Serve's figures scaled by BOUND/75: a connection idle 80 s' worth is still served on (the reuse Go's and
    hyper's clients make up to 90 s), one idle past 120 s' worth is closed by the server; a head stopped halfway is
    still closed after the 75 s' worth (the stall bound inside a request is not the idle one)."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    scale = BOUND / serve_module.KEEP_ALIVE_SECONDS
    body = json.dumps({"model": "solo", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               b"content-length: %d\r\n\r\n" % len(body) + body)
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), timeout_keep_alive=BOUND) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.settimeout(10)
            sock.sendall(request)
            assert _answer(sock).startswith(b"HTTP/1.1 200")
            time.sleep(80 * scale)  # idle past the 75 s' worth
            sock.sendall(request)
            assert _answer(sock).startswith(b"HTTP/1.1 200"), "closed while idle within the idle bound"
            t0 = time.monotonic()
            assert sock.recv(4096) == b""  # idle on: the server closes it...
            idle = time.monotonic() - t0
            assert idle >= 120 * scale * 0.95, idle  # ...after the idle bound, not the request one
        with socket.create_connection((host, int(port))) as sock:
            sock.settimeout(10)
            sock.sendall(request)
            assert _answer(sock).startswith(b"HTTP/1.1 200")
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")  # a head that stops halfway
            t0 = time.monotonic()
            assert sock.recv(4096) == b""
            assert time.monotonic() - t0 < 120 * scale * 0.95  # the request bound, not the idle one

