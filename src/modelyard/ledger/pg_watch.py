"""Telling a slow PostgreSQL read from a lost one, for :class:`~modelyard.ledger.pg.PgConnection`.

A reader's statement that has no answer after ``read_bound`` seconds is either slow (``stats`` over a large log on a
busy host: 33-43 s at 300,000 rows) or waiting on a connection nothing answers any more (a firewall dropping
packets, a frozen server host) — the client cannot tell them apart from its own socket. The server can: over a NEW,
short-bounded connection, :func:`probe` asks ``pg_stat_activity`` what the reading session (its backend pid, known
from the first connection's handshake) is doing. Still ``active`` → a slow read: keep waiting, up to the ceiling.
The server unreachable, the session idle or gone → the answer will never come: cut, as before.

Behind a pooler (PgBouncer) the pid the client knows is the pooler's, not a server backend's: the probe finds no such
session and the read is cut at the bound as before this module.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import Enum

#: seconds the probe's own connection may take to open (libpq's ``connect_timeout``; it counts 2 s at least)
PROBE_CONNECT = 3
#: seconds the probe's one query may wait for its answer before its connection is cut
PROBE_BOUND = 3.0


class Verdict(Enum):
    """What the server said of the reading session."""

    WORKING = "working"  # active: running the query (or waiting on a lock, on I/O) — a slow read
    SENDING = "sending"  # active, but blocked writing the answer to this host (ClientWrite) — checked twice
    IDLE = "idle"  # finished (or never got the query): the answer is lost on the way
    GONE = "gone"  # no such session: ended, the server restarted, or a pooler in between
    UNREACHABLE = "unreachable"  # a new connection got no answer: the server (or the path to it) is frozen or down
    UNKNOWN = "unknown"  # the server would not say (no privilege to see the session's state)


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    pid: int
    #: how long the probe took, in seconds (said in the log; the report's figure)
    took: float
    detail: str = ""

    def said(self) -> str:
        """The finding, for the message that ends the read."""
        return {
            Verdict.WORKING: f"its session (pid {self.pid}) is still running the query there",
            Verdict.SENDING: (f"its session (pid {self.pid}) has been sending the answer and it does not arrive: "
                              "the path back to this host drops packets"),
            Verdict.IDLE: (f"asked over a new connection, the server says its session (pid {self.pid}) is idle: the "
                           "query finished or never arrived, and the answer is lost on the way"),
            Verdict.GONE: (f"asked over a new connection, the server has no session pid {self.pid}: it ended (a "
                           "restart, pg_terminate_backend), or a pooler stands in between"),
            Verdict.UNREACHABLE: (f"a new connection got no answer either within "
                                  f"{PROBE_CONNECT + PROBE_BOUND:g}s{self.detail}: the server or the path to it "
                                  "is frozen or down"),
            Verdict.UNKNOWN: f"the server would not say what its session (pid {self.pid}) is doing",
        }[self.verdict]


def probe(url: str, pid: int) -> Finding:
    """Ask the server, over a new connection bounded by :data:`PROBE_CONNECT` + :data:`PROBE_BOUND`, what backend
    ``pid`` is doing. Never raises: a failure to ask is :attr:`Verdict.UNREACHABLE`."""
    import psycopg

    t0 = time.monotonic()
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=PROBE_CONNECT, prepare_threshold=None,
                               application_name="modelyard-probe")
    except psycopg.Error as exc:
        return Finding(Verdict.UNREACHABLE, pid, time.monotonic() - t0, f" ({_first_line(exc)})")
    timer = threading.Timer(PROBE_BOUND, shut_down, (conn,))
    timer.daemon = True
    timer.start()
    try:
        row = conn.execute("SELECT state, wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    except psycopg.Error as exc:
        return Finding(Verdict.UNREACHABLE, pid, time.monotonic() - t0, f" ({_first_line(exc)})")
    finally:
        timer.cancel()
        conn.close()
    took = time.monotonic() - t0
    if row is None:
        return Finding(Verdict.GONE, pid, took)
    state, wait_event = row
    if state is None:
        return Finding(Verdict.UNKNOWN, pid, took)
    if state != "active":
        return Finding(Verdict.IDLE, pid, took, f" ({state})")
    if wait_event == "ClientWrite":
        return Finding(Verdict.SENDING, pid, took)
    return Finding(Verdict.WORKING, pid, took)


def shut_down(conn: object) -> None:
    """From another thread: end a call waiting on a psycopg connection's socket (shut down through a duplicate of its
    descriptor: libpq waits on a silent socket for as long as TCP keeps it)."""
    import os
    import socket

    try:
        fd = conn.pgconn.socket  # type: ignore[attr-defined]
    except Exception:  # closed meanwhile: nothing waits on it
        return
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate shuts down the same connection
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
