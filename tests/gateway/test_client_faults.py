"""Faults from the client's side, against a real gateway on real sockets (outside in: each shape is something a
real client does, cited where it is defined).

A client that stops reading (its receive window shut), one that goes away mid-answer, one that trickles its
request, sends one no API would take, or holds connections it never uses: each costs the gateway a bounded amount
— never a model slot, a handler or a file descriptor for good — and gets an answer in OpenAI's error shape when it
is still there to read one.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from modelyard.gateway.transport import OneWriteProtocol
from modelyard.ledger import connect
from tests.cpu_wait import CpuWait
from tests.fakes import Fault
from tests.gateway.conftest import ANTHROPIC_KEY
from tests.gateway.harness import GatewayServer, fake_config

#: the bound on every wait on the client in these tests (``modelyard serve``: 75 s, gateway/server.py)
BOUND = 0.5
#: the gateway's send buffer per connection here (by default Linux grows it to net.ipv4.tcp_wmem's maximum, 4 MiB:
#: the same stall, after 4 MiB more of the answer — seconds of a loaded test machine's time per test)
SNDBUF = 65536
#: an answer larger than what the buffers hold between a server that writes and a client that does not read
HUGE = 1_500_000


class SmallBuffer(OneWriteProtocol):
    """``serve``'s protocol with less of an answer buffered per connection than HUGE (``serve``: 4 MiB), so a client
    that stops reading meets what one does past that buffer: the stream waits on it."""

    answer_buffer = 256 * 1024


@pytest.fixture
def bounded(tmp_path, fakes, monkeypatch) -> Iterator[GatewayServer]:
    """The gateway with a short bound on every wait on the client (``timeout_keep_alive``)."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    with GatewayServer(fake_config(tmp_path, oa.url, ol.url, an.url), timeout_keep_alive=BOUND,
                       sndbuf=SNDBUF, http=SmallBuffer) as gw:
        yield gw


def connect_small(url: str) -> socket.socket:
    """A client socket with a small receive buffer (a window that shuts after a few KB unread)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


def post(sock: socket.socket, path: str, body: dict | bytes, headers: bytes = b"") -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" + headers
                 + b"content-length: %d\r\n\r\n" % len(payload) + payload)


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(4096)
        assert piece, f"closed before the head: {data!r}"
        data += piece
    return data


def log_row(gateway: GatewayServer, request_id: str):
    """The request's row and its attempts, read on a connection of its own (committed, not just queued)."""
    conn = connect(gateway.runtime.log_path, readonly=True)
    try:
        row = conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        attempts = conn.execute("SELECT * FROM attempts WHERE request_id = ? ORDER BY seq", (request_id,)).fetchall()
        return (dict(row), [dict(a) for a in attempts]) if row is not None else None
    finally:
        conn.close()


