"""A trickled body's 408 comes when the documented whole-body bound runs out, not up to a keep-alive bound later.

Found by benchmarks/soak_shared.py (two ``serve`` processes, 2026-11-29): a client sending its body a byte every 5 s
got no 408 within 420 s of its head, where RELIABILITY.md and the 408's own docs say 300–375 s (4 bounds of 75 s from
the first time the gateway saw the body still coming). The whole-body bound was looked at only when the keep-alive
timer came due — each time at the last byte plus a bound — so a bound that ran out just after one look waited for the
next: up to 6 bounds (450 s) after the head instead of 5.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config

#: the keep-alive bound here (``serve``: 75 s); a byte every PERIOD stays well within it — a byte sent up to 0.7
#: bounds late (a loaded machine) is still no "nothing came" 408
BOUND = 2.0
PERIOD = 0.3 * BOUND


@pytest.fixture
def bounded(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), timeout_keep_alive=BOUND) as gw:
        yield gw


def test_a_trickled_body_gets_its_408_when_the_whole_body_bound_runs_out(bounded, fakes):
    """Bytes every 0.3 bounds: the timer first sees the body coming at 1 bound (the last byte at 0.9), then looks a
    bound after the last byte each time: at 1.9, 2.8, 3.7, 4.6 (3.6 bounds since: not yet) and 5.5 — the 408 came 5.5
    bounds after the head. It comes at 5 now (the first sight plus the 4 bounds), as documented: at most 5 bounds
    after the head (``serve``: 375 s). The ceiling leaves 0.35 bounds (0.7 s) for the gateway's timers to run late on
    a loaded machine and still tells 5 from 5.5."""
    payload = json.dumps({"model": "solo", "messages": [{"role": "user", "content": "x" * 40}]}).encode()
    sock = socket.create_connection(("127.0.0.1", bounded.port), timeout=15)
    got = b""
    try:
        t0 = time.monotonic()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n" % len(payload) + payload[:1])
        sent = 1
        while sent < len(payload) - 1 and time.monotonic() - t0 < BOUND * 8:
            sock.settimeout(max(0.001, t0 + sent * PERIOD - time.monotonic()))
            try:
                got = sock.recv(65536)
                break  # answered (or closed)
            except TimeoutError:
                sock.sendall(payload[sent:sent + 1])
                sent += 1
        answered_at = time.monotonic() - t0
        sock.settimeout(5)
        while (piece := sock.recv(65536)):
            got += piece
    finally:
        sock.close()
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]
    assert b"whole body" in got, got  # the whole-body bound, not "nothing came" between two pieces
    assert BOUND * 4.6 < answered_at < BOUND * 5.35, answered_at
    assert fakes[0].requests == []
