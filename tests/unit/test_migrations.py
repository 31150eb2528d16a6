"""Schema migrations as named steps: applied once each, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.pg import LogBackend
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.ledger import connect
from modelyard.ledger.db import SCHEMA_VERSION
from modelyard.ledger.migrations import MIGRATIONS
from modelyard.ledger.migrator import Dialect, Migration, NewerSchema, Schema, migrate, registrar
from modelyard.ledger.pg import PgConnection


def raw(backend: LogBackend) -> Any:
    """A connection that has not been migrated (the steps under test run on it by hand)."""
    if backend.url:
        return backend.adopt(PgConnection(backend.url, migrate_schema=False))
    conn = sqlite3.connect(backend.path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return backend.adopt(conn)


def dialect(backend: LogBackend) -> Dialect:
    return Dialect.POSTGRES if backend.url else Dialect.SQLITE


def applied(conn: Any) -> list[str]:
    try:
        return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):  # no table: nothing was recorded
        return []


def test_every_step_once_and_reopening_applies_nothing(log_backend: LogBackend) -> None:
    conn = log_backend.connect()
    names = [m.name for m in MIGRATIONS if dialect(log_backend) in m.dialects]
    assert applied(conn) == sorted(names)
    assert migrate(conn, dialect(log_backend), MIGRATIONS) == []
    assert migrate(log_backend.connect(), dialect(log_backend), MIGRATIONS) == []
    if log_backend.url is None:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(names)


def test_postgres_gets_64_bit_columns(pg_url: str) -> None:
    conn = PgConnection(pg_url)
    try:
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = current_schema() AND table_name = 'requests'").fetchall())
    finally:
        conn.close()
    assert types["ts"] == types["cost_usd"] == "double precision"  # REAL would be 32-bit: ts to the minute
    assert types["tokens_in"] == types["acceptable"] == "bigint"
    assert types["id"] == types["prompt"] == "text"


def test_a_log_from_before_named_steps_is_adopted_not_rebuilt(tmp_path: Path) -> None:
    """A file migrated by the old runner (``user_version`` = 3, no _migrations table) opens as it is."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:3]:
        step.apply(Schema(old, Dialect.SQLITE))
    old.execute("INSERT INTO requests (id, ts, agent, outcome) VALUES ('kept', 1.0, 'chat', 'ok')")
    old.execute("PRAGMA user_version=3")
    old.close()
    conn = connect(path)  # re-running m001 would fail: "table requests already exists"
    assert applied(conn) == sorted(m.name for m in MIGRATIONS if Dialect.SQLITE in m.dialects)
    assert conn.execute("SELECT id FROM requests").fetchone()[0] == "kept"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_python_steps_and_steps_for_one_dialect(log_backend: LogBackend) -> None:
    steps: list[Migration] = []
    migration = registrar(steps)
    ran: list[str] = []

    @migration
    def m001_scores(db: Schema) -> None:
        db.execute("CREATE TABLE scores (name TEXT PRIMARY KEY, points INTEGER, ratio REAL)")
        db.execute("INSERT INTO scores (name, points) VALUES (?, ?)", ("a", 3))
        db.execute("INSERT INTO scores (name, points) VALUES (?, ?)", ("b", 4))

    @migration
    def m002_backfill_ratio(db: Schema) -> None:
        """Python between statements: read rows, compute, write back."""
        if "ratio" not in db.columns("scores"):
            raise AssertionError("m001 did not run first")
        total = sum(r[1] for r in db.execute("SELECT name, points FROM scores").fetchall())
        for name, points in db.execute("SELECT name, points FROM scores").fetchall():
            db.execute("UPDATE scores SET ratio = ? WHERE name = ?", (points / total, name))
        ran.append("m002")

    @migration(only=Dialect.SQLITE)
    def m003_only_sqlite(db: Schema) -> None:
        assert db.dialect is Dialect.SQLITE
        ran.append("sqlite")

    @migration(only=Dialect.POSTGRES)
    def m004_only_postgres(db: Schema) -> None:
        assert db.dialect is Dialect.POSTGRES
        ran.append("postgres")

    conn = raw(log_backend)
    own = dialect(log_backend)
    done = migrate(conn, own, steps)
    assert done == ["m001_scores", "m002_backfill_ratio", "m003_only_sqlite" if own is Dialect.SQLITE
                    else "m004_only_postgres"]
    assert ran == ["m002", own.value]
    ratios = dict(conn.execute("SELECT name, ratio FROM scores ORDER BY name").fetchall())
    assert ratios == {"a": pytest.approx(3 / 7), "b": pytest.approx(4 / 7)}
    assert migrate(conn, own, steps) == [] and ran == ["m002", own.value]

    with pytest.raises(ValueError, match="defined twice"):
        migration(m001_scores)