def request_id(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"x-modelyard-request-id":
            return value.strip().decode()
    raise AssertionError(f"no request id in {head!r}")


# -- a client that stops reading ------------------------------------------------------------------------------------

STREAMED = {
    # openai-python: `for chunk in stream: ... break` leaves the response open and unread (openai/openai-python#969,
    # "doing this will leak the response"); the same with any SDK whose stream is dropped without being closed
    "chat": ("/v1/chat/completions", {"model": "solo", "stream": True, "messages": [{"role": "user", "content": "x"}]}),
    "responses": ("/v1/responses", {"model": "solo", "stream": True, "input": "x"}),
    "messages": ("/v1/messages", {"model": "solo", "stream": True, "max_tokens": 100,
                                  "messages": [{"role": "user", "content": "x"}]}),
    "ollama": ("/api/chat", {"model": "solo", "messages": [{"role": "user", "content": "x"}]}),  # streams by default
}


@pytest.mark.parametrize("api", list(STREAMED))
def test_a_client_that_stops_reading_a_stream_is_cut_off_and_its_slot_freed(bounded, fakes, api):
    """The known gap: uvicorn's ``send`` waits for a paused transport with no bound, so a client that stopped
    reading a long streamed answer held its model slot, its handler and the upstream request for good — with
    ``max_concurrent: 2``, two such clients starved every other agent of that model."""
    oa = fakes[0]
    oa.push(Fault.shape("huge_answer", size=HUGE))
    slots = bounded.router.pool.local("fast").slots
    path, body = STREAMED[api]
    sock = connect_small(bounded.url)
    try:
        post(sock, path, body)
        head = read_head(sock)  # committed: the status line, and then nothing more is read
        assert head.startswith(b"HTTP/1.1 200")
        bounded.wait_for(lambda: slots.in_flight == 1)
        # the client takes nothing more: cut off after the bound without progress, not held
        bounded.wait_for(lambda: slots.in_flight == 0, timeout=10)
        oa.wait_for(lambda: oa.in_flight == 0, timeout=2)  # the upstream request was closed, not left waiting
        found = bounded.wait_for(lambda: log_row(bounded, request_id(head)))
        row, attempts = found
        assert row["outcome"] == "cancelled" and attempts[-1]["reason"] == "client_stalled", (row, attempts)
        # the connection is gone: reading now finds the end (after whatever was in flight), not a wait
        sock.settimeout(5)
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass  # aborted: what was in flight was dropped
    finally:
        sock.close()
    # the model serves the next client
    r = httpx.post(bounded.url + "/v1/chat/completions", timeout=10,
                   json={"model": "solo", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.headers["x-modelyard-route"] == "fast ok"


def test_a_slow_reader_that_keeps_taking_is_not_cut(bounded, fakes):
    """Writes paused for longer than the bound, but the client takes some within every bound: slow, not stalled
    (nginx's ``send_timeout`` counts between two writes that move, not the whole answer)."""
    oa = fakes[0]
    oa.push(Fault.shape("huge_answer", size=HUGE))
    path, body = STREAMED["chat"]
    sock = connect_small(bounded.url)
    try:
        post(sock, path, body)
        data = read_head(sock)
        t0 = time.monotonic()
        while time.monotonic() - t0 < BOUND * 5:  # a trickle: 16 KB every 0.3 of the bound
            data += sock.recv(16384)
            time.sleep(BOUND * 0.3)
        sock.settimeout(20)
        while not data.endswith(b"\r\n0\r\n\r\n") and (piece := sock.recv(1 << 20)):  # the last chunk
            data += piece
        assert data.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), (len(data), data[-300:])
    finally:
        sock.close()
    row, attempts = bounded.wait_for(lambda: log_row(bounded, request_id(data)))
    assert row["outcome"] == "ok"


@pytest.mark.parametrize(("size", "close"), [
    (HUGE, False),
    # urllib.request (and clients on it) sends `Connection: close`: the close after the answer waited for its unsent
    # bytes; an answer whose rest fits under the transport's high-water mark (its answer buffer) never paused writes
    (100_000, True),
])
def test_a_whole_answer_left_unread_does_not_hold_its_connection(bounded, fakes, size, close):
    """A buffered answer larger than the socket buffers, never read: its slot was freed when it was written, but
    the connection (its descriptor and the unsent bytes) stayed for good — uvicorn's keep-alive ``close`` waits
    for the unsent bytes, and they never leave (pipecat-ai/pipecat#5789 saw the same close never complete)."""
    oa = fakes[0]
    oa.push(Fault.shape("huge_answer", size=size))
    server = bounded._server
    assert server is not None
    sock = connect_small(bounded.url)
    try:
        post(sock, "/v1/chat/completions", {"model": "solo", "messages": [{"role": "user", "content": "x"}]},
             b"connection: close\r\n" if close else b"")
        assert read_head(sock).startswith(b"HTTP/1.1 200")
        bounded.wait_for(lambda: bounded.router.pool.local("fast").slots.in_flight == 0)
        bounded.wait_for(lambda: not server.server_state.connections, timeout=10)
    finally:
        sock.close()


# -- a client that trickles its request -----------------------------------------------------------------------------

def test_a_request_head_trickled_a_byte_at_a_time_is_closed(bounded):
    """Slowloris: a head sent a byte at a time, each within the bound, held its connection for as long as the
    client liked (the bound started again at every byte; uvicorn bounds a head's size, not its time). Now a head
    still coming a bound after it was first seen coming is closed: at most two bounds for the whole head. A body
    that keeps coming is not cut within four bounds (tests/gateway/test_transport.py); past them it gets a 408
    (tests/gateway/test_client_faults_round2.py)."""
    host, port = bounded.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(BOUND * 0.3)
    closed_at = None
    t0 = time.monotonic()
    try:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        while time.monotonic() - t0 < BOUND * 16:
            try:
                sock.sendall(b"x")  # one more byte of a header that never ends
                if sock.recv(4096) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
    finally:
        sock.close()
    assert closed_at is not None, "a head trickled for 16 bounds was still open"
    assert BOUND * 0.9 < closed_at < BOUND * 8


# -- a client that goes away -----------------------------------------------------------------------------------------

GONE = {  # the endpoints test_lifecycle.py does not cover; every one streams through the same response
    "messages": ("/v1/messages", {"model": "solo", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}),
    "ollama": ("/api/chat", {"model": "solo", "messages": [{"role": "user", "content": "x"}]}),
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", list(GONE))
def test_a_client_gone_mid_answer_frees_the_slot_and_its_row_commits(gateway, fakes, api, stream):
    """Open WebUI's stop button closes the connection (open-webui/open-webui#456: the backend must stop generating
    then): the slot is freed at once, the upstream request closed, and the committed row says ``cancelled``."""
    oa = fakes[0]
    oa.push(Fault.hang_after_first_token() if stream else Fault.hang_before_headers())
    slots = gateway.router.pool.local("fast").slots
    path, body = GONE[api]
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    post(sock, path, {**body, "stream": stream})
    gateway.wait_for(lambda: slots.in_flight == 1 and oa.in_flight == 1)
    head = read_head(sock) if stream else b""
    sock.close()
    gateway.wait_for(lambda: slots.in_flight == 0, timeout=1.0)  # well inside the 3 s first-token/idle bounds
    oa.wait_for(lambda: oa.in_flight == 0, timeout=1.0)
    if stream:
        row, attempts = gateway.wait_for(lambda: log_row(gateway, request_id(head)))
        assert row["outcome"] == "cancelled" and attempts[-1]["reason"] == "cancelled"
    else:
        conn = connect(gateway.runtime.log_path, readonly=True)
        try:
            rows = gateway.wait_for(lambda: conn.execute(
                "SELECT outcome, agent FROM requests ORDER BY ts DESC LIMIT 1").fetchall())
        finally:
            conn.close()
        assert [tuple(r) for r in rows] == [("cancelled", "solo")]


# -- what a client sends ---------------------------------------------------------------------------------------------

def raw(gateway: GatewayServer, data: bytes, *, reads: int = 1) -> bytes:
    """Send bytes as they are; read until ``reads`` whole responses (by content-length) came, or the server closed."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(data)
        got = b""
        while len(responses(got)) < reads:
            piece = sock.recv(65536)
            if not piece:
                break
            got += piece
        return got


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """Whole responses with a content-length in ``data``, as (status, body)."""
    out = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        if status == 100:
            data = rest
            continue
        fields = (line.partition(b":") for line in lines[1:])
        length = next((int(v) for n, _, v in fields if n.lower() == b"content-length"), None)
        if length is None or len(rest) < length:
            break
        out.append((status, rest[:length]))
        data = rest[length:]
    return out


CHAT = {"model": "solo", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(("body", "param"), [
    # bodies no API takes, each answered with a 400 in OpenAI's error shape naming what is wrong
    (b'{"model": "solo", "messages": [', None),  # cut short (a client killed mid-upload by its own timeout)
    (b"[" + json.dumps(CHAT).encode() + b"]", None),  # a batch, as JSON-RPC clients send
    (b"42", None),
    (b'"hello"', None),
    (b"null", None),
    (b"", None),  # curl -X POST with no -d
    (json.dumps({"model": "solo", "messages": "hello"}).encode(), "messages"),  # a prompt where the list goes
    (json.dumps({"model": "solo", "messages": ["hello"]}).encode(), "messages[0]"),
    (json.dumps({"model": "solo", "messages": [{"content": "x"}]}).encode(), "messages[0].role"),
    (json.dumps({"model": "solo", "messages": [{"role": "user", "content": 5}]}).encode(), "messages[0].content"),
    (json.dumps({"model": 7, "messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
    (b'{"model": "solo", "messages": [{"role": "user", "content": "\xff\xfe"}]}', None),  # not UTF-8
])
def test_a_body_no_api_takes_is_a_400_in_openais_shape(gateway, fakes, body, param):
    r = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == param, error
    assert fakes[0].requests == []  # nothing reached a model


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded",  # curl -d without -H: its default type
    "text/plain",  # fetch() with a string body and no headers
    None,
    "application/json; charset=utf-8",
])
def test_json_under_another_content_type_is_served(gateway, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = httpx.post(gateway.url + "/v1/chat/completions", content=json.dumps(CHAT).encode(), headers=headers)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello from fast.", r.text


def test_a_chunked_request_body_is_served(gateway):
    """httpx sends a body given as an iterator with ``transfer-encoding: chunked`` (no length)."""
    payload = json.dumps(CHAT).encode()
    r = httpx.post(gateway.url + "/v1/chat/completions", content=iter([payload[:10], payload[10:]]))
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello from fast."


def test_expect_100_continue_is_answered_before_the_body_and_a_too_large_one_without_it(tmp_path, fakes, monkeypatch):
    """curl sends ``Expect: 100-continue`` before a large body (RFC 9110 §10.1.1) and waits for it (1 s) before
    sending: the gateway says 100 once the body is read; a body over the limit gets its 413 without a 100, so the
    client need not send it at all."""
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"max_request_mb": 0.01})
    with GatewayServer(config) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        payload = json.dumps(CHAT).encode()
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                         b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(payload))
            assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(payload)
            got = b""
            while not responses(got):
                got += sock.recv(65536)
            assert responses(got)[0][0] == 200
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                         b"content-type: application/json\r\ncontent-length: 50000000\r\n\r\n")
            got = b""
            while not responses(got):
                got += sock.recv(65536)
            assert not got.startswith(b"HTTP/1.1 100")
            status, body = responses(got)[0]
            assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"


def test_a_body_larger_than_any_prompt_is_a_413_before_it_is_read(gateway, fakes):
    """A declared 1 GB body (a file posted by mistake): refused from its length, in OpenAI's shape, nothing read."""
    got = raw(gateway, b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                       b"content-length: 1000000000\r\n\r\n" + b"{" * 65536)
    status, body = responses(got)[0]
    error = json.loads(body)["error"]
    assert status == 413 and error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert "1e+03 MB" in error["message"] or "954 MB" in error["message"] or "MB" in error["message"]
    assert fakes[0].requests == []


def test_pipelined_requests_are_answered_in_order(gateway):
    """HTTP/1.1 pipelining (RFC 9112 §9.3: a server answers in order): two requests in one write."""
    one = json.dumps({"model": "solo", "messages": [{"role": "user", "content": "first"}]}).encode()
    two = json.dumps({"model": "backup", "messages": [{"role": "user", "content": "second"}]}).encode()
    data = b"".join(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n" % len(p) + p for p in (one, two))
    answers = responses(raw(gateway, data, reads=2))
    assert [status for status, _ in answers] == [200, 200]
    assert [json.loads(body)["model"] for _, body in answers] == ["fast", "backup"]


def test_many_idle_keep_alive_connections_do_not_keep_others_out(gateway):
    """Agents' HTTP pools keep connections open between calls (httpx: up to 20 per client, aiohttp: 100): 300
    connections open and idle, and a request on a new one is answered as at once."""
    host, port = gateway.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(300)]
    try:
        waited, t0 = CpuWait(), time.monotonic()  # the gateway is in this process: its threads' CPU wait is the load's
        r = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=10)
        assert r.status_code == 200 and time.monotonic() - t0 - waited.seconds() < 2
    finally:
        for sock in idle:
            sock.close()


def test_serve_under_a_low_open_files_limit_still_takes_new_clients_past_many_idle_ones(tmp_path, fakes):
    """launchd starts programs with a soft limit of 256 open files, systemd with 1024 (golang/go#46279; Go raises
    it for every program). ``serve`` at 256 with 300 idle keep-alive connections: ``accept`` failed (EMFILE) and a
    new client waited for as long as the idle ones stayed (75 s each). Now
    ``serve`` raises its soft limit within the hard one, and the new client is answered."""
    import resource
    import subprocess
    import sys

    import yaml

    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.fail(f"this test needs a hard open-files limit of 1024 or more (it is {hard})")

    def low_limit() -> None:  # in the child, before it runs: launchd's soft limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", "--config", str(path), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=low_limit)
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        for _ in range(300):  # agents' pools between calls: open, idle, each one of the server's files
            idle.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)  # let the server take them all
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={**CHAT, "model": "coder"}, timeout=10)
        assert r.status_code == 200 and r.headers["x-modelyard-route"] == "fast ok", r.text
    finally:
        for sock in idle:
            sock.close()
        proc.terminate()
        proc.wait(timeout=15)
