"""A client that goes away while ``model: auto`` waits for the orchestrator's model to pick its agent.

Below the fast path's threshold the orchestrator asks a model (agents/orchestrator.py, the slow path): a model call
of its own, seconds on a local model on CPU. A client that leaves then — Open WebUI's stop button, an SDK's own
timeout (openai/openai-python: the client closes and asks again), Ctrl-C — was not heard until that call ended: the
orchestrator's model went on choosing an agent for nobody, holding its slot (other ``auto`` requests queued behind it,
up to its first-token and total bounds), and its row said ``ok``. Open WebUI's own report of the same shape:
open-webui/open-webui#456 (the backend must stop generating when the client stops). Now the call is cancelled at once,
its slot freed, its row says ``cancelled``, no decision is logged for a request that was never routed, and no agent's
model is asked.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import Fault, OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

#: a message no role's examples resemble much: with the threshold above any confidence, the model is asked anyway
VAGUE = "hmm, about that thing from before"


@pytest.fixture(scope="module")
def backend() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text='{"agent": "writer"}') as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path, backend: OpenAIServer) -> Iterator[GatewayServer]:
    backend.reset()
    models = {"fast": {"provider": "openai", "model": "fast-model", "endpoint": backend.url, "max_concurrent": 1}}
    agents = {name: {"primary": "fast", "system": f"You are the {name} agent."}
              for name in ("chat", "engineer", "research", "writer")}
    agents["orchestrator"] = {"primary": "fast", "consumers": ["engineer", "research", "writer"]}
    defaults = {"timeouts": {"queue": 30, "connect": 2, "first_token": 60, "idle": 60, "total": 120},
                "retries": {"attempts": 0}}
    config = make_config(models, agents, defaults=defaults, log={"path": str(tmp_path / "log.sqlite3")},
                         orchestration={"threshold": 1.0, "default": "chat"})
    with GatewayServer(config) as gw:
        yield gw


def _post(stream: bool) -> bytes:
    body = json.dumps({"model": "auto", "stream": stream, "messages": [{"role": "user", "content": VAGUE}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body)) + body


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_gone_while_the_orchestrators_model_decides_cancels_that_call(gateway, backend, tmp_path, stream):
    backend.push(Fault.hang_before_headers())  # the orchestrator's model: it answers nothing until cancelled
    slots = gateway.router.pool.local("fast").slots
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(_post(stream))
        # the first ``auto`` request fits the fast path from the role examples first: seconds on a loaded machine
        gateway.wait_for(lambda: backend.in_flight == 1 and slots.in_flight == 1, timeout=120)
    finally:
        sock.close()
    gateway.wait_for(lambda: slots.in_flight == 0, timeout=2.0)  # well inside the 60 s first-token bound
    backend.wait_for(lambda: backend.in_flight == 0, timeout=2.0)  # the upstream request was closed
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        rows = gateway.wait_for(lambda: db.execute("SELECT agent, outcome FROM requests").fetchall(), timeout=2.0)
        decisions = db.execute("SELECT COUNT(*) FROM routing_decisions").fetchone()[0]
    assert rows == [("orchestrator", "cancelled")]
    assert decisions == 0 and len(backend.requests) == 1  # never routed: no agent's model asked
