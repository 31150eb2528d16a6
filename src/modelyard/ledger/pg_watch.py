"""Telling a slow PostgreSQL read from a lost one, for :class:`~modelyard.ledger.pg.PgConnection`.

A reader's statement that has no answer after ``read_bound`` seconds is either slow (``stats`` over a large log on a
busy host: 33-43 s at 300,000 rows) or waiting on a connection nothing answers any more (a firewall dropping
packets, a frozen server host) — the client cannot tell them apart from its own socket. The server can: over a NEW,
short-bounded connection, :func:`probe` asks ``pg_stat_activity`` what the session running the statement is doing.
Still ``active`` → a slow read: keep waiting, up to the ceiling. The server unreachable, the session idle or gone →
the answer will never come: cut, as before.

The session is found by the statement's own text, not by the backend pid libpq learnt at the handshake: each watched
statement opens with a comment naming it (:func:`tag`), and ``pg_stat_activity.query`` is the text the server is
running or ran last. Behind PgBouncer the pid the client knows is none of the server's (the pooler answers the
handshake itself), and in transaction pooling each transaction may run on another server connection — the pid found
no session, and every slow read was cut at the bound. A comment is forwarded untouched by any pooler in every pool
mode (PgBouncer's session, transaction and statement pooling: https://www.pgbouncer.org/features.html; the Debian
man page pgbouncer(1)); ``application_name`` was the other candidate, but it reaches the server connection only as
the pooler tracks it (PgBouncer 1.18 here) and ``application_name_add_host`` rewrites it
(https://manpages.ubuntu.com/manpages/noble/man5/pgbouncer.5.html), so an exact match breaks on a common setting.
The pid is still asked for: a session the role may not look into (``<insufficient privilege>``) is said as such.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from enum import Enum

from modelyard.config import dburl

#: seconds the probe's own connection may take to open (libpq's ``connect_timeout``; it counts 2 s at least)
PROBE_CONNECT = 3
#: seconds the probe's one query may wait for its answer before its connection is cut
PROBE_BOUND = 3.0


class Verdict(Enum):
    """What the server said of the reading session."""

    WORKING = "working"  # active: running the query (or waiting on a lock, on I/O) — a slow read
    SENDING = "sending"  # active, but blocked writing the answer to this host (ClientWrite) — checked twice
    IDLE = "idle"  # finished (or never got the query): the answer is lost on the way
    GONE = "gone"  # no session runs it: ended, the server restarted, or it never arrived
    UNREACHABLE = "unreachable"  # a new connection got no answer: the server (or the path to it) is frozen or down
    DOWN = "down"  # a new connection was refused, or closed by the server at once: it is stopped or restarting
    REFUSED = "refused"  # the server answered a new connection with a refusal (too many connections…): up, not asked
    UNKNOWN = "unknown"  # the server would not say (no privilege to see the session's state)


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    pid: int
    #: how long the probe took, in seconds (said in the log; the report's figure)
    took: float
    detail: str = ""
    #: what the session waits on (pg_stat_activity.wait_event: ``SyncRep``, ``relation``, ``ClientRead``…), if anything
    wait_event: str = ""

    def said(self) -> str:
        """The finding, for the message that ends the read."""
        return {
            Verdict.WORKING: f"its session (pid {self.pid}) is still running the query there",
            Verdict.SENDING: (f"its session (pid {self.pid}) has been sending the answer and it does not arrive: "
                              "the path back to this host drops packets"),
            Verdict.IDLE: (f"asked over a new connection, the server says its session (pid {self.pid}) is idle: the "
                           "query finished or never arrived, and the answer is lost on the way"),
            Verdict.GONE: ("asked over a new connection, the server has no session running the query: it ended (a "
                           "restart, pg_terminate_backend), or the query never arrived"),
            Verdict.UNREACHABLE: (f"a new connection got no answer either within "
                                  f"{PROBE_CONNECT + PROBE_BOUND:g}s{self.detail}: the server or the path to it "
                                  "is frozen or down"),
            Verdict.DOWN: f"a new connection was refused or closed at once{self.detail}",
            Verdict.REFUSED: (f"the server refused a new connection{self.detail}: it is up, but could not be asked "
                              "whether the query still runs"),
            Verdict.UNKNOWN: f"the server would not say what its session (pid {self.pid}) is doing",
        }[self.verdict]


#: how a watched statement's comment opens (:func:`tag`); what follows is unique to the statement
MARK = "modelyard-read "


def tag(connection: str, statement: int) -> str:
    """The comment a watched statement opens with: ``connection`` (random, per connection) and ``statement`` (its
    count) make it unique on the server. Hex and digits only: nothing in it can end the comment or be a placeholder."""
    return f"/* {MARK}{connection}-{statement} */ "


#: a text no query holds (random per process): the probe of an untagged statement finds its session by pid alone
_NO_MARK = f"{MARK}untagged-{os.urandom(8).hex()}"


def probe(url: str, pid: int, mark: str | None) -> Finding:
    """Ask the server, over a new connection bounded by :data:`PROBE_CONNECT` + :data:`PROBE_BOUND`, what the
    session whose query holds ``mark`` (the statement's :func:`tag`) is doing — or, none holding it, backend ``pid``
    (libpq's; behind a pooler none of the server's). Never raises: a failure to ask is :attr:`Verdict.DOWN` when the
    server refused or closed the new connection (:func:`down`), :attr:`Verdict.REFUSED` when it answered it with a
    refusal (:func:`refused`), :attr:`Verdict.UNREACHABLE` otherwise.
    ``mark`` None: backend ``pid`` alone is asked about (a statement that carries no tag: the forwarder's).

    The mark is a bound parameter: the probe's own text (``$1``) never holds it."""
    import psycopg

    t0 = time.monotonic()
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=PROBE_CONNECT, prepare_threshold=None,
                               application_name="modelyard-probe", client_encoding="UTF8")  # as PgConnection's
    except psycopg.Error as exc:
        return _failed(exc, url, pid, t0, bounded=False)
    bounded = threading.Event()  # the bound shut the query's socket: libpq says 'server closed' of our own cut

    def bound() -> None:
        bounded.set()
        shut_down(conn)

    timer = threading.Timer(PROBE_BOUND, bound)
    timer.daemon = True
    timer.start()
    try:
        row = conn.execute(
            "SELECT pid, state, wait_event, strpos(query, %(mark)s) > 0 AS ours FROM pg_stat_activity "
            "WHERE (strpos(query, %(mark)s) > 0 OR pid = %(pid)s) AND pid <> pg_backend_pid() "
            "ORDER BY ours DESC LIMIT 1", {"mark": mark.strip() if mark else _NO_MARK, "pid": pid}).fetchone()
    except psycopg.Error as exc:
        return _failed(exc, url, pid, t0, bounded=bounded.is_set())
    finally:
        timer.cancel()
        conn.close()
    took = time.monotonic() - t0
    if row is None:
        return Finding(Verdict.GONE, pid, took)
    pid, state, wait_event, ours = row
    ours = ours if mark else True
    if state is None:  # a session of another role: its query and state are hidden
        return Finding(Verdict.UNKNOWN, pid, took)
    if not ours:  # libpq's pid, running something else (or nothing): the statement never arrived there
        return Finding(Verdict.IDLE if state != "active" else Verdict.GONE, pid, took, f" ({state})")
    if state != "active":
        return Finding(Verdict.IDLE, pid, took, f" ({state})")
    if wait_event == "ClientWrite":
        return Finding(Verdict.SENDING, pid, took)
    return Finding(Verdict.WORKING, pid, took, wait_event=wait_event or "")


#: SQLSTATEs of a server that is stopping or starting: admin_shutdown ('terminating connection due to administrator
#: command', a fast stop), crash_shutdown, cannot_connect_now ('the database system is shutting down' / 'is starting
#: up'): PostgreSQL's errcodes.txt, Class 57 — Operator Intervention
_STOPPING = frozenset({"57P01", "57P02", "57P03"})
#: what libpq says when the server's end of a new connection is closed, or nothing listens there (fe-misc.c,
#: fe-connect.c); said by the server, not a silence — 'connection timeout expired' is libpq's only word for that
_CLOSED = ("server closed the connection unexpectedly", "Connection refused", "No such file or directory",
           # the server's own words for a stop or start under way (libpq gives a failed connection no SQLSTATE)
           "the database system is shutting down", "the database system is starting up",
           "terminating connection due to administrator command")
#: libpq's words before a message the server sent in answer to a new connection (a refusal: 'too many connections
#: for role', 'sorry, too many clients already', 'role … does not exist'; PgBouncer's 'no more connections allowed')
_ANSWERED = ("failed: FATAL:", "failed: ERROR:")


def refused(exc: BaseException) -> bool:
    """The server answered the new connection with a message (asked after :func:`down`, whose stop and start words
    are such messages too): it is up and reachable, refusing it — said as 'no answer within 6s … frozen or down', a
    server at max_connections sent the user after a firewall."""
    return any(word in str(exc) for word in _ANSWERED)


def down(exc: BaseException) -> bool:
    """The new connection was refused, or the server closed it at once: the server is stopped or restarting. A
    ``pg_ctl stop -m immediate`` mid-read races the probe: its new connection fails 'server closed the connection
    unexpectedly' (while connecting, or on its one query) — said as 'no answer within 6s … frozen' it sent the user
    after a firewall for a server that is down."""
    if getattr(exc, "sqlstate", None) in _STOPPING:
        return True
    return getattr(exc, "sqlstate", None) is None and any(word in str(exc) for word in _CLOSED)


def _failed(exc: BaseException, url: str, pid: int, t0: float, *, bounded: bool) -> Finding:
    """What a failure to ask says: unreachable when :data:`PROBE_BOUND` shut the socket (libpq's 'closed' is then our
    own cut of a silent one); else the server down (:func:`down`), refusing it (:func:`refused`), or unreachable."""
    if bounded:
        verdict = Verdict.UNREACHABLE
    elif down(exc):
        verdict = Verdict.DOWN
    elif refused(exc):
        verdict = Verdict.REFUSED
    else:
        verdict = Verdict.UNREACHABLE
    return Finding(verdict, pid, time.monotonic() - t0, f" ({dburl.scrub(_first_line(exc), url)})")


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
