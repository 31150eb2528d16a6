"""The shared routing log (PostgreSQL, ``log.url``) lost after the connection opened.

``models`` fell back to this host's own rows only when the connection could not be opened; lost mid-query it exited 1
and listed no model, though the listing needs the log only for recent failures and spend. Two real ways to lose it:

- the server process ends the session mid-query — what a restart, a failover or an administrator's
  ``pg_terminate_backend`` does; libpq then says "terminating connection due to administrator command" (SQLSTATE
  57P01, PostgreSQL's errcodes.txt ``admin_shutdown``; psycopg/psycopg#777 shows the client's side, "server closed
  the connection unexpectedly"). Here the real server's backend of the command is terminated while its query waits;
- the path goes silent mid-query (a firewall dropping packets: psycopg/psycopg2#561 "If the connection is lost in
  the middle of a query, it will never detect it"; netdata/netdata#4988, ``iptables … -j DROP``: "Module hangs
  forever"), cut by ``pg.READ_BOUND`` — :mod:`tests.shared.fault_proxy` on loopback in front of the real server.

And the schema check every connection makes once open (``ledger/pg.py``): a connection gone silent right after its
handshake waited there for ever — ``connect_timeout`` had ended and ``READ_BOUND`` not begun (ged/ruby-pg#509: a first
query after connect hanging "tens of hours", "connect_timeout does not apply here"). It is bounded now and names the
server and what to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from tests.integration.test_pg_partition import _through
from tests.shared.fault_proxy import FaultProxy

from modelyard.ledger import pg
from modelyard.ledger.store import LogUnavailable

BOUND = 2.0
#: the command in a child process with the bounds set as the test wants (a child does not see a monkeypatch)
CHILD = ("import sys; from modelyard.ledger import pg; pg.READ_BOUND = pg.CHECK_BOUND = float(sys.argv[1]); "
         "from modelyard.cli import main; sys.argv = ['modelyard', *sys.argv[2:]]; main()")
#: the first statement of the schema check, in no reader's query
CHECK = b"to_regclass('_migrations')"


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"solo": {"provider": "openai", "endpoint": "http://127.0.0.1:9", "model": "x"}},
        "agents": {"a": {"primary": "solo"}}, "default_agent": "a",
        "log": {"path": str(tmp_path / "spool.sqlite3"), "url": url}}))
    return config


def _child(config: Path, *command: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, "-c", CHILD, str(BOUND), *command, "--config", str(config)],
                              capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`modelyard {command[0]}` still waits on the lost connection") from None


def _listed_from_own_rows(out: subprocess.CompletedProcess[str], why: str) -> None:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    assert "solo" in out.stdout and "available" in out.stdout, out.stdout  # the models, listed
    said = " ".join(out.stderr.split())
    assert "error: the shared routing log could not be read: routing log postgresql://" in said, said
    assert why in said, said
    assert "the states above come from this host's own rows" in said and "spool.sqlite3" in said, said


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FaultProxy]:
    pg.PgConnection(pg_url).close()  # the log's tables, made before anything goes through the proxy
    with FaultProxy(5432) as proxy:
        yield proxy


def test_models_lists_from_own_rows_when_the_server_ends_the_session_mid_query(tmp_path: Path, pg_url: str) -> None:
    pg.PgConnection(pg_url).close()
    config = _config(tmp_path, pg_url)
    # two sessions: one holds the lock, one watches (pg_stat_activity stays one snapshot within a transaction)
    with psycopg.connect(pg_url, autocommit=True) as locker, psycopg.connect(pg_url, autocommit=True) as watcher:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE attempts IN ACCESS EXCLUSIVE MODE")  # holds `models`' query mid-way
        child = subprocess.Popen([sys.executable, "-m", "modelyard", "models", "--no-reach", "--config", str(config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "COLUMNS": "200"})
        try:
            blocker = locker.execute("SELECT pg_backend_pid()").fetchone()
            assert blocker is not None
            ended = False
            deadline = time.monotonic() + 30
            while not ended and time.monotonic() < deadline and child.poll() is None:
                ended = bool(watcher.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (blocker[0],)).fetchall())
                time.sleep(0.05)
            assert ended, "the command's query never waited on the lock"
            stdout, stderr = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        locker.execute("ROLLBACK")
    _listed_from_own_rows(subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr),
                          "terminating connection due to administrator command")


def test_models_lists_from_own_rows_when_the_connection_goes_silent_mid_query(tmp_path: Path, pg_url: str,
                                                                              proxy: FaultProxy) -> None:
    proxy.silence_on(b"FROM attempts")
    out = _child(_config(tmp_path, _through(pg_url, proxy.port)), "models", "--no-reach")
    _listed_from_own_rows(out, f"no answer from PostgreSQL within {BOUND:g}s, the connection was cut — the network "
                               f"to 127.0.0.1:{proxy.port} drops packets")


@pytest.mark.parametrize("command", [["log"], ["stats"], ["report"]])
def test_a_silent_schema_check_ends_naming_the_server(tmp_path: Path, pg_url: str, proxy: FaultProxy,
                                                      command: list[str]) -> None:
    proxy.silence_on(CHECK)
    t0 = time.monotonic()
    out = _child(_config(tmp_path, _through(pg_url, proxy.port)), *command)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    said = " ".join(out.stderr.split())
    assert (f"connected to 127.0.0.1:{proxy.port}, but no answer to the schema check within {BOUND:g}s, the "
            "connection was cut") in said, said
    assert f"(pg_isready -h 127.0.0.1 -p {proxy.port}, a firewall)" in said, said
    assert time.monotonic() - t0 < 30


def test_models_lists_from_own_rows_when_the_schema_check_goes_silent(tmp_path: Path, pg_url: str,
                                                                      proxy: FaultProxy) -> None:
    proxy.silence_on(CHECK)
    out = _child(_config(tmp_path, _through(pg_url, proxy.port)), "models", "--no-reach")
    _listed_from_own_rows(out, f"but no answer to the schema check within {BOUND:g}s")


def test_the_forwarders_connection_is_bounded_at_its_schema_check(pg_url: str, proxy: FaultProxy,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve``'s forwarder opens its PgConnection the same way (with no read bound of its own): it hung there."""
    monkeypatch.setattr(pg, "CHECK_BOUND", BOUND, raising=False)  # raising: the old code had none
    proxy.silence_on(CHECK)
    said: list[BaseException] = []

    def connect() -> None:
        try:
            pg.PgConnection(_through(pg_url, proxy.port), application_name="modelyard-forwarder").close()
        except BaseException as exc:  # what the forwarder gets
            said.append(exc)

    opener = threading.Thread(target=connect, daemon=True)
    opener.start()
    opener.join(20)
    assert not opener.is_alive(), "the connection still waits on its silent schema check"
    assert len(said) == 1 and isinstance(said[0], LogUnavailable), said
    assert f"127.0.0.1:{proxy.port}" in str(said[0]) and "schema check" in str(said[0])
