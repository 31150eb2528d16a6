"""The routing log's PostgreSQL cut off from one host only, silently: a firewall that drops packets, a NAT that forgot
the flow, a server frozen — the connection stays open and nothing answers (no RST), and libpq waits on it for as long
as TCP keeps it (the reason libpq has ``tcp_user_timeout`` and keepalives: PostgreSQL docs, "Parameter Key Words").
Real ``serve`` processes, the real PostgreSQL, and a proxy of the test's own in front of it for host A
(:mod:`tests.shared.fault_proxy`).

What must hold: answers go on; every row stays in A's spool while it is cut off; /healthz says so within a bound; and
once the path is back every row of both hosts is in PostgreSQL, once — without restarting anything.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import yaml
from tests.fakes import OpenAIServer
from tests.fakes.server import poll
from tests.reliability.loadgen import AGENT, GatewayProcess
from tests.shared.fault_proxy import FaultProxy

from modelyard.ledger.pg import PgConnection


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}"))


def _config(directory: Path, backend: str, log_url: str) -> Path:
    data: dict[str, Any] = {
        "models": {"fast": {"provider": "openai", "endpoint": backend, "model": "fast-model", "max_concurrent": 8}},
        "agents": {AGENT: {"primary": "fast"}},
        "defaults": {"timeouts": {"queue": 2, "connect": 1, "first_token": 2, "idle": 2, "total": 10}},
        "log": {"path": str(directory / "log.db"), "url": log_url},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _send(gateways: list[GatewayProcess], marker: str, n: int) -> list[str]:
    """``n`` requests to each gateway (4 at a time); the request ids answered."""
    ids: list[str] = []
    lock = threading.Lock()

    def one(g: GatewayProcess, i: int) -> None:
        body = {"model": AGENT, "max_tokens": 8, "messages": [{"role": "user", "content": f"{marker}-{i}"}]}
        r = httpx.post(g.url + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 200, r.text
        with lock:
            ids.append(r.headers["x-modelyard-request-id"])

    for g in gateways:
        for start in range(0, n, 4):
            threads = [threading.Thread(target=one, args=(g, i)) for i in range(start, min(n, start + 4))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(40)
    return ids


def _in_pg(url: str, marker: str) -> dict[str, int]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT id, count(*) FROM requests WHERE prompt LIKE %s GROUP BY id",
                            (marker + "-%",)).fetchall()
    return {r[0]: r[1] for r in rows}


def _forward(g: GatewayProcess) -> dict[str, Any]:
    return httpx.get(g.url + "/healthz", timeout=5).json()["log"]["forward"]


def test_postgresql_cut_off_silently_from_one_host_loses_no_row_and_forwards_once_back(tmp_path: Path,
                                                                                      pg_url: str) -> None:
    PgConnection(pg_url).close()  # the schema exists before either forwarder starts
    with OpenAIServer(models=["fast-model"], reply_text="Hello.") as backend, FaultProxy(5432) as proxy:
        dirs = [tmp_path / "a", tmp_path / "b"]
        for d in dirs:
            d.mkdir()
        a = GatewayProcess(_config(dirs[0], backend.url, _through(pg_url, proxy.port)), dirs[0])
        b = GatewayProcess(_config(dirs[1], backend.url, pg_url), dirs[1])
        try:
            a.start()
            b.start()
            before = _send([a, b], "cut", 8)
            assert poll(lambda: len(_in_pg(pg_url, "cut")) == len(before), timeout=30), "forwarded before the cut"
            proxy.partition()  # A's connection to PostgreSQL goes silent; B's is untouched
            cut = time.monotonic()
            during = _send([a, b], "cut", 20)
            said = poll(lambda: (f := _forward(a))["backlog"] > 0 and not f["connected"] and f, timeout=60)
            noticed = time.monotonic() - cut
            assert said["active"], said
            proxy.heal()
            healed = time.monotonic()
            everything = before + during
            assert poll(lambda: len(_in_pg(pg_url, "cut")) == len(everything), timeout=90), \
                f"rows missing in PostgreSQL after the heal: A's forwarder says {_forward(a)}"
            caught_up = time.monotonic() - healed
            assert set(_in_pg(pg_url, "cut")) == set(everything)
            assert all(n == 1 for n in _in_pg(pg_url, "cut").values()), "one row per request"
            assert poll(lambda: _forward(a)["backlog"] == 0 and _forward(a)["connected"], timeout=30)
            print(f"\nPostgreSQL cut off from one host: {len(during)} answers went on; A said it within "
                  f"{noticed:.1f}s; every row in PostgreSQL {caught_up:.1f}s after the heal")
        finally:
            a.stop()
            b.stop()