def test_a_failing_step_leaves_nothing_and_runs_again_next_time(log_backend: LogBackend) -> None:
    steps: list[Migration] = []
    migration = registrar(steps)
    broken = [True]

    @migration
    def m001_half_done(db: Schema) -> None:
        db.execute("CREATE TABLE half (x INTEGER)")
        if broken[0]:
            raise RuntimeError("step failed midway")

    conn = raw(log_backend)
    with pytest.raises(RuntimeError, match="midway"):
        migrate(conn, dialect(log_backend), steps)
    assert applied(conn) == []
    if log_backend.url:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None
    else:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    broken[0] = False
    assert migrate(conn, dialect(log_backend), steps) == ["m001_half_done"]  # the table did not survive the failure


def test_a_log_from_a_newer_modelyard_is_refused(log_backend: LogBackend, tmp_path: Path) -> None:
    conn = log_backend.connect()
    conn.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m999_from_the_future', 0)")
    with pytest.raises(NewerSchema, match="m999_from_the_future"):
        migrate(conn, dialect(log_backend), MIGRATIONS)
    config = tmp_path / "c.yaml"
    log = log_backend.log_config()
    config.write_text(f"log: {log}\nmodels: {{m: {{provider: ollama}}}}\nagents: {{a: {{primary: m}}}}\n")
    result = CliRunner().invoke(app, ["log", "--config", str(config)])
    assert result.exit_code == 2 and "upgrade modelyard" in result.output


def test_a_log_refused_as_newer_leaves_no_connection_open(log_backend: LogBackend) -> None:
    """Opening a log a newer modelyard migrated raised NewerSchema over the connection it had just opened, which
    nothing could close (the caller never got it): a PostgreSQL session, or the SQLite file's descriptor, held until
    the collector came — a ResourceWarning in whichever test it came in."""
    conn = log_backend.connect()
    conn.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m999_from_the_future', 0)")
    conn.close()  # SQLite keeps a closed connection's descriptor while another in the process holds a lock on the file
    name = f"refused-{secrets.token_hex(4)}"
    with pytest.raises(NewerSchema) as refused:  # its traceback keeps the refusing frame (and what it held) alive
        if log_backend.url:
            PgConnection(log_backend.url, application_name=name)
        else:
            connect(log_backend.path)
    assert refused.value
    if log_backend.url:
        with psycopg.connect(log_backend.url) as admin:
            left = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                 (name,)).fetchone()
        assert left == (0,), "the refused connection is still open"
    else:
        assert _descriptors_of(log_backend.path) == 0, "the refused connection still holds the file"


def _descriptors_of(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd) == str(path))


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed since the listing
        return ""


def test_processes_starting_together_apply_each_step_once(log_backend: LogBackend) -> None:
    steps: list[Migration] = []
    migration = registrar(steps)
    runs: list[int] = []

    @migration
    def m001_counted(db: Schema) -> None:
        runs.append(1)
        db.execute("CREATE TABLE counted (x INTEGER)")

    conns = [raw(log_backend) for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(conns))

    def start(conn: Any) -> None:
        try:
            barrier.wait()
            migrate(conn, dialect(log_backend), steps)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and runs == [1]
    assert applied(conns[0]) == ["m001_counted"]
