"""The answer buffers of all connections share one bound (``gateway.max_answers_mb``): past it a stopped client's
answer waits on it, its model slot held, as before the per-connection buffer; what a client takes is given back.

Outside in: a reverse proxy bounds its buffering per connection *and* across them — nginx's ``proxy_buffers`` /
``proxy_max_temp_file_size`` per request, past which it reads the upstream only as fast as the client takes it
(https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_max_temp_file_size); Envoy's overload manager
bounds the buffers of all streams together (``envoy.resource_monitors.fixed_heap``,
https://www.envoyproxy.io/docs/envoy/latest/configuration/operations/overload_manager/overload_manager). The
clients: an SDK stream left unread (openai/openai-python#969), many of them behind a proxy that stopped reading.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import Fault
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config
from tests.gateway.test_client_faults import connect_small, log_row, post, read_head, request_id
from tests.gateway.test_slow_reader_buffer import SNDBUF, _events

#: characters of each answer: ~1 MB of SSE, within one connection's 4 MiB; two fit the budget below, not three
ANSWER = 1_000_000
#: the budget of all connections' answer buffers here, in MiB (serve's default: 256)
BUDGET_MB = 2


@pytest.fixture
def gateway(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"max_answers_mb": BUDGET_MB})
    with GatewayServer(config, sndbuf=SNDBUF) as gw:
        yield gw


def buffered(gw: GatewayServer) -> int:
    """The bytes the gateway's connections hold unsent in their transports (the process's memory), read on its
    loop."""
    async def total() -> int:
        return sum(p.transport.get_write_buffer_size() for p in gw._server.server_state.connections)  # type: ignore
    assert gw.loop is not None
    return asyncio.run_coroutine_threadsafe(total(), gw.loop).result(5)


def ask(gw: GatewayServer) -> socket.socket:
    sock = connect_small(gw.url)
    post(sock, "/v1/chat/completions",
         {"model": "solo", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    return sock


def read_all(sock: socket.socket, data: bytes) -> str:
    sock.settimeout(10)
    while not data.endswith(b"\r\n0\r\n\r\n"):
        piece = sock.recv(65536)
        assert piece, (len(data), data[-200:])
        data += piece
    return "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in _events(data.partition(b"\r\n\r\n")[2]))


def test_stopped_clients_buffer_no_more_than_the_budget_and_the_rest_wait_on_their_clients(gateway, fakes, caplog):
    """Four clients that stop reading after the head, each asking for ~1 MB of stream: the gateway's unsent bytes
    stay within the 2 MiB budget (plus asyncio's 64 KiB per connection and a write); the third and fourth answers,
    past the budget, wait on their clients with their model slots held (the old behaviour), the log says so once and
    /healthz says so; once the clients read, every answer is whole, every row ``ok`` and the budget is all given
    back. Before: ~1 MB buffered per client, 3.3 MB past the 2 MiB, every slot freed."""
    oa = fakes[0]
    for _ in range(4):
        oa.push(Fault.shape("huge_answer", size=ANSWER))
    slots = gateway.router.pool.local("fast").slots
    budget = gateway.gateway.answers
    socks, heads = [], []
    try:
        for n in range(4):
            socks.append(ask(gateway))
            heads.append(read_head(socks[-1]))
            if n < 2:  # the first two fit: the model is done with each once its answer is buffered
                gateway.wait_for(lambda: slots.in_flight == 0, timeout=10)
        time.sleep(1)  # the last two have had time to buffer all they would
        assert slots.in_flight == 2  # the last two wait on their clients, holding the model's two slots
        held = buffered(gateway)
        assert held <= BUDGET_MB * 2**20 + 4 * (64 * 1024 + 65536), held
        assert held > ANSWER, held  # the first two did buffer ahead
        health = httpx.get(gateway.url + "/healthz", timeout=5).json()["answer_buffers"]
        assert health["budget_bytes"] == BUDGET_MB * 2**20 and health["refused"] >= 1, health
        assert 0 < health["held_bytes"] <= health["budget_bytes"], health
        said = [r.getMessage() for r in caplog.records if "gateway.max_answers_mb" in r.getMessage()]
        assert len(said) == 1, said
        for sock, head in zip(socks, heads, strict=True):
            assert len(read_all(sock, head)) == ANSWER
            row, attempts = gateway.wait_for(lambda h=head: log_row(gateway, request_id(h)))
            assert row["outcome"] == "ok", (row, attempts)
        gateway.wait_for(lambda: budget.held == 0, timeout=5)
    finally:
        for sock in socks:
            sock.close()
