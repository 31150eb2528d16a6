"""``log.keep_days``: old requests leave the SQLite file with what belongs to them; nothing else does
(ledger/retention.py). Without it the file grew for as long as modelyard ran."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from modelyard.config import Config
from modelyard.config.loader import ConfigError, parse_config
from modelyard.ledger import LogWriter, connect
from modelyard.ledger.forward import enable_spool
from modelyard.ledger.retention import Pruner, prune
from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.paths import hold_exclusive
from modelyard.router.records import Attempt, RequestRecord

DAY = 86400.0


def record(rid: str, ts: float) -> RequestRecord:
    return RequestRecord(id=rid, agent="chat", ts=ts, outcome=RequestOutcome.OK, model="local",
                         attempts=[Attempt("cloud", "anthropic", AttemptOutcome.FALLBACK, started_at=ts),
                                   Attempt("local", "llamacpp", AttemptOutcome.OK, started_at=ts)],
                         prompt="question " * 50, response="answer " * 50)


def fill(path: Path, now: float, *, old: int, new: int, prefix: str = "old") -> None:
    writer = LogWriter(path)
    for i in range(old):
        writer.submit(record(f"{prefix}{i:04d}", now - 40 * DAY + i))
    for i in range(new):
        writer.submit(record(f"new{i:04d}", now - 1 * DAY + i))
    writer.close()
    conn = connect(path)
    for i in range(old):  # a routing decision and a Telegram message link of each old request
        conn.execute("INSERT INTO routing_decisions (request_id, ts, text, agent, method) VALUES (?, ?, 't', 'chat', "
                     "'fast')", (f"{prefix}{i:04d}", now - 40 * DAY + i))
        conn.execute("INSERT INTO message_requests VALUES ('telegram', '1', ?, ?, '7')",
                     (f"{prefix}{i}", f"{prefix}{i:04d}"))
    if new:
        conn.execute("INSERT INTO routing_decisions (request_id, ts, text, agent, method) VALUES ('new0000', ?, 't', "
                      "'chat', 'fast')", (now - DAY,))
        conn.execute("INSERT INTO message_requests VALUES ('telegram', '1', 'n', 'new0000', '7')")
        conn.execute("INSERT INTO _outbox (request_id) VALUES ('old0003')")  # not yet in PostgreSQL
    conn.close()


def counts(path: Path) -> dict[str, int]:
    conn = connect(path, readonly=True)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("requests", "attempts", "routing_decisions", "message_requests")}
    finally:
        conn.close()


def test_old_requests_go_with_their_attempts_links_and_decisions_in_batches(tmp_path: Path) -> None:
    path, now = tmp_path / "log.db", time.time()
    fill(path, now, old=10, new=4)
    conn = connect(path)
    try:
        gone = prune(conn, now - 32 * DAY, batch=3)  # several batches
    finally:
        conn.close()
    assert gone == 9  # old0003 waits for PostgreSQL: it stays until it is forwarded
    assert counts(path) == {"requests": 5, "attempts": 10, "routing_decisions": 1, "message_requests": 2}
    conn = connect(path, readonly=True)
    ids = sorted(r[0] for r in conn.execute("SELECT id FROM requests"))
    conn.close()
    assert ids == ["new0000", "new0001", "new0002", "new0003", "old0003"]


def test_a_long_running_writer_prunes_by_itself_and_the_file_stops_growing(tmp_path: Path) -> None:
    path, now = tmp_path / "log.db", time.time()
    fill(path, now, old=200, new=5)
    size = path.stat().st_size
    pruner = Pruner(path, keep_days=32, first_after=0.0, every=3600)
    try:
        deadline = time.monotonic() + 30
        while pruner.passes < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        pruner.close()
    assert pruner.pruned == 199 and pruner.last_error is None
    assert counts(path)["requests"] == 6
    fill(path, now, old=150, new=0, prefix="again")  # as much again, into the pages the deleted rows freed
    assert path.stat().st_size <= size * 1.1


def test_keep_days_reaches_the_writer_and_is_at_least_a_month(tmp_path: Path) -> None:
    data = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9", "model": "x"}},
            "agents": {"a": {"primary": "m"}}, "log": {"path": str(tmp_path / "log.db"), "keep_days": 90}}
    from modelyard.runtime import open_runtime

    runtime = open_runtime(config=Config.model_validate(data))
    try:
        retention = runtime.log.retention
        assert retention is not None and retention.keep_days == 90
    finally:
        asyncio.run(runtime.aclose())
    assert LogWriter(tmp_path / "other.db").retention is None  # by default nothing is deleted
    with pytest.raises(ConfigError, match="keep_days"):
        parse_config("log:\n  keep_days: 7\n", "c.yaml")


def test_requests_kept_for_a_postgresql_nobody_forwards_to_are_said(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A log that once had ``log.url`` keeps the spool's triggers (the forwarder installed them in the file), which
    queue every request for PostgreSQL whatever the config says now; requests waiting there are never deleted (they
    are not in PostgreSQL yet). With ``log.url`` gone, ``keep_days`` deleted nothing again and said nothing: the file
    grew as if it were unset. Now a pass says it once, with the two ways out — unless a process forwards them."""
    path, now = tmp_path / "log.db", time.time()
    conn = connect(path)
    enable_spool(conn)  # log.url was set once
    conn.close()
    fill(path, now, old=10, new=2)
    pruner = Pruner(path, keep_days=32, first_after=3600, every=3600)
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.retention"):
            pruner.run_once()
            pruner.run_once()
    finally:
        pruner.close()
    assert pruner.pruned == 0 and counts(path)["requests"] == 12  # all wait for PostgreSQL
    assert caplog.text.count("no process forwards this log") == 1, caplog.text
    assert "10 request(s) older than 32 days (log.keep_days) are kept" in caplog.text
    assert "DROP TRIGGER spool_request_written" in caplog.text

    caplog.clear()
    forwarding = hold_exclusive(f"{path}.forward-lock")  # a forwarder of another process holds it: they will go
    assert forwarding is not None
    try:
        pruner = Pruner(path, keep_days=32, first_after=3600, every=3600)
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.retention"):
            pruner.run_once()
        pruner.close()
    finally:
        os.close(forwarding)
    assert "no process forwards" not in caplog.text
