"""A slow read of the PostgreSQL routing log told from a lost one (``ledger/pg.py``, ``ledger/pg_watch.py``).

``pg.READ_BOUND`` was a wall clock: a healthy read past it was cut and said as "the network drops packets, or the
server is frozen" — and ``stats`` over 300,000 rows takes 33-43 s on a loaded host (README), so a bigger log or a
busier host was told its server was frozen. Now, past the bound, the server is asked over a new connection what the
reading session is doing (``pg_stat_activity``: ``state`` ``active`` runs a query; ``wait_event`` ``ClientWrite``
is "waiting to write data to the client" — PostgreSQL's monitoring docs, doc/src/sgml/monitoring.sgml,
https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW). Still running: a
slow read, waited for up to ``log.read_ceiling``. Not reachable, idle, gone: cut as before, saying what was found.

The slowness is the server's own: the log's ``requests`` made a view whose rows wait ``pg_sleep`` seconds (a setting
of the test's database), so every reader's query of it runs that long on the real server. All on a throwaway
PostgreSQL of the test's own (``tests.pg.OwnServer``: frozen with SIGSTOP, stopped mid-read), never the shared one;
the silent path is :mod:`tests.shared.fault_proxy`'s (the ``iptables … -j DROP`` shape of netdata/netdata#4988,
psycopg/psycopg2#561 "If the connection is lost in the middle of a query, it will never detect it"). The bound is
made 1 s through ``pg.READ_BOUND`` in the child (as test_pg_reads_silent.py does), the ceiling through the config.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from tests.integration.test_pg_partition import _through
from tests.integration.test_pg_reads_silent import CHILD, QUERY
from tests.pg import ADMIN_URL, OwnServer
from tests.shared.fault_proxy import FaultProxy

from modelyard.ledger import pg, pg_watch

BOUND = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[OwnServer]:
    own = OwnServer()
    try:
        pg.PgConnection(own.url).close()  # the log's tables
        with psycopg.connect(own.url, autocommit=True) as conn:
            conn.execute("ALTER TABLE requests RENAME TO requests_rows")
            conn.execute("CREATE VIEW requests AS SELECT * FROM requests_rows WHERE "
                         "(SELECT true FROM pg_sleep(current_setting('slow.seconds')::float))")
        yield own
    finally:
        own.close()


def slow(server: OwnServer, seconds: float) -> None:
    """Each query of ``requests`` on a session opened from now on runs ``seconds`` on the server."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE postgres SET slow.seconds = '{seconds:g}'")
        # an earlier test's query the server still runs (a client cut off is not noticed until the answer is sent)
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")


def config(directory: Path, url: str, **log: object) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
        "agents": {"a": {"primary": "m"}}, "default_agent": "a",
        "log": {"path": str(directory / "spool.sqlite3"), "url": url, **log}}))
    return path


