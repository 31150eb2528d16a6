"""Routing log on SQLite vs PostgreSQL (issue 9.3), side by side in one run.

    .venv/bin/python benchmarks/bench_log.py [--rows 50000] [--requests 4000]

Needs the PostgreSQL on 127.0.0.1:5432 (scripts/services.sh starts it); a scratch database is
created and dropped. Measures:

- rows/s into the log: SQLite alone (``LogWriter``); SQLite spool + forwarder to PostgreSQL, end to
  end (submit → in PostgreSQL); PostgreSQL's own batched upsert (the forwarder's sink, rows ready);
  and one commit per row, what writing through to PostgreSQL on every answer would sustain;
- the latency each answer pays for its row, as the gateway pays it (route, then wait for the row's
  commit): no log, SQLite, SQLite with forwarding to PostgreSQL; and what waiting on a PostgreSQL
  commit instead would add;
- forward lag: from a row's commit in the spool to the moment it is in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg

from bench_router import REQ, Instant, config, pct
from modelyard.ledger import LogWriter
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.pg import PgConnection
from modelyard.ledger.sink import write_batch
from modelyard.ledger.writer import attempt_rows, request_row
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router import Router
from modelyard.router.records import Attempt, RequestRecord

ADMIN = os.environ.get("MODELYARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    name = f"modelyard_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def records(n: int, tag: str) -> list[RequestRecord]:
    return [RequestRecord(id=f"{tag}{i}", agent="chat", outcome=RequestOutcome.OK, model="a", total_ms=5.0,
                          prompt="write a haiku about queues", response="slots fill, then spill over",
                          attempts=[Attempt("a", "openai", Outcome.OK, duration_ms=5.0, tokens_in=3, tokens_out=2)])
            for i in range(n)]


#: model "a"'s server as a config's writer keeps it on each attempt (ledger.probes.backend_of)
BACKENDS = {"a": "openai http://127.0.0.1:8080/v1 a"}


def spool() -> Path:
    return Path(tempfile.mkdtemp()) / "log.sqlite3"


def rows_per_s(n: int, url: str | None) -> tuple[float, float]:
    """(rows/s committed in the SQLite file, rows/s until all are in PostgreSQL — with ``url``, the
    forwarder running alongside the writer)."""
    path = spool()
    writer = LogWriter(path, local_models=["a"], backends=BACKENDS)
    forwarder = Forwarder(path, url) if url else None
    if forwarder:
        writer.on_commit(forwarder.wake)
    batch = records(n, "f" if url else "s")
    t = time.perf_counter()
    for r in batch:
        writer.submit(r)
    writer.flush(timeout=300)
    local = time.perf_counter() - t
    if forwarder:
        assert forwarder.flush(timeout=600), forwarder.health()
        forwarder.close()
    total = time.perf_counter() - t
    writer.close()
    return n / local, n / total


def pg_sink_rows_per_s(n: int, url: str, batch: int = 500) -> float:
    conn = PgConnection(url)
    rows = records(n, "p")
    requests = [request_row(r, frozenset("a")) for r in rows]
    attempts = [a for r in rows for a in attempt_rows(r)]
    t = time.perf_counter()
    for i in range(0, n, batch):
        write_batch(conn, requests[i:i + batch], attempts[i:i + batch])
    elapsed = time.perf_counter() - t
    conn.close()
    return n / elapsed


def pg_commit_per_row(n: int, url: str) -> tuple[float, list[float]]:
    """One transaction per request, as a synchronous write-through would do: (rows/s, commit ms each)."""
    conn = PgConnection(url)
    rows = records(n, "c")
    times = []
    t0 = time.perf_counter()
    for r in rows:
        t = time.perf_counter()
        write_batch(conn, [request_row(r, frozenset("a"))], list(attempt_rows(r)))
        times.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed, times


async def answer_latency(n: int, concurrency: int, mode: str, url: str | None) -> list[float]:
    """ms per request from the client's side of the router: route, then wait for the row's commit."""
    path = spool()
    writer = LogWriter(path, local_models=["a"], backends=BACKENDS) if mode != "none" else None
    forwarder = Forwarder(path, url) if mode == "postgres" and url else None
    if writer and forwarder:
        writer.on_commit(forwarder.wake)
    router = Router(config(), providers={"a": Instant("a"), "b": Instant("b")},
                    sink=writer.submit if writer else None)
    out: list[float] = []
    todo = iter(range(n))

    async def client() -> None:
        for _ in todo:
            t = time.perf_counter()
            await router.complete("agent", REQ)
            if writer:
                await writer.wait_written(10)
            out.append((time.perf_counter() - t) * 1000)

    for _ in range(200):  # warm up
        await router.complete("agent", REQ)
    await asyncio.gather(*(client() for _ in range(concurrency)))
    if writer:
        writer.close()
    if forwarder:
        assert forwarder.flush(120)
        forwarder.close()
    return out


def forward_lag(n: int, url: str, rate: float = 500.0) -> list[float]:
    """ms from a row's local commit until it is in PostgreSQL, at ``rate`` requests/s."""
    path = spool()
    PgConnection(url).close()  # the schema exists before the first look
    writer, forwarder = LogWriter(path, local_models=["a"], backends=BACKENDS), Forwarder(path, url)
    writer.on_commit(forwarder.wake)
    pg = psycopg.connect(url, autocommit=True)
    lags = []
    for r in records(n, "l"):
        writer.submit(r)
        writer.flush()
        t = time.perf_counter()
        while not pg.execute("SELECT 1 FROM requests WHERE id = %s", (r.id,)).fetchone():
            time.sleep(0.0005)
        lags.append((time.perf_counter() - t) * 1000)
        time.sleep(max(0.0, 1 / rate - lags[-1] / 1000))
    pg.close()
    writer.close()
    forwarder.close()
    return lags


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    print(f"modelyard routing-log benchmarks — {time.strftime('%Y-%m-%d %H:%M')} — "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"PostgreSQL on loopback\n")
    with scratch_database() as url:
        rows: list[tuple[str, str, str]] = []
        sqlite, _ = rows_per_s(args.rows, None)
        local, end_to_end = rows_per_s(args.rows, url)
        sink = pg_sink_rows_per_s(args.rows, url)
        per_row, commit_ms = pg_commit_per_row(2000, url)
        rows += [
            ("rows/s: SQLite log alone", f"{sqlite:,.0f}", "≥ 20,000"),
            ("rows/s: SQLite spool, with forwarding on", f"{local:,.0f}", f"{local / sqlite:.2f}× SQLite"),
            ("rows/s: submit → in PostgreSQL, end to end", f"{end_to_end:,.0f}", f"{end_to_end / sqlite:.2f}× SQLite"),
            ("rows/s: PostgreSQL batched upsert (500/tx)", f"{sink:,.0f}", ""),
            ("rows/s: PostgreSQL one commit per row", f"{per_row:,.0f}", "write-through would cap here"),
        ]
        for concurrency in (1, 32):
            none = asyncio.run(answer_latency(args.requests, concurrency, "none", None))
            lite = asyncio.run(answer_latency(args.requests, concurrency, "sqlite", None))
            pg = asyncio.run(answer_latency(args.requests, concurrency, "postgres", url))
            rows += [
                (f"answer + its row, {concurrency} client(s): no log p50 / p99",
                 f"{statistics.median(none):.3f} / {pct(none, 99):.3f} ms", ""),
                ("  SQLite log p50 / p99", f"{statistics.median(lite):.3f} / {pct(lite, 99):.3f} ms", ""),
                ("  SQLite + forwarding to PostgreSQL p50 / p99",
                 f"{statistics.median(pg):.3f} / {pct(pg, 99):.3f} ms",
                 f"+{statistics.median(pg) - statistics.median(lite):.3f} ms p50 over SQLite"),
            ]
        rows.append(("  waiting on a PostgreSQL commit instead, p50 / p99",
                     f"+{statistics.median(commit_ms):.3f} / +{pct(commit_ms, 99):.3f} ms", "per answer, loopback"))
        lags = forward_lag(1000, url)
        rows.append(("forward lag: local commit → in PostgreSQL, p50 / p99",
                     f"{statistics.median(lags):.1f} / {pct(lags, 99):.1f} ms", "woken by each commit"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':>24}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>24}  {note}")


if __name__ == "__main__":
    main()
