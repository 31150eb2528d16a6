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
from prometheus_client.parser import text_string_to_metric_families

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


def all_ok(gw: GatewayServer, heads: list[bytes]) -> None:
    """Every request's row says ``ok`` and the budget is all given back."""
    for head in heads:
        row, attempts = gw.wait_for(lambda h=head: log_row(gw, request_id(h)))
        assert row["outcome"] == "ok", (row, attempts)
    gw.wait_for(lambda: gw.gateway.answers.held == 0, timeout=5)


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
        all_ok(gateway, heads)
    finally:
        for sock in socks:
            sock.close()


#: characters of the answers of the connections refused a step below: ~3.5 MB of SSE each, within their own 4 MiB
LONG = 3_000_000
#: what a client reads of its answer before it stops again: far more than the gateway, its socket and the client's
#: receive window held when the client stopped, so the connection has resumed writing at least once meanwhile
PART = 400_000
#: what a connection may hold past its share of the budget: asyncio's 64 KiB it keeps as before, and the write that
#: crossed it (one SSE event, ~1.1 KB here; measured: at most 66,663 bytes a connection)
SLACK = 64 * 1024 + 16 * 1024


@pytest.fixture
def roomy(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    """The 2 MiB budget, and slots for five streams at once (two that spend the budget, three refused); clients
    that take nothing for a minute are cut off (uvicorn's 5 s would cut the spenders, stopped ~10 s here)."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"max_answers_mb": BUDGET_MB})
    five = config.models["fast"].model_copy(update={"max_concurrent": 5})
    config = config.model_copy(update={"models": {**config.models, "fast": five}})
    with GatewayServer(config, sndbuf=SNDBUF, timeout_keep_alive=60) as gw:
        yield gw


def held_by(gw: GatewayServer, sock: socket.socket) -> int:
    """The bytes the gateway holds unsent for this client's connection."""
    async def size() -> int:
        for p in gw._server.server_state.connections:  # type: ignore[union-attr]
            if p.transport.get_extra_info("peername") == sock.getsockname():
                return p.transport.get_write_buffer_size()
        return 0
    assert gw.loop is not None
    return asyncio.run_coroutine_threadsafe(size(), gw.loop).result(5)


def read_some(sock: socket.socket, data: bytes, size: int) -> bytes:
    """``size`` more bytes of the answer, then the client stops reading again."""
    sock.settimeout(10)
    goal = len(data) + size
    while len(data) < goal:
        piece = sock.recv(min(65536, goal - len(data)))
        assert piece, (len(data), data[-200:])
        data += piece
    return data


def read_whole(sock: socket.socket, data: bytes) -> int:
    """The rest of the answer; the characters of its content (the chunked SSE body read in one pass: the shared
    ``_events`` copies the body per chunk, seconds for 3.5 MB)."""
    sock.settimeout(10)
    pieces, tail, end = [data], data[-7:], b"\r\n0\r\n\r\n"
    while not tail.endswith(end):
        piece = sock.recv(65536)
        assert piece, tail
        pieces.append(piece)
        tail = (tail + piece)[-7:]
    whole = b"".join(pieces)
    at = whole.index(b"\r\n\r\n") + 4
    body = []
    while (size := int(whole[at:whole.index(b"\r\n", at)], 16)) != 0:
        at = whole.index(b"\r\n", at) + 2
        body.append(whole[at:at + size])
        at += size + 2
    return sum(len(json.loads(line[6:])["choices"][0]["delta"].get("content") or "")
               for line in b"".join(body).split(b"\n") if line.startswith(b"data: {") and b'"choices"' in line)


def test_refused_connections_whose_clients_read_some_stay_within_the_budget(roomy, fakes):
    """Two stopped clients spend the 2 MiB budget; three more connections, each streaming ~3.5 MB, are refused a
    step and wait on their clients. Those clients then read 400 KB each and stop again, twice: the gateway's unsent
    bytes stay within the budget plus 80 KiB a connection (64 KiB and a write), and each refused connection holds no
    more than that 80 KiB; once a spender's client has read all (its step given back), a refused one takes it and the
    total stays within the bound; every answer is then whole, every row ``ok``, the budget all given back. Before: a
    connection refused while it held nothing, once its client had read, buffered up to its own 4 MiB again,
    uncounted: 7.1 MB unsent under the 2 MiB budget here."""
    oa = fakes[0]
    for size in (ANSWER, ANSWER, LONG, LONG, LONG):
        oa.push(Fault.shape("huge_answer", size=size))
    slots = roomy.router.pool.local("fast").slots
    budget = roomy.gateway.answers
    bound = BUDGET_MB * 2**20 + 5 * SLACK
    socks, data = [], []
    try:
        for n in range(5):
            socks.append(ask(roomy))
            data.append(read_head(socks[-1]))
            if n < 2:  # each spender's answer is buffered whole, its model done
                roomy.wait_for(lambda: slots.in_flight == 0, timeout=10)
        roomy.wait_for(lambda: budget.refused >= 3, timeout=10)  # each of the last three was refused a step
        assert slots.in_flight == 3
        refused = socks[2:]
        for _ in range(2):  # read some, stop again
            for n, sock in enumerate(refused, 2):
                data[n] = read_some(sock, data[n], PART)
            time.sleep(1)  # time to buffer all they would
            held = buffered(roomy)
            assert held <= bound, (held, bound)
            for sock in refused:
                assert held_by(roomy, sock) <= SLACK, [held_by(roomy, s) for s in refused]
            assert slots.in_flight == 3  # still waiting on their clients
        # a spender's client reads its whole answer: its step is given back and a refused connection may take it
        assert read_whole(socks[0], data[0]) == ANSWER
        roomy.wait_for(lambda: budget.held <= BUDGET_MB * 2**20 - 2**20, timeout=5)
        for n, sock in enumerate(refused, 2):
            data[n] = read_some(sock, data[n], PART)
        time.sleep(1)
        held = buffered(roomy)
        assert held <= bound, (held, bound)
        assert budget.held <= budget.total
        for n, sock in enumerate(socks[1:], 1):
            assert read_whole(sock, data[n]) == (ANSWER if n == 1 else LONG)
        all_ok(roomy, data)
    finally:
        for sock in socks:
            sock.close()


def scraped(gw: GatewayServer) -> dict[str, float]:
    """The ``modelyard_answer_buffers_*`` samples of /metrics (Prometheus text format, read by prometheus_client's
    own parser: https://prometheus.io/docs/instrumenting/exposition_formats/)."""
    text = httpx.get(gw.url + "/metrics", timeout=5).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("modelyard_answer_buffers_")}


