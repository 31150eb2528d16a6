"""``log.keep_days``: requests older than that leave the local SQLite file, in small batches, once an hour.

Without it nothing is ever deleted: every request adds a row to ``requests`` (its prompt and answer text when
``log.store_text`` is on, most of its bytes), one to ``attempts`` per model tried, and with ``model: auto`` one
to ``routing_decisions``. What goes with a request: its attempts and its Telegram message links; routing
decisions by their own time. What stays: a request still waiting for PostgreSQL (in ``_outbox``: with
``log.url`` the file is the spool, and nothing unsent is dropped), conversations (``telegram.history_tokens``
bounds them already), routing labels (corrections carry their own text), probes and bench runs (made by hand).

SQLite reuses the pages deleted rows free: the file stops growing at about ``keep_days`` of traffic but does
not shrink by itself (``sqlite3 FILE 'VACUUM'`` with modelyard stopped gives the space back at once).

With ``log.url`` the PostgreSQL log is pruned by the same rule in the same pass (:func:`prune_pg`): requests
older than ``keep_days`` with their attempts; routing labels and learn runs stay. It is every host's log, and
every host with ``keep_days`` prunes it — at once, too: each batch locks the rows it deletes with ``FOR UPDATE
SKIP LOCKED``, so two hosts take different rows rather than wait on each other, and a row a forwarder is writing
(locked by its upsert) is left for the next pass. Hosts with different ``keep_days`` keep the shortest.

Each batch is one short write transaction on a connection of its own (the writer thread's commits wait
through the busy timeout meanwhile, a few milliseconds), with a pause between batches, so a first pass over a
year of rows does not hold the log for long at a time. Only a long-running process prunes: the first pass
starts :data:`FIRST_AFTER` seconds after the writer opens, so a one-shot ``ask`` never does.

A wrong clock never deletes a row (Yuzu#2360/#2361: a wall-clock cutoff emptied a whole retention window at a dead
CMOS battery, a restored VM snapshot, a boot before NTP). A pass's "now" is the wall clock, but never later than the
newest request in the file when the writer opened it plus the time since on the boot clock (which nobody sets): a
clock stepped a year forward deleted every request, now none. And a pass deletes only requests (and decisions)
written before the first one it keeps: rows a host stamped while its clock was set back (1970 before NTP, a
fake-hwclock's old date) are older than ``keep_days`` by their stamp once the clock is right, and were deleted at the
next pass; they stay until the rows written before them age out. Both only delay a deletion: after a pause of D days
before the writer opened, requests go D days later than ``keep_days`` says, until the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard.ledger.db import connect_readonly

log = logging.getLogger(__name__)

#: seconds between two passes
EVERY = 3600.0
#: seconds from the writer's start to the first pass
FIRST_AFTER = 60.0
#: requests deleted per transaction, and the pause between two (the writer gets the file in between)
BATCH = 200
PAUSE = 0.05
#: how long a PostgreSQL batch waits for a lock another session holds on a table (not on a row: those are skipped)
LOCK_TIMEOUT = 10.0

_OLD = ("SELECT id FROM requests WHERE ts < ? AND rowid < ? AND id NOT IN (SELECT request_id FROM _outbox) "
        "ORDER BY ts LIMIT ?")
#: the first row (in the order written) a pass keeps, or one past the last: nothing written after it is deleted
_KEPT_FROM = ("SELECT COALESCE((SELECT MIN(rowid) FROM {table} WHERE ts >= ?), "
              "(SELECT COALESCE(MAX(rowid), 0) + 1 FROM {table}))")
#: seconds by which the wall clock may be ahead of the pass's "now" before that is said (module docstring)
CLOCK_SAID_AFTER = 3600.0


def boot_clock() -> float:
    """Seconds on a clock nobody sets: Linux's time since boot (suspend included), else the monotonic clock (which
    stops while a Mac sleeps: a pass's "now" then lags, never leads)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()
#: requests deleted per PostgreSQL transaction (no writer shares a connection with it: larger than SQLite's)
PG_BATCH = 1000
#: the rows no other session holds: another host's pruner, or a forwarder re-sending a rated row, keeps its own
_PG_OLD = "SELECT id FROM requests WHERE ts < ? ORDER BY ts LIMIT ? FOR UPDATE SKIP LOCKED"


def _in_batches(conn: Any, begin: str, batch: Callable[[], tuple[int, bool]], *, warm: Callable[[], None] | None,
                pause: float, stop: threading.Event | None) -> int:
    """Run ``batch`` (requests deleted, whether more are left) in a transaction of its own (``begin`` opens it) until
    it says nothing is left, ``warm`` before each, outside the transaction, ``pause`` between; the total deleted."""
    gone = 0
    while stop is None or not stop.is_set():
        if warm is not None:
            warm()
        conn.execute(begin)
        try:
            deleted, more = batch()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        gone += deleted
        if not more:
            break
        if pause:
            time.sleep(pause)
    return gone


