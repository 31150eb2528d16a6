"""Routing log: migrations, batched writes off the request path, queries, ratings, no secrets."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.pg import LogBackend

from modelyard.errors import Reason
from modelyard.ledger import LogWriter, connect, queries
from modelyard.ledger.db import SCHEMA_VERSION
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord


def record(i: int, *, agent: str = "chat", model: str = "local", outcome: RequestOutcome = RequestOutcome.OK,
           cost: float = 0.0, total: float = 100.0) -> RequestRecord:
    attempts = []
    if outcome is RequestOutcome.FALLBACK:
        attempts.append(Attempt("cloud", "anthropic", Outcome.SKIPPED, Reason.MISSING_CREDENTIALS, "env X not set"))
    attempts.append(Attempt(model, "llamacpp", Outcome.OK, queue_wait_ms=1.0, ttft_ms=50, duration_ms=total,
                            tokens_in=10, tokens_out=20, tokens_per_s=20.0, cost_usd=cost))
    return RequestRecord(id=f"req{i:06d}", agent=agent, outcome=outcome, model=model, attempts=attempts,
                         total_ms=total, tokens_in=10, tokens_out=20, tokens_per_s=20.0, cost_usd=cost,
                         prompt=f"prompt {i}", response="answer")


def test_migrations_reach_current_version_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_writer_batches_and_queries(log_backend: LogBackend) -> None:
    writer = log_backend.writer(local_models=["local"])
    for i in range(500):
        writer.submit(record(i, outcome=RequestOutcome.FALLBACK if i % 5 == 0 else RequestOutcome.OK, total=float(i)))
    assert writer.flush()
    conn = log_backend.connect()
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 500
    assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 600
    row = queries.recent(conn, 1, outcome="fallback")[0]
    assert row["fallback_reason"] == "missing_credentials" and row["is_local"] == 1
    [g] = queries.stats(conn, by="agent")
    assert g.requests == 500 and g.fallbacks == 100 and g.local_share == 1.0
    assert g.p50 == 250.0 or g.p50 == 249.0
    writer.close()


def test_rate_by_prefix(log_backend: LogBackend) -> None:
    writer = log_backend.writer()
    writer.submit(record(1))
    writer.submit(record(2))
    writer.submit(record(3))
    writer.close()
    conn = log_backend.connect()
    assert queries.rate(conn, "req000001", True) == "req000001"
    assert queries.rate(conn, "req", False) is None  # ambiguous prefix changes nothing
    assert queries.rate(conn, "req00000_", False) is None  # LIKE wildcards in an id are literal characters
    rows = {r["id"]: (r["acceptable"], r["rated_at"] is not None) for r in conn.execute(
        "SELECT id, acceptable, rated_at FROM requests")}
    assert rows == {"req000001": (1, True), "req000002": (None, False), "req000003": (None, False)}
    assert queries.find_request(conn, "req000002")["agent"] == "chat"


def test_text_storage_can_be_off(log_backend: LogBackend) -> None:
    r = record(1)
    r.prompt = r.response = None
    writer = log_backend.writer()
    writer.submit(r)
    writer.close()
    row = log_backend.connect().execute("SELECT prompt, response FROM requests").fetchone()
    assert tuple(row) == (None, None)


def test_kill_9_mid_write_leaves_a_sound_database(tmp_path: Path) -> None:
    """A writer process killed while writing: the file passes integrity_check and keeps committed rows."""
    path = tmp_path / "log.sqlite3"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_ledger import record
from modelyard.ledger import LogWriter
w = LogWriter({str(path)!r})
i = 0
while True:
    w.submit(record(i)); i += 1
    if i % 200 == 0:
        w.flush(); print(i, flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(Path(__file__).parents[2] / "src"), str(Path(__file__).parents[2])])})
    assert proc.stdout is not None
    flushed = 0
    deadline = time.time() + 30
    while flushed < 2000 and time.time() < deadline:
        flushed = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    proc.stdout.close()  # its pipe, else an unclosed-file ResourceWarning when the collector takes it
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] >= flushed >= 2000


def test_no_api_key_reaches_the_log(tmp_path: Path) -> None:
    from modelyard.errors import ProviderError, Reason

    err = ProviderError(Reason.AUTH_ERROR, "HTTP 401: invalid x-api-key: sk-ant-api03-abcdefghijklmnop")
    r = record(1)
    r.attempts[0].detail = err.message
    writer = LogWriter(tmp_path / "log.sqlite3")
    writer.submit(r)
    writer.close()
    dump = "\n".join(connect(tmp_path / "log.sqlite3").iterdump())
    assert "sk-ant-api03" not in dump and "abcdefghijklmnop" not in dump
