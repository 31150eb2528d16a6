"""``log.keep_days`` on the PostgreSQL log (ledger/retention.py ``prune_pg``): the shared log kept every request
for ever while each host's SQLite file was pruned — README said "PostgreSQL is not pruned", the team's log grew
without bound. Now the same rule on both, on the real server, and safe when every host prunes at once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import psycopg
import pytest
from tests.pg import SpooledWriter
from tests.unit.test_log_retention import DAY, record

from modelyard.config import Config
from modelyard.ledger import connect, retention
from modelyard.ledger.pg import PgConnection


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("requests", "attempts", "routing_labels")}


def test_keep_days_prunes_the_postgresql_log_as_it_prunes_the_file(tmp_path: Path, pg_url: str) -> None:
    path, now = tmp_path / "log.db", time.time()
    spooled = SpooledWriter(path, pg_url, ["local"])
    try:
        for i in range(30):
            spooled.submit(record(f"old{i:04d}", now - 40 * DAY + i))
        for i in range(5):
            spooled.submit(record(f"new{i:04d}", now - DAY + i))
        assert spooled.flush()
    finally:
        spooled.close()
    with psycopg.connect(pg_url, autocommit=True) as pg:  # a team's correction: labels outlive requests, as locally
        pg.execute("INSERT INTO routing_labels (origin, ts, text, agent, source, request_id) "
                   "VALUES ('request:old0001', %s, 'a poem', 'writer', 'rating', 'old0001')", (now - 40 * DAY,))
    assert counts(pg_url) == {"requests": 35, "attempts": 70, "routing_labels": 1}
    data = {"models": {"local": {"provider": "openai", "endpoint": "http://127.0.0.1:9", "model": "x"}},
            "agents": {"chat": {"primary": "local"}},
            "log": {"path": str(path), "url": pg_url, "keep_days": 32}}
    from modelyard.runtime import open_runtime

    runtime = open_runtime(config=Config.model_validate(data))
    try:
        pruner = runtime.log.retention
        assert pruner is not None
        pruner.run_once()  # what the hourly thread runs
        assert pruner.last_error is None
    finally:
        asyncio.run(runtime.aclose())
    assert counts(pg_url) == {"requests": 5, "attempts": 10, "routing_labels": 1}
    with psycopg.connect(pg_url) as pg:
        assert sorted(r[0] for r in pg.execute("SELECT id FROM requests")) == [f"new{i:04d}" for i in range(5)]
    with contextlib.closing(connect(path, readonly=True)) as local:  # the file too, as before
        assert local.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 5


def _fill(url: str, old: int, new: int, now: float) -> None:
    """``old`` requests 40 days old and ``new`` from yesterday, two attempts each, straight into PostgreSQL."""
    PgConnection(url).close()  # the schema
    with psycopg.connect(url, autocommit=True) as pg:
        for prefix, n, ts in (("old", old, now - 40 * DAY), ("new", new, now - DAY)):
            pg.execute("INSERT INTO requests (id, ts, agent, outcome, model) SELECT %s || g, %s + g, 'chat', 'ok', "
                       "'local' FROM generate_series(1, %s) g", (prefix, ts, n))
            pg.execute("INSERT INTO attempts (request_id, seq, ts, agent, model, provider, outcome) "
                       "SELECT %s || g, s, %s + g, 'chat', 'local', 'llamacpp', 'ok' "
                       "FROM generate_series(1, %s) g, generate_series(0, 1) s", (prefix, ts, n))


def test_several_hosts_pruning_at_once_take_different_rows_and_none_waits(pg_url: str) -> None:
    """Four hosts' hourly passes at the same moment, in small batches, while a forwarder holds one old row (it is
    re-sending a rating): every old row goes exactly once, no pruner fails or waits on another (deadlock, lock
    timeout), the held row is left for the next pass."""
    now = time.time()
    _fill(pg_url, old=2000, new=50, now=now)
    holder = psycopg.connect(pg_url)
    holder.execute("SELECT id FROM requests WHERE id = 'old7' FOR UPDATE")  # a transaction left open
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def host() -> None:
        conn = PgConnection(pg_url, migrate_schema=False, lock_timeout=5.0)
        try:
            start.wait()
            results.append(retention.prune_pg(conn, now - 32 * DAY, batch=50))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=host) for _ in range(4)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.monotonic() - began
    try:
        assert not errors, errors
        assert sum(results) == 1999 and len(results) == 4, results
        assert took < 5.0, took  # nobody waited out a lock timeout
        assert counts(pg_url)["requests"] == 51 and counts(pg_url)["attempts"] == 102
    finally:
        holder.rollback()
        holder.close()
    conn = PgConnection(pg_url, migrate_schema=False)
    try:
        assert retention.prune_pg(conn, now - 32 * DAY) == 1  # released: the next pass takes it
    finally:
        conn.close()
    assert counts(pg_url) == {"requests": 50, "attempts": 100, "routing_labels": 0}


def test_a_database_out_of_reach_is_said_and_the_file_is_still_pruned(tmp_path: Path) -> None:
    from tests.pg import free_port
    from tests.unit.test_log_retention import counts as file_counts
    from tests.unit.test_log_retention import fill

    from modelyard.ledger.retention import Pruner

    path, now = tmp_path / "log.db", time.time()
    fill(path, now, old=5, new=2)
    pruner = Pruner(path, keep_days=32, first_after=3600, url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    try:
        assert pruner.run_once() == 4  # old0003 waits in the outbox for PostgreSQL
        assert pruner.last_error is not None and "routing log" in pruner.last_error, pruner.last_error
        assert pruner.pruned == 4 and pruner.pruned_pg == 0
    finally:
        pruner.close()
    assert file_counts(path)["requests"] == 3


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("modelyard.ledger.pg.CONNECT_TIMEOUT", 2)
