"""A client that goes away while its request waits in a model's queue for a slot.

Open WebUI's stop button, an agent framework's own timeout (LangChain's ``request_timeout``, the openai SDK's
``timeout``: the client closes its connection and asks again — openai/openai-python's retries do so after 10 min by
default) and a user's Ctrl-C all close the connection while the gateway may still be waiting for a slot of a busy
model (router/slots.py: ``max_concurrent`` taken, ``max_queue`` not). The wait must end then: its place in the queue
freed at once (a later client is not queued behind nobody, and ``max_queue`` is not filled by the gone), no model asked
for it, and one row saying ``cancelled`` — not a queue_timeout later, not nothing — with the attempt that says which
model's queue held it and for how long (the row had none: the log could not tell a request gone while queued for a
busy model from one gone before any model was tried).
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from modelyard.ledger import connect
from modelyard.router.router import GONE_QUEUED
from tests.fakes import Fault
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

#: the queue bound here: long, so that only the client's leaving can end the wait within the test's bounds
QUEUE = 20.0


@pytest.fixture
def one_slot(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa = fakes[0]
    models = {"fast": {"provider": "openai", "endpoint": oa.url, "model": "fast-model", "max_concurrent": 1}}
    defaults = {"timeouts": {"queue": QUEUE, "connect": 2, "first_token": 30, "idle": 30, "total": 60},
                "retries": {"attempts": 0}, "cooldown": {"failures": 5, "seconds": 30}}
    config = make_config(models, {"solo": {"primary": "fast"}}, defaults=defaults,
                         log={"path": str(tmp_path / "log.db")})
    with GatewayServer(config) as gw:
        yield gw


def _post(text: str, stream: bool) -> bytes:
    body = json.dumps({"model": "solo", "stream": stream, "messages": [{"role": "user", "content": text}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body)) + body


def _rows(gateway: GatewayServer) -> list[tuple]:
    """Each request (outcome, agent) with its attempts (model, outcome, reason, detail, queue_wait_ms)."""
    conn = connect(gateway.runtime.log_path, readonly=True)
    try:
        return [(*r[1:], conn.execute("SELECT model, outcome, reason, detail, queue_wait_ms FROM attempts "
                                       "WHERE request_id = ? ORDER BY seq", (r[0],)).fetchall())
                for r in conn.execute("SELECT id, outcome, agent FROM requests ORDER BY ts")]
    finally:
        conn.close()


def _connect(gateway: GatewayServer) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_client_gone_while_queued_leaves_the_queue_at_once_with_a_row(one_slot, fakes, stream, how):
    oa = fakes[0]
    oa.push(Fault.hang_before_headers())  # the slot's holder: its model answers nothing until it is cancelled
    slots = one_slot.router.pool.local("fast").slots
    holder = _connect(one_slot)
    waiting = _connect(one_slot)
    try:
        holder.sendall(_post("holder", stream))
        one_slot.wait_for(lambda: slots.in_flight == 1 and oa.in_flight == 1)
        waiting.sendall(_post("queued", stream))
        one_slot.wait_for(lambda: slots.waiting == 1)
        queued = time.monotonic()
        if how == "reset":
            waiting.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        waiting.close()
        one_slot.wait_for(lambda: slots.waiting == 0, timeout=2.0)  # well inside the 20 s queue bound
        rows = one_slot.wait_for(lambda: _rows(one_slot), timeout=2.0)
        held = (time.monotonic() - queued) * 1000
        [(outcome, agent, attempts)] = rows
        assert (outcome, agent) == ("cancelled", "solo")
        [(model, attempt, reason, detail, waited)] = attempts
        assert (model, attempt, reason, detail) == ("fast", "cancelled", "cancelled", GONE_QUEUED)
        assert 0 < waited < QUEUE * 1000 and waited < held + 2000, waited  # the wait it had, not the queue's bound
        assert slots.in_flight == 1 and len(oa.requests) == 1  # the holder goes on; the gone one asked no model
    finally:
        holder.close()
        waiting.close()
    one_slot.wait_for(lambda: slots.in_flight == 0, timeout=2.0)
