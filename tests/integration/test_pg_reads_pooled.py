"""A slow PostgreSQL read told from a lost one through PgBouncer (``ledger/pg_watch.py``: the statement found by its
text, not by libpq's pid).

Past the read bound the server is asked, over a new connection, whether it still runs the reader's statement. The
first version asked by the backend pid libpq learnt at the handshake; behind PgBouncer that pid is none of the
server's (the pooler answers the handshake, and in transaction pooling each transaction may run on another server
connection: https://www.pgbouncer.org/features.html, pgbouncer(1)), so the server had "no such session" and every
slow read was cut at the bound, as before the watch. Now each watched statement opens with a comment naming it, and
the probe looks for that text in ``pg_stat_activity.query`` — the text a pooler forwards untouched in every mode.

The slowness is the server's own, as in test_pg_reads_slow.py (whose throwaway server, view and helpers these
reuse): each query of the log's ``requests`` waits ``pg_sleep``. PgBouncer is a private one (``tests.pg.Bouncer``:
own temp dir, own port) in front of that throwaway server; the bound is 1 s in the child.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Literal

import psycopg
import pytest
from tests.integration.test_pg_partition import _through
from tests.integration.test_pg_reads_slow import BOUND, config, finish, server, sleeping, slow, start
from tests.pg import Bouncer, OwnServer
from tests.shared.fault_proxy import FaultProxy

from modelyard.ledger import pg
from modelyard.ledger.store import LogUnavailable

__all__ = ["server"]  # the module's throwaway PostgreSQL with the slow view (a fixture)


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_a_slow_read_through_pgbouncer_is_waited_for(tmp_path: Path, server: OwnServer,
                                                     mode: Literal["session", "transaction"]) -> None:
    """Each query of the log 2.5 s, the bound 1 s, PgBouncer between: the read answers instead of being cut."""
    slow(server, 2.5)
    with Bouncer(server.url, pool_size=4, pool_mode=mode) as bouncer:  # after slow(): its sessions sleep too
        code, out, err = finish(start(config(tmp_path, bouncer.url), "stats"))
    assert code == 0, (code, out, err)
    assert "no answer from PostgreSQL" not in err, err
    assert (f"a slow read — no answer after {BOUND:g}s, but 127.0.0.1:{bouncer.port} is still running the query"
            in err), err


def test_a_slow_read_through_pgbouncer_past_the_ceiling_is_cut_saying_it_is_slow(tmp_path: Path,
                                                                                 server: OwnServer) -> None:
    slow(server, 20)
    with Bouncer(server.url, pool_size=4) as bouncer:
        code, out, err = finish(start(config(tmp_path, bouncer.url, read_ceiling=3), "stats"))
    assert code == 1, (code, out, err)
    assert f"the query was still running on 127.0.0.1:{bouncer.port} after 3s" in err, err


def test_a_slow_read_behind_a_full_pool_asks_the_server_at_log_probe_url(tmp_path: Path, server: OwnServer) -> None:
    """PgBouncer with one server connection, the reader's: the asking through it waits for a free one (PgBouncer
    queues a client until one is, ``query_wait_timeout``: pgbouncer.ini(5),
    https://manpages.ubuntu.com/manpages/noble/man5/pgbouncer.5.html) past its 3 s. ``log.probe_url`` straight to
    the server asks there, and the slow read is waited for."""
    slow(server, 2.5)
    with Bouncer(server.url, pool_size=1) as bouncer:
        code, out, err = finish(start(config(tmp_path, bouncer.url, probe_url=server.url), "stats"))
    assert code == 0, (code, out, err)
    assert "no answer from PostgreSQL" not in err, err
    assert "is still running the query" in err, err


def test_a_slow_read_behind_a_full_pool_without_log_probe_url_is_cut(tmp_path: Path, server: OwnServer) -> None:
    """Guard (cut before the change too), for what docs/commands.md says: the asking through a pool with no free
    server connection hears nothing within its bound (3 + 3 s), and the read is cut as lost."""
    slow(server, 10)
    with Bouncer(server.url, pool_size=1) as bouncer:
        code, out, err = finish(start(config(tmp_path, bouncer.url), "stats"))
    assert code == 1, (code, out, err)
    assert "a new connection got no answer either" in err, err


def test_pgbouncer_frozen_mid_slow_read_is_cut(tmp_path: Path, server: OwnServer) -> None:
    """Guard (passed before the change too): the pooler frozen (SIGSTOP, a host paused) while the server runs the
    read — the probe's new connection through it hears nothing, so the read is not waited for."""
    slow(server, 30)
    with Bouncer(server.url, pool_size=4) as bouncer:
        t0 = time.monotonic()
        child = start(config(tmp_path, bouncer.url), "stats")
        sleeping(server)
        os.kill(bouncer.proc.pid, signal.SIGSTOP)
        try:
            code, out, err = finish(child)
        finally:
            os.kill(bouncer.proc.pid, signal.SIGCONT)
    assert code == 1, (code, out, err)
    assert f"the network to 127.0.0.1:{bouncer.port} drops packets, or the server is frozen" in err, err
    assert "a new connection got no answer either" in err, err
    assert time.monotonic() - t0 < 25


#: about 400 MB of answer: far more than the buffers between server and client hold
LARGE = "SELECT repeat('x', 2000) FROM generate_series(1, 200000)"


@pytest.mark.parametrize("pooled", [False, True], ids=["direct", "pgbouncer"])
def test_an_answer_the_path_stops_taking_is_cut_after_two_client_writes(server: OwnServer, pooled: bool) -> None:
    """The rule "ClientWrite twice in a row → cut", untested until now: the server has the answer but cannot send it
    (the path back stopped taking bytes: :meth:`FaultProxy.stall_after`, so its send buffer fills and it blocks in
    ``ClientWrite``). The first probe waits on (a large answer on a slow link), the second cuts, saying so. Direct,
    a guard: it passed before the change. Through PgBouncer it failed: the pid found nothing, and the cut said so."""
    slow(server, 0)
    with Bouncer(server.url, pool_size=4) as bouncer:
        upstream = bouncer.port if pooled else server.port
        with FaultProxy(upstream) as proxy:
            proxy.stall_after(1 << 20)
            conn = pg.PgConnection(_through(bouncer.url if pooled else server.url, proxy.port),
                                   migrate_schema=False, read_bound=BOUND, read_ceiling=60)
            t0 = time.monotonic()
            with pytest.raises(LogUnavailable) as caught:
                conn.execute(LARGE)
            took = time.monotonic() - t0
            conn.close()
    message = str(caught.value)
    assert f"no answer from PostgreSQL within {BOUND:g}s, the connection was cut" in message, message
    assert "has been sending the answer and it does not arrive" in message, message
    assert 2 * BOUND <= took < 15, took
    with psycopg.connect(server.url, autocommit=True) as admin:  # the blocked backend ends with the path
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'ClientWrite'").fetchone():
            assert time.monotonic() < deadline, "a backend still blocks writing the cut answer"
            time.sleep(0.1)