def test_metrics_show_the_budget_held_and_the_connections_waiting_on_it(roomy, fakes):
    """/metrics says what /healthz's ``answer_buffers`` says — the budget, what is held of it, the steps refused —
    and how many connections wait on their clients because it is spent: two stopped clients spend the 2 MiB, two
    more are refused and wait (2); one of those clients goes away (1: a connection gone while it waited is not
    counted on); the other reads some and stops again (still 1: refused again, counted once); once every client has
    read all, nothing is held and none waits. Before: no such samples."""
    oa = fakes[0]
    for size in (ANSWER, ANSWER, LONG, LONG):
        oa.push(Fault.shape("huge_answer", size=size))
    slots = roomy.router.pool.local("fast").slots
    budget = roomy.gateway.answers
    socks, data = [], []
    try:
        for n in range(4):
            socks.append(ask(roomy))
            data.append(read_head(socks[-1]))
            if n < 2:
                roomy.wait_for(lambda: slots.in_flight == 0, timeout=10)
        roomy.wait_for(lambda: budget.refused >= 2, timeout=10)
        m = scraped(roomy)
        assert m["modelyard_answer_buffers_budget_bytes"] == BUDGET_MB * 2**20, m
        assert m["modelyard_answer_buffers_held_bytes"] == BUDGET_MB * 2**20 == m[
            "modelyard_answer_buffers_peak_bytes"], m
        assert m["modelyard_answer_buffers_waiting_connections"] == 2, m
        assert m["modelyard_answer_buffers_refused_total"] >= 2, m
        assert httpx.get(roomy.url + "/healthz", timeout=5).json()["answer_buffers"]["waiting"] == 2
        socks[3].close()  # gone while its answer waited on it
        roomy.wait_for(lambda: slots.in_flight == 1, timeout=10)
        assert scraped(roomy)["modelyard_answer_buffers_waiting_connections"] == 1
        data[2] = read_some(socks[2], data[2], PART)
        time.sleep(0.5)
        assert scraped(roomy)["modelyard_answer_buffers_waiting_connections"] == 1
        for n in range(3):
            assert read_whole(socks[n], data[n]) == (ANSWER if n < 2 else LONG)
        all_ok(roomy, data[:3])
        m = scraped(roomy)
        assert m["modelyard_answer_buffers_held_bytes"] == 0 == m["modelyard_answer_buffers_waiting_connections"], m
    finally:
        for sock in socks:
            sock.close()