def start(path: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(BOUND), *command, "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})


def finish(child: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise AssertionError("the command still waits") from None
    return child.returncode, out, " ".join(err.split())


def sleeping(server: OwnServer) -> None:
    """Wait until a reader's query sleeps on the server (the only pg_sleep on this server is the view's)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(server.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchone():
                return
            time.sleep(0.05)
    raise AssertionError("no reader's query ever reached the server")


def test_a_slow_read_is_waited_for_and_answers(tmp_path: Path, server: OwnServer) -> None:
    """The reviewer's case: a healthy read longer than the bound (each query of the log 2.5 s, the bound 1 s)."""
    slow(server, 2.5)
    code, out, err = finish(start(config(tmp_path, server.url), "stats"))
    assert code == 0, (code, out, err)
    assert "no answer from PostgreSQL" not in err, err
    assert (f"a slow read — no answer after {BOUND:g}s, but 127.0.0.1:{server.port} is still running the query"
            in err), err


def test_a_read_past_the_ceiling_is_cut_saying_it_is_slow(tmp_path: Path, server: OwnServer) -> None:
    slow(server, 20)
    t0 = time.monotonic()
    code, out, err = finish(start(config(tmp_path, server.url, read_ceiling=3), "stats"))
    assert code == 1, (code, out, err)
    assert "Traceback" not in err, err
    assert f"the query was still running on 127.0.0.1:{server.port} after 3s" in err, err
    assert "the server is slow, not down" in err and "raise log.read_ceiling" in err, err
    assert time.monotonic() - t0 < 15
    with psycopg.connect(server.url, autocommit=True) as conn:  # cancelled there too: no one waits for it
        deadline = time.monotonic() + 3  # the server acts on a cancel request a moment after it took it
        while conn.execute("SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'").fetchall():
            assert time.monotonic() < deadline, "the server still runs the query cut at the ceiling"
            time.sleep(0.05)


def test_a_query_lost_on_the_way_is_cut_saying_the_session_is_idle(tmp_path: Path, server: OwnServer) -> None:
    """The path drops the query itself: the server's session never got it, and says so (idle)."""
    slow(server, 0)
    with FaultProxy(server.port) as proxy:
        proxy.silence_on(QUERY)
        code, out, err = finish(start(config(tmp_path, _through(server.url, proxy.port)), "stats"))
    assert code == 1, (code, out, err)
    assert f"no answer from PostgreSQL within {BOUND:g}s, the connection was cut" in err, err
    assert "the server says its session (pid" in err and "is idle" in err, err


def test_a_path_partitioned_mid_slow_read_is_cut(tmp_path: Path, server: OwnServer) -> None:
    """The server runs the query, but this host is cut off (a firewall dropping packets both ways): the probe's new
    connection hears nothing either, so the slow read is not waited for."""
    slow(server, 30)
    with FaultProxy(server.port) as proxy:
        t0 = time.monotonic()
        child = start(config(tmp_path, _through(server.url, proxy.port)), "stats")
        sleeping(server)
        proxy.partition()
        code, out, err = finish(child)
    assert code == 1, (code, out, err)
    assert f"the network to 127.0.0.1:{proxy.port} drops packets" in err, err
    assert "a new connection got no answer either" in err, err
    assert time.monotonic() - t0 < 25


def _processes(server: OwnServer) -> list[int]:
    """The server's postmaster and every process it started."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True)
    return [postmaster, *(int(p) for p in children.stdout.split())]


def test_a_server_frozen_mid_read_is_cut(tmp_path: Path, server: OwnServer) -> None:
    """The server's host frozen (every process stopped, as a VM paused): the probe cannot get an answer."""
    slow(server, 30)
    child = start(config(tmp_path, server.url), "stats")
    sleeping(server)
    frozen = _processes(server)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        code, out, err = finish(child)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert code == 1, (code, out, err)
    assert f"the network to 127.0.0.1:{server.port} drops packets, or the server is frozen" in err, err
    assert "a new connection got no answer either" in err, err


def test_a_server_stopped_mid_slow_read_ends_it_at_once(tmp_path: Path, server: OwnServer) -> None:
    """The server stopped (``pg_ctl stop -m immediate``) while a slow read runs past the bound: the read ends then,
    saying the server closed the connection — not later, and not 'no answer within'."""
    slow(server, 30)
    child = start(config(tmp_path, server.url), "stats")
    sleeping(server)
    time.sleep(BOUND + 1)  # past the bound: the server has said once that it still runs the query
    assert child.poll() is None, finish(child)
    err = stopped_mid_read(server, child)
    assert f"routing log postgresql://postgres@127.0.0.1:{server.port}/postgres" in err, err
    assert "server closed the connection" in err, err  # the reader's own (libpq's words) or the watch's (down)


def stopped_mid_read(server: OwnServer, child: subprocess.Popen[str]) -> str:
    """Stop the server at once (``pg_ctl stop -m immediate``), and start it again once the read ended: it ended
    failing, within 10 s (not the 30 s its query had left), never saying 'no answer'; what it said."""
    stopped = time.monotonic()
    server.stop("immediate")
    try:
        code, out, err = finish(child)
        ended = time.monotonic() - stopped
    finally:
        server.start()
    assert code == 1, (code, out, err)
    assert "Traceback" not in err, err
    assert "no answer from PostgreSQL" not in err and "no answer either" not in err, err
    assert ended < 10, ended
    return err


def test_a_server_stopped_as_the_probe_connects_is_said_down(tmp_path: Path, server: OwnServer) -> None:
    """The race the clean-clone CI lost (2 cores, loaded): the server stopped mid slow read, and the watch's next new
    connection met the stopped server before the reader noticed its own connection closed — "server closed the
    connection unexpectedly" was said as "no answer from PostgreSQL within 1s … a new connection got no answer either
    within 6s … frozen". Forced here: the reader's connection is silenced first (the server's close of it never
    arrives, as for a reader not yet scheduled), then the server stopped; the probe's new connection, through the
    proxy, is closed at once (the upstream refused). The read ends saying the server closed the connection / is down."""
    slow(server, 30)
    with FaultProxy(server.port) as proxy:
        child = start(config(tmp_path, _through(server.url, proxy.port)), "stats")
        sleeping(server)
        reading, carried = proxy.connections, proxy.open
        deadline = time.monotonic() + 20
        # the watch's first probe made and closed (the server said it still runs the query): silenced mid-way, the
        # probe's own bound would cut it
        while proxy.connections == reading or proxy.open > carried:
            assert time.monotonic() < deadline and child.poll() is None, "the read was never asked about"
            time.sleep(0.05)
        proxy.silence_open()
        err = stopped_mid_read(server, child)
    assert f"the server closed the connection — 127.0.0.1:{proxy.port} is down or restarting" in err, err
    assert "server closed the connection unexpectedly" in err, err  # libpq's words, on the new connection


def test_the_probe_says_a_refused_connection_is_down() -> None:
    """Nothing listening (a server stopped): refused at once — down, not 'no answer within 6s'."""
    from tests.pg import free_port

    finding = pg_watch.probe(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", 1, None)
    assert finding.verdict is pg_watch.Verdict.DOWN, finding
    assert "Connection refused" in finding.said() and "no answer" not in finding.said(), finding.said()
    assert finding.took < 2, finding


def test_the_probes_own_bound_is_no_server_closing() -> None:
    """Guard (unreachable before the change too): the probe's query unanswered, its bound shuts the socket, and
    libpq says 'server closed the connection' of that cut — still no answer, not a server that is down."""
    pg.PgConnection(ADMIN_URL).close()
    with FaultProxy(5432) as proxy:
        proxy.silence_on(b"pg_stat_activity")
        finding = pg_watch.probe(_through(ADMIN_URL, proxy.port), 1, None)
    assert finding.verdict is pg_watch.Verdict.UNREACHABLE, finding
    assert pg_watch.PROBE_BOUND <= finding.took < pg_watch.PROBE_BOUND + 3, finding


def test_a_slow_read_whose_probe_is_refused_is_said_refused_not_unanswered(tmp_path: Path, server: OwnServer) -> None:
    """The asking connection refused by the server (its role at its CONNECTION LIMIT — the FATAL 'too many connections
    for role' PostgreSQL sends, as 'sorry, too many clients already' at max_connections: errcodes.txt 53300): the
    server answered, it is up. It was said 'a new connection got no answer either within 6s … frozen or down' and 'the
    network drops packets' — the user sent after a firewall for a server that is only full."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS probe_full")
        conn.execute("CREATE ROLE probe_full LOGIN CONNECTION LIMIT 0")
    slow(server, 10)
    full = server.url.replace("postgres@", "probe_full@", 1)
    code, out, err = finish(start(config(tmp_path, server.url, probe_url=full), "stats"))
    assert code == 1, (code, out, err)
    assert "Traceback" not in err, err
    assert "got no answer either" not in err and "drops packets" not in err, err
    assert (f"127.0.0.1:{server.port} is up, but refused the new connection that asks whether the query still runs"
            in err), err
    assert 'too many connections for role "probe_full"' in err and "log.probe_url" in err, err


def test_the_probe_says_a_server_refusing_it_is_up() -> None:
    """The probe alone, on the shared server: a role that does not exist is refused at once, by the server — up."""
    finding = pg_watch.probe("postgresql://no_such_probe_role@127.0.0.1:5432/postgres", 1, None)
    assert finding.verdict is pg_watch.Verdict.REFUSED, finding
    assert 'role "no_such_probe_role" does not exist' in finding.said(), finding.said()
    assert "it is up" in finding.said() and "no answer" not in finding.said(), finding.said()
