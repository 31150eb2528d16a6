"""What the embeddings tests ask of a running gateway: a request of each kind, and the last request's attempts as
the routing log keeps them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from modelyard.config.schema import Config
from modelyard.ledger import connect
from tests.fakes.server import FakeServer
from tests.gateway.harness import GatewayServer


def attempts(gw: GatewayServer) -> list[tuple[str, str, str | None, str | None]]:
    """The last request's attempts: (model, outcome, reason, detail)."""
    conn = connect(gw.runtime.log_path, readonly=True)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT model, outcome, reason, detail FROM attempts WHERE request_id = (SELECT id FROM requests "
            "ORDER BY ts DESC LIMIT 1) ORDER BY seq")]
    finally:
        conn.close()


def embed(gw: GatewayServer, model: str, value: Any) -> httpx.Response:
    return httpx.post(gw.url + "/v1/embeddings", json={"model": model, "input": value, "encoding_format": "float"},
                      timeout=30)


def chat(gw: GatewayServer, model: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions",
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)


def close_to(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(abs(a - b) < 1e-6 for a, b in zip(got, want, strict=True))


#: the embeddings tests' time bounds: a model silent for 0.6 s before its vectors has failed
TIMEOUTS = {"queue": 0.5, "connect": 2, "first_token": 0.6, "idle": 3, "total": 20}


@contextlib.contextmanager
def gateways(servers: Iterable[FakeServer]) -> Iterator[Callable[[Config], GatewayServer]]:
    """Start a gateway per config, each on fakes reset for it; every one stopped at the end."""
    started: list[GatewayServer] = []

    def start(config: Config) -> GatewayServer:
        for server in servers:
            server.reset()
        gw = GatewayServer(config)
        gw.__enter__()
        started.append(gw)
        return gw

    try:
        yield start
    finally:
        for gw in started:
            gw.__exit__(None, None, None)