def prune(conn: sqlite3.Connection, before: float, *, batch: int = BATCH, pause: float = 0.0,
          stop: threading.Event | None = None) -> int:
    """Delete the requests older than ``before`` (epoch seconds) that PostgreSQL is not waiting for, with their
    attempts and message links, and routing decisions older than ``before``; how many requests went. Only rows
    written before the first one kept (module docstring: a clock set back stamps later rows as old)."""
    kept_from = conn.execute(_KEPT_FROM.format(table="requests"), (before,)).fetchone()[0]
    decisions_from = conn.execute(_KEPT_FROM.format(table="routing_decisions"), (before,)).fetchone()[0]

    def warm() -> None:
        # read the batch's pages first, outside the write lock: deleting a row reads every page of its texts to free
        # it, and an old row's are rarely cached. Measured at load 13-15 on 300,000 rows of 3 KB text: 1,000 rows a
        # batch held the lock up to 1.97 s read under it, 0.94 s read before; 200 read before, 0.22 s
        ids = [row[0] for row in conn.execute(_OLD, (before, kept_from, batch))]
        if ids:
            marks = ", ".join("?" * len(ids))
            conn.execute(f"SELECT length(prompt), length(response), length(thinking) FROM requests "
                         f"WHERE id IN ({marks})", ids).fetchall()
            conn.execute(f"SELECT count(*) FROM attempts WHERE request_id IN ({marks})", ids).fetchall()

    def one() -> tuple[int, bool]:
        ids = [row[0] for row in conn.execute(_OLD, (before, kept_from, batch))]
        if ids:
            marks = ", ".join("?" * len(ids))
            conn.execute(f"DELETE FROM attempts WHERE request_id IN ({marks})", ids)
            conn.execute(f"DELETE FROM message_requests WHERE request_id IN ({marks})", ids)
            conn.execute(f"DELETE FROM requests WHERE id IN ({marks})", ids)
        decisions = conn.execute("DELETE FROM routing_decisions WHERE rowid IN (SELECT rowid FROM "
                                 "routing_decisions WHERE ts < ? AND rowid < ? LIMIT ?)",
                                 (before, decisions_from, batch)).rowcount
        return len(ids), len(ids) == batch or decisions == batch

    return _in_batches(conn, "BEGIN IMMEDIATE", one, warm=warm, pause=pause, stop=stop)


def prune_pg(conn: Any, before: float, *, batch: int = PG_BATCH, pause: float = 0.0,
             stop: threading.Event | None = None) -> int:
    """Delete the requests older than ``before`` from the PostgreSQL log (a :class:`~modelyard.ledger.pg.PgConnection`)
    with their attempts, a batch a transaction; how many requests went. Safe beside other hosts doing the same."""

    def one() -> tuple[int, bool]:
        ids = [row[0] for row in conn.execute(_PG_OLD, (before, batch)).fetchall()]
        if ids:
            conn.execute("DELETE FROM attempts WHERE request_id = ANY(?)", (ids,))
            conn.execute("DELETE FROM requests WHERE id = ANY(?)", (ids,))
        return len(ids), len(ids) == batch

    return _in_batches(conn, "BEGIN", one, warm=None, pause=pause, stop=stop)


