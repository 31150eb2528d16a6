"""The PostgreSQL log under what its servers do to connections that sit idle (ledger9's hunt): a server or pooler
ends a session that was quiet for a while — ``idle_session_timeout`` (PostgreSQL 14+), PgBouncer's
``client_idle_timeout``, a restart or failover between two bursts. The forwarder keeps its connection between
steps, so the next burst found it gone: an ERROR 'cannot forward', a failure counted, ``/healthz`` degraded for 5
minutes and ``flush`` giving up at once — after every quiet spell, with nothing wrong. Now it connects again at once;
only a database that still refuses then is a failure."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import psycopg
import pytest
from tests.fakes.server import poll
from tests.integration.test_pg_forward import pg_ids, write
from tests.unit.test_ledger import record

from modelyard.ledger.forward import Forwarder

IDLE_KILL = "%20-cidle_session_timeout%3D300"  # ms: the server ends the session after that long idle


def test_a_session_the_server_ended_while_idle_is_made_again_without_a_failure(
        tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url + IDLE_KILL)
    try:
        with caplog.at_level(logging.INFO, "modelyard.ledger.forward"):
            for burst in range(3):
                write(path, [record(i) for i in range(burst * 5, burst * 5 + 5)])
                assert forwarder.flush(10), forwarder.health()
                time.sleep(1.0)  # quiet: the server ends the forwarder's session meanwhile
        assert pg_ids(pg_url) == [f"req{i:06d}" for i in range(15)]
        health = forwarder.health()
        assert health.failures == 0 and not health.degraded and health.backlog == 0, health
        assert "closed the forwarder's connection while it was idle" in caplog.text
        assert "cannot forward" not in caplog.text
    finally:
        forwarder.close()


def writable(url: str, database: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:  # a session that is itself read-only by default meanwhile
        admin.execute("SET default_transaction_read_only = off")
        admin.execute(f"ALTER DATABASE {database} RESET default_transaction_read_only")


def test_a_database_that_still_refuses_on_the_fresh_connection_is_a_failure(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url + IDLE_KILL)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        database = admin.execute("SELECT current_database()").fetchone()[0]
    try:
        write(path, [record(0)])
        assert forwarder.flush(10)
        with psycopg.connect(pg_url, autocommit=True) as admin:  # meanwhile a failover to a standby: no writes
            admin.execute(f"ALTER DATABASE {database} SET default_transaction_read_only = on")
        time.sleep(1.0)  # and the idle session ended
        write(path, [record(1)])
        health = poll(lambda: (h := forwarder.health()).failures >= 1 and h, timeout=10)
        assert health and health.degraded and "read-only" in (health.last_error or ""), health
        assert pg_ids(pg_url) == ["req000000"]  # req000001 waits in the spool
        writable(pg_url, database)
        assert poll(lambda: pg_ids(pg_url) == ["req000000", "req000001"], timeout=40), forwarder.health()
    finally:
        writable(pg_url, database)
        forwarder.close()
