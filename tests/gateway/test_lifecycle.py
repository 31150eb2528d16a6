"""Slots and the log around the HTTP edge: disconnects free slots, limits are shared between
agents and direct model calls, and an answered request's log row is committed before delivery."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from modelyard.ledger import connect
from tests.fakes import Fault
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config


def open_request(url: str, body: dict, path: str = "/v1/chat/completions") -> socket.socket:
    """Send a request on a raw socket and leave it open: the test decides when the client 'goes away'."""
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n" % len(payload) + payload)
    return sock


def log_row(gateway, request_id: str | None = None, outcome: str | None = None):
    conn = connect(gateway.runtime.log_path, readonly=True)
    try:
        if request_id:
            return conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        return conn.execute("SELECT * FROM requests WHERE outcome = ? ORDER BY ts DESC", (outcome,)).fetchone()
    finally:
        conn.close()


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_upstream_and_frees_the_slot(gateway, fakes, stream, api):
    disconnect_cancels_upstream_and_frees_the_slot(gateway, fakes, stream, api)


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_is_seen_by_any_asgi_server(tmp_path, fakes, monkeypatch, stream, api):
    """Under uvicorn's own protocol (no Hangup in the scope) a task watching ``receive`` sees the disconnect."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), http="httptools") as gw:
        disconnect_cancels_upstream_and_frees_the_slot(gw, fakes, stream, api)


def disconnect_cancels_upstream_and_frees_the_slot(gateway, fakes, stream, api):
    oa = fakes[0]
    oa.push(Fault.hang_after_first_token() if stream else Fault.hang_before_headers())
    slots = gateway.router.pool.local("fast").slots
    if api == "chat":
        sock = open_request(gateway.url, {"model": "solo", "stream": stream,
                                          "messages": [{"role": "user", "content": "x"}]})
    else:
        sock = open_request(gateway.url, {"model": "solo", "stream": stream, "input": "x"}, "/v1/responses")
    gateway.wait_for(lambda: slots.in_flight == 1 and oa.in_flight == 1)
    if stream:  # committed: the status line and the first token are on the wire
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    # well inside the 3 s first-token bound: only the disconnect can have ended it this soon
    gateway.wait_for(lambda: slots.in_flight == 0, timeout=1.0)
    oa.wait_for(lambda: oa.in_flight == 0, timeout=1.0)  # the upstream request was closed, not left generating
    row = gateway.wait_for(lambda: log_row(gateway, outcome="cancelled"))
    assert row["agent"] == "solo"


def test_limits_are_shared_between_direct_calls_and_agents(gateway, fakes):
    assert gateway.router.pool is gateway.runtime.router.pool is gateway.runtime.pool
    oa = fakes[0]
    oa.push(Fault.hang_before_headers(), times=2)
    held = [open_request(gateway.url, {"model": "fast", "messages": [{"role": "user", "content": "x"}]})
            for _ in range(2)]
    try:
        gateway.wait_for(lambda: gateway.router.pool.local("fast").slots.in_flight == 2)
        r = httpx.post(gateway.url + "/v1/chat/completions",
                       json={"model": "coder", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200 and r.json()["model"] == "backup"
        assert r.headers["x-modelyard-route"] == "fast fallback queue_timeout, backup ok"
        states = {m["name"]: m for m in httpx.get(gateway.url + "/healthz").json()["models"]}
        assert states["fast"]["state"] == "busy" and states["fast"]["in_flight"] == 2
    finally:
        for sock in held:
            sock.close()
    gateway.wait_for(lambda: gateway.router.pool.local("fast").slots.in_flight == 0)


@pytest.mark.parametrize("stream", [False, True])
def test_log_row_is_committed_before_the_answer_is_delivered(gateway, stream):
    """Flush-before-report: a reader with its own connection sees the row the moment the answer ends."""
    r = httpx.post(gateway.url + "/v1/chat/completions",
                   json={"model": "coder", "stream": stream, "messages": [{"role": "user", "content": "note this"}]})
    assert r.status_code == 200
    row = log_row(gateway, r.headers["x-modelyard-request-id"])
    assert row is not None and row["outcome"] == "ok" and row["model"] == "fast" and row["prompt"] == "note this"
