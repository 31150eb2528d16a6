"""The real PostgreSQL refusing the forwarder in ways other than being down (helper-34's hunt): its backend
terminated mid-run (``pg_terminate_backend``: an operator, a pooler, a failover), and a database that takes no
writes (``default_transaction_read_only``, as a hot standby after a failover answers). Nothing is lost: the rows
wait in the local spool and arrive once a writable database takes them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
from tests.fakes.server import poll
from tests.integration.test_pg_forward import pg_ids, write
from tests.unit.test_ledger import record

from modelyard.ledger.forward import Forwarder

READ_ONLY = "%20-cdefault_transaction_read_only%3Don"


@contextlib.contextmanager
def own_role(pg_url: str, path: Path, name: str, options: str = "") -> Iterator[str]:
    """A role of the test's own (superusers ignore limits and pass every privilege check) with every right on the
    log's tables, which a first forwarder as their owner creates (one row of ``path``); yields the role's URL. Dropped
    afterwards."""
    role = f"{name}_{secrets.token_hex(4)}"
    schema = pg_url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN {options}")
    try:
        write(path, [record(0)])
        first = Forwarder(path, pg_url)
        try:
            assert first.flush(30)
        finally:
            first.close()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {role}")
            admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        yield pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def test_a_terminated_backend_is_reconnected_and_nothing_is_lost(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(i) for i in range(10)])
        assert forwarder.flush(30)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                "'modelyard-forwarder' AND datname = current_database() AND pid <> pg_backend_pid()").fetchall()
        assert killed and all(ok for (ok,) in killed)
        write(path, [record(i) for i in range(10, 20)])  # the next send finds the connection gone: connects again
        assert poll(lambda: len(pg_ids(pg_url)) == 20, timeout=10), forwarder.health()
        assert pg_ids(pg_url) == [f"req{i:06d}" for i in range(20)]
        health = forwarder.health()  # at once, not as a failure: the database took the rows on a fresh connection
        assert health.refused == 0 and health.failures == 0 and not health.degraded
    finally:
        forwarder.close()


def test_a_read_only_database_holds_the_rows_instead_of_refusing_them(tmp_path: Path, pg_url: str) -> None:
    """Every INSERT fails with 'cannot execute INSERT in a read-only transaction' (psycopg's InternalError, not
    an OperationalError): each row was counted as refused for its content and dropped from the outbox, so it
    never reached PostgreSQL, even once writes were possible again."""
    path = tmp_path / "log.sqlite3"
    write(path, [record(0)])
    first = Forwarder(path, pg_url)  # the schema exists (a read-only session cannot create it)
    try:
        assert first.flush(30)
    finally:
        first.close()
    read_only = Forwarder(path, pg_url + READ_ONLY)
    try:
        write(path, [record(i) for i in range(1, 6)])
        health = poll(lambda: (h := read_only.health()).failures >= 2 and h, timeout=10)
        assert health.refused == 0 and health.degraded and "read-only" in (health.last_error or "")
        assert not read_only.flush(0.5)
    finally:
        read_only.close()
    again = Forwarder(path, pg_url)  # writable again (the old primary back, the standby promoted)
    try:
        assert again.flush(30), again.health()
        assert pg_ids(pg_url) == [f"req{i:06d}" for i in range(6)]
    finally:
        again.close()


def test_too_many_clients_holds_the_rows_until_a_connection_is_allowed(tmp_path: Path, pg_url: str) -> None:
    """'too many connections' (max_connections, a role's or a database's connection limit) refuses the
    forwarder's connection: the rows wait in the spool, nothing is refused, and they arrive once it may connect.
    A role of the test's own with CONNECTION LIMIT 0 (superusers ignore limits; the server's max_connections is
    shared with everyone else's tests)."""
    path = tmp_path / "log.sqlite3"
    with own_role(pg_url, path, "modelyard_limited", "CONNECTION LIMIT 0") as url:
        limited = Forwarder(path, url)
        try:
            write(path, [record(i) for i in range(1, 6)])
            health = poll(lambda: (h := limited.health()).failures >= 1 and h, timeout=10)
            assert "too many connections" in (health.last_error or ""), health.last_error
            assert health.refused == 0 and poll(lambda: limited.health().backlog == 5, timeout=5)
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute(f"ALTER ROLE {url.split('//')[1].split('@')[0]} CONNECTION LIMIT -1")
            assert poll(lambda: len(pg_ids(pg_url)) == 6, timeout=40), limited.health()
            assert limited.health().refused == 0
        finally:
            limited.close()


def test_a_lock_held_by_another_session_is_reported_and_waited_out(tmp_path: Path, pg_url: str) -> None:
    """A session that holds a lock on the log's tables (a psql left in an open transaction, a migration by a
    newer host, VACUUM FULL): the forwarder's INSERT waited for it without a bound, and meanwhile /healthz showed
    no backlog and nothing degraded — the spool grew unseen for as long as the lock was held. Now a transaction
    waits at most ``lock_timeout``, fails with a reason that says where to look, and is retried."""
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url, lock_timeout=0.5)
    try:
        write(path, [record(0)])
        assert forwarder.flush(30)
        with psycopg.connect(pg_url) as locker:  # a transaction left open
            locker.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
            write(path, [record(i) for i in range(1, 6)])
            forwarder.wake()
            health = poll(lambda: (h := forwarder.health()).degraded and h.backlog == 5 and h, timeout=10)
            assert "lock timeout" in (health.last_error or "") and "pg_locks" in (health.last_error or "")
            locker.rollback()
        assert poll(lambda: len(pg_ids(pg_url)) == 6, timeout=40), forwarder.health()  # within one backoff
        assert forwarder.health().refused == 0
    finally:
        forwarder.close()


def test_a_revoked_privilege_holds_the_rows_says_what_to_grant_and_they_arrive_once_granted(
        tmp_path: Path, pg_url: str) -> None:
    """guard: a DBA revokes the role's INSERT on the log's tables (or hands the tables to another owner) — 'permission
    denied for table requests', SQLSTATE 42501 (a ProgrammingError, not a row's fault). The rows wait in the spool, none
    is refused, /healthz names the GRANT to run, and they arrive once it is granted again. A role of the test's own
    (superusers pass every privilege check)."""
    path = tmp_path / "log.sqlite3"
    with own_role(pg_url, path, "modelyard_writer") as url:
        role = url.split("//")[1].split("@")[0]
        writer = Forwarder(path, url)
        try:
            write(path, [record(1)])
            assert poll(lambda: len(pg_ids(pg_url)) == 2, timeout=15), writer.health()
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute(f"REVOKE INSERT, UPDATE ON requests, attempts FROM {role}")
            write(path, [record(i) for i in range(2, 7)])
            writer.wake()
            health = poll(lambda: (h := writer.health()).failures >= 1 and h.backlog == 5 and h, timeout=15)
            assert health, writer.health()
            assert health.refused == 0 and health.degraded
            assert "permission denied" in (health.last_error or "") and "GRANT INSERT" in (health.last_error or "")
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute(f"GRANT INSERT, UPDATE ON requests, attempts TO {role}")
            assert poll(lambda: len(pg_ids(pg_url)) == 7, timeout=40), writer.health()  # within one backoff
            assert writer.health().refused == 0
        finally:
            writer.close()
