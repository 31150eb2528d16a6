"""The routing log on a real PostgreSQL under what operators do to it (helper-46's hunt): a session that holds the
log's tables exclusively (a psql left in a transaction after ``LOCK TABLE``, ``VACUUM FULL``, a migration by hand).
The readers (``log``, ``report``) waited for it without bound and said nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import yaml
from tests.fakes.server import poll
from tests.integration.test_pg_forward import write
from tests.pg import Bouncer, scratch_database
from tests.unit.test_ledger import record

from modelyard.ledger import queries
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.pg import READ_LOCK_TIMEOUT, PgConnection
from modelyard.ledger.store import LogStore


def _config(tmp_path: Path, url: str) -> Path:
    data = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
            "agents": {"a": {"primary": "m"}}, "default_agent": "a",
            "log": {"path": str(tmp_path / "spool.sqlite3"), "url": url}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_log_behind_an_exclusive_lock_says_who_holds_it_within_its_bound(tmp_path: Path, pg_url: str) -> None:
    spool = tmp_path / "spool.sqlite3"
    write(spool, [record(0)])
    forwarder = Forwarder(spool, pg_url)  # the schema exists and holds a row
    try:
        assert forwarder.flush(30)
    finally:
        forwarder.close()
    config = _config(tmp_path, pg_url)
    with psycopg.connect(pg_url, application_name="psql-left-open") as locker:
        locker.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        try:
            out = subprocess.run([sys.executable, "-m", "modelyard", "log", "--config", str(config)],
                                 capture_output=True, text=True, timeout=READ_LOCK_TIMEOUT + 40)
        except subprocess.TimeoutExpired:
            raise AssertionError("`modelyard log` still waited for the lock after its bound") from None
        took = time.monotonic() - t0
        locker.rollback()
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    assert "lock timeout" in out.stderr and "psql-left-open" in out.stderr, out.stderr
    assert "LOCK TABLE requests" in out.stderr and "pg_terminate_backend(" in out.stderr, out.stderr
    assert took >= READ_LOCK_TIMEOUT * 0.9
    again = subprocess.run([sys.executable, "-m", "modelyard", "log", "--config", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr  # the lock gone: the log reads as before


def test_a_server_statement_timeout_and_a_dropped_table_hold_the_rows_and_say_why(tmp_path: Path, pg_url: str) -> None:
    """Two refusals that last until someone acts: a statement_timeout set on the server (per role or database) that
    cancels the log's writes, and a table of the log dropped by hand. Rows already waited in the spool, but the
    reason was psycopg's bare text ('UndefinedTable: relation "requests" does not exist LINE 1: INSERT INTO …  ^')
    with nothing said about what it means or what to do."""
    spool = tmp_path / "spool.sqlite3"
    write(spool, [record(0)])
    first = Forwarder(spool, pg_url)
    try:
        assert first.flush(30)
    finally:
        first.close()
    # 1 ms, and a session holding a lock every insert waits for: each batch is cancelled. Without the lock a batch
    # could finish within the 1 ms (2 runs in 6 forwarded all 199 rows and the test waited in vain for a failure).
    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE requests IN SHARE MODE")
        cancelled = Forwarder(spool, pg_url + "%20-cstatement_timeout%3D1")
        try:
            write(spool, [record(i) for i in range(1, 200)])
            health = poll(lambda: (h := cancelled.health()).failures >= 1 and h, timeout=15)
            assert health.refused == 0 and "raise it for this role or database" in (health.last_error or ""), health
        finally:
            cancelled.close()
            holder.rollback()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("DROP TABLE attempts")
        admin.execute("DROP TABLE requests")
    dropped = Forwarder(spool, pg_url)
    try:
        health = poll(lambda: (h := dropped.health()).failures >= 1 and h, timeout=15)
        error = health.last_error or ""
        assert health.refused == 0 and "a table of the log is gone" in error and "LINE 1" not in error, error
    finally:
        dropped.close()


def test_bounded_readers_work_behind_a_transaction_pooler(tmp_path: Path) -> None:
    """The readers' bound is ``SET LOCAL`` inside a transaction of its own, so behind PgBouncer's transaction pooling
    it never stays on a server connection another client gets next (a session ``SET`` would)."""
    with scratch_database() as direct, Bouncer(direct) as bouncer:
        write(tmp_path / "log.sqlite3", [record(1)])
        forwarder = Forwarder(tmp_path / "log.sqlite3", bouncer.url)
        try:
            assert forwarder.flush(20), forwarder.health()
        finally:
            forwarder.close()
        reader = LogStore(tmp_path / "log.sqlite3", bouncer.url).connect(readonly=True)
        plain = PgConnection(bouncer.url, migrate_schema=False)  # another client of the same server connections
        try:
            for _ in range(12):
                assert queries.rate(reader, "req000001", True) == "req000001"
                assert plain.execute("SHOW lock_timeout").fetchone()[0] == "0", "the bound leaked out"
        finally:
            reader.close()
            plain.close()