class Pruner:
    """The thread that runs :func:`prune` every :data:`EVERY` seconds for ``keep_days``."""

    def __init__(self, path: Path, keep_days: float, *, first_after: float = FIRST_AFTER, every: float = EVERY,
                 url: str | None = None):
        self.path, self.keep_days, self.first_after, self.every = path, keep_days, first_after, every
        #: ``log.url``: the PostgreSQL log, pruned in the same pass
        self.url = url
        #: requests deleted so far (from the file; from PostgreSQL), and the last pass's failure (None: it went through)
        self.pruned = 0
        self.pruned_pg = 0
        self.last_error: str | None = None
        #: passes run, whether they went through or not
        self.passes = 0
        #: (log time, wall clock, boot clock) a pass's "now" counts from, taken before this process wrote a row
        wall = time.time()
        self._anchor = (self._newest() or wall, wall, boot_clock())
        self._clock_said = False
        #: old requests waiting in an outbox nobody forwards were said (:meth:`_say_unforwarded`)
        self._unforwarded_said = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelyard-log-retention", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            wait = self.every
            self.run_once()

    def run_once(self) -> int:
        """One pass: the file, then PostgreSQL (with ``log.url``); how many requests left the file."""
        before = self.now() - self.keep_days * 86400
        gone = self._run_file(before)
        if self.url is not None and not self._stop.is_set():
            self._run_pg(before)
        self.passes += 1
        return gone

    def _newest(self) -> float | None:
        """The newest request's time in the file (None: none, or it cannot be read)."""
        with contextlib.suppress(sqlite3.Error):
            conn = connect_readonly(self.path, timeout=10.0)
            try:
                newest = conn.execute("SELECT MAX(ts) FROM requests").fetchone()[0]
                return float(newest) if newest is not None else None
            finally:
                conn.close()
        return None

    def now(self) -> float:
        """The time a pass deletes by: the wall clock, never later than the newest request when the writer opened
        plus the boot clock's time since (module docstring)."""
        wall, boot = time.time(), boot_clock()
        anchor, wall_then, boot_then = self._anchor
        trusted = anchor + (boot - boot_then)
        stepped = (wall - wall_then) - (boot - boot_then)
        if stepped > CLOCK_SAID_AFTER and not self._clock_said:
            self._clock_said = True
            log.warning("routing log %s: this host's clock stepped %.1f h forward while modelyard ran: log.keep_days "
                        "keeps counting from the time before the step (deleting by the clock would take every request "
                        "of the last %g days) — set the clock (timedatectl set-ntp true, or your NTP client)",
                        self.path, stepped / 3600, self.keep_days)
        elif wall - trusted > CLOCK_SAID_AFTER and not self._clock_said:
            self._clock_said = True
            log.info("routing log %s: log.keep_days counts from the newest request when modelyard opened the log "
                     "(%.1f h before this host's clock then), not from the clock", self.path,
                     (wall_then - anchor) / 3600)
        return min(wall, trusted)

    def _run_pg(self, before: float) -> None:
        from modelyard.ledger.pg import PgConnection
        from modelyard.ledger.store import LogUnavailable

        try:
            conn = PgConnection(self.url or "", migrate_schema=False, application_name="modelyard-retention",
                                lock_timeout=LOCK_TIMEOUT)
        except LogUnavailable as exc:
            self.last_error = str(exc)
            log.warning("%s; requests older than %g days are deleted on the next pass, in %.0f s", exc,
                        self.keep_days, self.every)
            return
        try:
            gone = prune_pg(conn, before, pause=PAUSE, stop=self._stop)
        except Exception as exc:  # psycopg's errors, LogUnavailable: said, and tried again next pass
            self.last_error = conn.describe(exc) if not isinstance(exc, LogUnavailable) else str(exc)
            log.warning("%s (deleting requests older than %g days); tried again in %.0f s", self.last_error,
                        self.keep_days, self.every)
            return
        finally:
            conn.close()
        self.pruned_pg += gone
        if gone:
            log.info("routing log %s: deleted %d request(s) older than %g days (log.keep_days)", conn.where, gone,
                     self.keep_days)

    def _run_file(self, before: float) -> int:
        try:
            conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("routing log %s: could not open it to delete old requests (%s); tried again in %.0f s",
                        self.path, exc, self.every)
            return 0
        try:
            gone = prune(conn, before, pause=PAUSE, stop=self._stop)
        except sqlite3.Error as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("routing log %s: deleting requests older than %g days failed (%s); tried again in %.0f s",
                        self.path, self.keep_days, exc, self.every)
            return 0
        finally:
            conn.close()
        self.pruned += gone
        self.last_error = None
        if gone:
            log.info("routing log %s: deleted %d request(s) older than %g days (log.keep_days)", self.path, gone,
                     self.keep_days)
        if self.url is None and not self._unforwarded_said:
            self._say_unforwarded(before)
        return gone

    def _say_unforwarded(self, before: float) -> None:
        """Say once when requests past ``keep_days`` stay only because they wait in the spool's outbox and no process
        forwards this log: a log that once had ``log.url`` keeps the spool's triggers, which queue every request for
        PostgreSQL whatever the config says now — nothing in the file was ever deleted again, and nothing said why."""
        from modelyard.paths import hold_exclusive

        try:
            conn = connect_readonly(self.path, timeout=10.0)
            try:
                waiting = conn.execute("SELECT COUNT(DISTINCT r.id) FROM _outbox o JOIN requests r "
                                       "ON r.id = o.request_id WHERE r.ts < ?", (before,)).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            return
        if not waiting:
            return
        with contextlib.suppress(OSError):
            fd = hold_exclusive(f"{self.path}.forward-lock")
            if fd is None:
                return  # another process forwards them: they go once PostgreSQL has them
            os.close(fd)
        self._unforwarded_said = True
        log.warning("routing log %s: %d request(s) older than %g days (log.keep_days) are kept because they wait in "
                    "the spool's outbox for PostgreSQL, and no process forwards this log — log.url was set once and "
                    "is not now. Set log.url again to send them (they then go), or, if this log no longer goes to "
                    "PostgreSQL, with modelyard stopped: sqlite3 %s \"DROP TRIGGER spool_request_written; DROP "
                    "TRIGGER spool_request_rated; DROP TRIGGER spool_label_written; DELETE FROM _outbox; DELETE FROM "
                    "_label_outbox\"", self.path, waiting, self.keep_days, self.path)
