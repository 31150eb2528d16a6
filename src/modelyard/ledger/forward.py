"""Forward this host's routing log from its SQLite spool to PostgreSQL, off the request path.

With ``log.url`` set, two promises pull against each other while PostgreSQL is down: an answer
must never wait on the database, and a gateway killed with ``kill -9`` must not lose a request it
answered. The local SQLite file keeps both. Every process writes there first, exactly as without
PostgreSQL (committed before the answer is reported, ~1 ms); triggers note each new or re-rated
request in ``_outbox``; one forwarder per host (an exclusive lock on ``<log>.forward-lock``; any
modelyard process may hold it, the next takes over when it exits or dies) copies what ``_outbox``
names to PostgreSQL in batches and deletes those entries only after PostgreSQL committed them.

So: PostgreSQL slow or down → answers go on at SQLite speed, the spool grows (bounded by disk,
shown as ``backlog`` in /healthz and /metrics), the forwarder retries with backoff (0.25 s doubling
to 30 s) and catches up when the database is back. A process killed mid-forward leaves its
entries in ``_outbox``: the next forwarder sends them again, and upserts make that harmless.
A NUL character (SQLite stores it; PostgreSQL's text refuses it: "invalid byte sequence for encoding
"UTF8": 0x00") is replaced by U+FFFD before the batch is sent, counted as ``nul_replaced`` and logged — not a failure:
before, the whole batch failed first, and /healthz said degraded for 5 minutes over a row that was then stored. A
row PostgreSQL refuses even after repair stays in the local file, is counted as ``refused`` and no longer blocks the
rows behind it.

Routing labels (corrections) travel the same way, through ``_label_outbox``: with ``log.url`` they are
the team's, and ``routing learn`` decides in PostgreSQL which of them every host trusts. The forwarder
also brings that trusted set back into the spool's ``team_labels`` (every ``TEAM_LABELS_EVERY`` s), so
a fast path being trained reads a local file and never waits on the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.config import dburl
from modelyard.ledger import marks, pg_watch, presence
from modelyard.ledger.db import connect
from modelyard.ledger.labels import trusted_upto
from modelyard.ledger.pg_columns import altered
from modelyard.ledger.same_file import SameFile, WriteAhead, stale_beside
from modelyard.ledger.sink import FORWARDED_REQUEST_COLUMNS, KEYS, keys_found, write_batch
from modelyard.ledger.store import LogUnavailable, passing
from modelyard.ledger.writer import ATTEMPT_COLUMNS
from modelyard.paths import hold_exclusive

log = logging.getLogger(__name__)

#: requests per PostgreSQL transaction (their attempts go with them)
BATCH = 500
#: characters of text per transaction: a batch ends at the request that reaches it (at least one a batch). With
#: ``log.max_text_chars: none`` a request can hold megabytes, and 500 of them were read into memory at once
BATCH_CHARS = 8 * 2**20
#: how often an idle forwarder looks for rows other processes on this host wrote
POLL = 0.1
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 30.0
#: how long after its last failure the forwarder still reports itself degraded
DEGRADED_FOR = 300.0
#: how long a forwarding transaction waits for a lock another session holds (a forgotten open transaction, a
#: migration, VACUUM FULL) before it fails, is counted and retried: without a bound the forwarder waited forever
#: while /healthz showed no backlog and nothing degraded
LOCK_TIMEOUT = 10.0
#: how often the backlog shown in /healthz and /metrics is counted (by the forwarder's thread)
MEASURE_EVERY = 1.0
#: a step (one batch, its statements each bounded by LOCK_TIMEOUT) still running after this is stuck on a connection
#: that went silent (a firewall dropping packets, a frozen server): its socket is shut down, the step fails, is
#: counted, and the forwarder connects again — before, it waited for ever, even after the path was back
STUCK_AFTER = 2 * LOCK_TIMEOUT
#: a step running this long already says so: not connected, and the backlog counted beside it
SLOW_SAID_AFTER = 5.0
#: how often the labels the team's last ``routing learn`` trusts are copied back into the spool
TEAM_LABELS_EVERY = 30.0
_LOG_EVERY = 10.0
#: a host whose clock is further than this from the database's is said: every row carries the host's time, so its
#: requests land out of order in `log`, on other days in `report` and in the spend caps' day or month
CLOCK_BOUND = 10.0
#: how often the forwarder compares this host's clock with the database's
CLOCK_EVERY = 30.0


def wall_clock() -> float:
    """This host's clock, as the routing log's timestamps are taken."""
    return time.time()


def clock_sentence(off: float) -> str:
    """'3h 0m ahead of' / '42s behind' (``off``: seconds this host's clock is ahead)."""
    size = abs(off)
    minutes, seconds = round(size / 60), round(size)
    amount = (f"{size / 86400:.1f} days" if size >= 86400 else f"{minutes // 60}h {minutes % 60}m" if size >= 3600
              else f"{seconds // 60}m {seconds % 60}s" if size >= 60 else f"{seconds}s")
    return f"{amount} {'ahead of' if off > 0 else 'behind'}"

TRIGGERS = (
    "CREATE TRIGGER spool_request_written AFTER INSERT ON requests "
    "BEGIN INSERT INTO _outbox (request_id) VALUES (NEW.id); END",
    "CREATE TRIGGER spool_request_rated AFTER UPDATE OF acceptable ON requests "
    "BEGIN INSERT INTO _outbox (request_id) VALUES (NEW.id); END",
)
LABEL_TRIGGER = ("CREATE TRIGGER spool_label_written AFTER INSERT ON routing_labels "
                 "BEGIN INSERT INTO _label_outbox (label_id) VALUES (NEW.id); END")
_SELECT_LABELS = ("SELECT o.seq, l.id, l.request_id, l.ts, l.text, l.agent, l.source, l.previous "
                  "FROM _label_outbox o LEFT JOIN routing_labels l ON l.id = o.label_id ORDER BY o.seq LIMIT ?")
_SELECT_REQUESTS = (f"SELECT o.seq, o.request_id, {', '.join('r.' + c for c in FORWARDED_REQUEST_COLUMNS)} "
                    "FROM _outbox o LEFT JOIN requests r ON r.id = o.request_id ORDER BY o.seq LIMIT ?")


#: the spool's own parts (migrations m005, m009; the triggers above): fewer than :data:`SPOOL_WHOLE`, one is gone
_SPOOL_PARTS = ("SELECT COUNT(*) FROM sqlite_master WHERE (type = 'trigger' AND name IN ('spool_request_written', "
                "'spool_request_rated', 'spool_label_written')) OR (type = 'table' AND name IN ('_outbox', "
                "'_label_outbox'))")
SPOOL_WHOLE = 5
#: seconds between two looks at the spool's parts (:meth:`Forwarder._mend`): one query on ``sqlite_master``
MEND_EVERY = 1.0


def stuck_because(finding: pg_watch.Finding) -> str:
    """What the server says of a forwarder's step that has had no answer for ``stuck_after``, for the line that cuts
    it: a commit waiting for synchronous replication (``synchronous_standby_names`` naming a standby that is down or
    gone) hangs until one confirms it, and looked like a network fault ('no answer … the connection is closed')."""
    if finding.verdict is pg_watch.Verdict.WORKING and finding.wait_event == "SyncRep":
        return (f" — the server says its session (pid {finding.pid}) waits for synchronous replication: the rows are "
                "committed there but held until a standby named in synchronous_standby_names confirms them, and none "
                "does; bring that standby back, or empty the setting (ALTER SYSTEM RESET synchronous_standby_names; "
                "SELECT pg_reload_conf())")
    if finding.verdict is pg_watch.Verdict.WORKING and finding.wait_event:
        return f" — the server says its session (pid {finding.pid}) is waiting on {finding.wait_event}"
    return f" — {finding.said()}"


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a spool last seen whole stood (:meth:`Forwarder._mend`): every request before ``request`` (by row
    order) and every label before ``label`` had been forwarded, ratings given before ``at`` were queued. A part put
    back queues again only what comes from there — not the whole file's history."""

    #: the request of the oldest entry still waiting in ``_outbox`` (else the newest request): id, row order, start
    #: time. Requests enter the outbox in row order; an entry after it for an older request is a rating, given after
    #: that request started (so found by ``rated_at``)
    request: tuple[str, int, float] | None
    #: the oldest label still waiting in ``_label_outbox`` (else the newest label)
    label: int | None
    #: wall clock of that look
    at: float


#: requests started this long before the anchor's are queued again too: a tool that copies a table in another order
#: than SQLite's (an ``ORDER BY id``) renumbers rows; a request is stamped at its start and written at its end
ANCHOR_SLACK_S = 3600.0
_ANCHOR = ("SELECT (SELECT id FROM requests WHERE rowid = a.r), a.r, (SELECT ts FROM requests WHERE rowid = a.r), "
           "COALESCE((SELECT label_id FROM _label_outbox ORDER BY seq LIMIT 1), (SELECT MAX(id) FROM routing_labels)) "
           "FROM (SELECT COALESCE((SELECT r.rowid FROM _outbox o JOIN requests r ON r.id = o.request_id ORDER BY o.seq "
           "LIMIT 1), (SELECT MAX(rowid) FROM requests)) AS r) AS a")


def anchor(conn: sqlite3.Connection) -> Anchor:
    """Where the spool at ``conn`` stands now (it must be whole: both outboxes there)."""
    request_id, rowid, ts, label = conn.execute(_ANCHOR).fetchone()
    return Anchor(None if request_id is None else (str(request_id), int(rowid), float(ts)),
                  None if label is None else int(label), time.time())


def _queue_again(conn: sqlite3.Connection, since: Anchor | None) -> None:
    """Queue the requests ``since`` has not seen forwarded (all of them without one) — and the ratings given since."""
    if since is None or since.request is None:
        conn.execute("INSERT INTO _outbox (request_id) SELECT id FROM requests ORDER BY rowid")
        return
    request_id, _, ts = since.request
    found = conn.execute("SELECT rowid FROM requests WHERE id = ?", (request_id,)).fetchone()
    if found is None:  # the anchor's row deleted by hand: nothing says where the rows since start
        conn.execute("INSERT INTO _outbox (request_id) SELECT id FROM requests ORDER BY rowid")
        return
    conn.execute("INSERT INTO _outbox (request_id) SELECT id FROM requests WHERE rowid >= ? OR ts >= ? "
                 "OR rated_at >= ? ORDER BY rowid", (found[0], ts - ANCHOR_SLACK_S, ts - ANCHOR_SLACK_S))


def enable_spool(conn: sqlite3.Connection, since: Anchor | None = None) -> bool:
    """Install the outbox triggers once; the first time, queue every request (and routing label) already
    in the file, so moving a log to PostgreSQL takes its history along. True if this call installed the
    request triggers (a spool made before labels were shared gets the label trigger on its own).

    A part gone later is put back the same way: a trigger goes with its table when a tool rebuilds that table
    (sqlite-utils ``transform`` — "it does not automatically upgrade indexes, views or triggers", simonw/sqlite-utils
    #611 —, DB Browser's Modify Table, ALTER TABLE's create-copy-drop-rename steps,
    https://www.sqlite.org/lang_altertable.html), and an outbox table may be dropped by hand. With ``since`` (where
    the spool stood when last seen whole) only what came from there is queued again: the requests from the oldest one
    that was still waiting, those started within :data:`ANCHOR_SLACK_S` of it, ratings given since; without it (a part
    gone while no process forwarded) every request, as no note says which ones went by meanwhile (PostgreSQL keeps
    one row per request either way)."""

    def installed(name: str, kind: str = "trigger") -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)
                            ).fetchone() is not None

    conn.execute("BEGIN IMMEDIATE")
    try:
        new = not installed("spool_request_written") or not installed("_outbox", "table")
        if new:
            conn.execute("CREATE TABLE IF NOT EXISTS _outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "request_id TEXT NOT NULL)")
            for trigger in TRIGGERS:
                conn.execute(trigger.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1))
            _queue_again(conn, since)
        elif not installed("spool_request_rated"):
            conn.execute(TRIGGERS[1])
            if since is not None:  # ratings given while it was gone never entered the outbox
                start = since.at if since.request is None else min(since.at, since.request[2])
                conn.execute("INSERT INTO _outbox (request_id) SELECT id FROM requests WHERE rated_at >= ? "
                             "ORDER BY rowid", (start - ANCHOR_SLACK_S,))
        if not installed("spool_label_written") or not installed("_label_outbox", "table"):
            conn.execute("CREATE TABLE IF NOT EXISTS _label_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "label_id INTEGER NOT NULL)")
            conn.execute(LABEL_TRIGGER.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1))
            first = since.label if since is not None and since.label is not None else 0
            conn.execute("INSERT INTO _label_outbox (label_id) SELECT id FROM routing_labels WHERE id >= ? "
                         "ORDER BY id", (first,))
        conn.execute("COMMIT")
        return new
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True, slots=True)
class SpoolName:
    """A random name kept in the spool file (:func:`spool_name`), and the labels made before it."""

    name: str
    #: the highest routing label id when the name was made: those labels keep the names they were forwarded under
    labels_before: int


def spool_name(conn: sqlite3.Connection) -> SpoolName:
    """A random name kept in the spool file: made once, the same after every restart, another in every other spool.

    A host's name and the spool's path (``host:path``) named the host in the log's ``log_presence`` and named its
    routing labels that correct no request (``host:path#id``), and two hosts can share both — replicas of one image
    with a fixed host name (Compose's ``hostname:``), pods with ``hostNetwork: true`` on one node, which take the
    node's name: each overwrote the other's presence row and read its own back, so hosts on this log limiting the same
    models apart went unsaid between the two; and the second host's label #N replaced the first's. (A copied spool
    file keeps its name: a copy of a host is that host, as its log is.)"""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS _spool_name (name TEXT NOT NULL, labels_before INTEGER NOT NULL)")
        row = conn.execute("SELECT name, labels_before FROM _spool_name LIMIT 1").fetchone()
        if row is None:
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM routing_labels").fetchone()[0]
            row = (marks.new(), int(before))
            conn.execute("INSERT INTO _spool_name (name, labels_before) VALUES (?, ?)", row)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SpoolName(str(row[0]), int(row[1]))


def label_origin(label_id: int, request_id: str | None, spool: str, named: SpoolName | None = None) -> str:
    """A label's name across hosts: the request it corrects (request ids are unique everywhere; a newer
    label for the same request replaces the older one, as in the local file), else where it was made — with the
    spool's own name (``named``) for a label made since it was (one made before keeps the name it was sent under)."""
    if request_id:
        return f"request:{request_id}"
    if named is not None and label_id > named.labels_before:
        return f"{spool}#{named.name}#{label_id}"
    return f"{spool}#{label_id}"


def forward_labels(spool: sqlite3.Connection, pg: Any, where: str, batch: int,
                   named: SpoolName | None = None) -> tuple[int, int]:
    """Copy up to ``batch`` labels named in ``_label_outbox`` to PostgreSQL in one transaction, then drop
    those entries; the number copied, and how many of them PostgreSQL took without an error but does not hold (a
    trigger on ``routing_labels`` that returns NULL: they were counted copied, and ``routing learn`` never saw them).
    A label replaced before it left is skipped. In PostgreSQL a changed label is deleted and inserted again, so it
    gets a new id and, like any new label, waits for the next accepted ``routing learn``; one sent twice (a forwarder
    killed before noting it) changes nothing. A label too big for an index a DBA put on the table (54000) is left
    out, said, and kept in the local file: it held back every label after it, for good."""
    rows = spool.execute(_SELECT_LABELS, (batch,)).fetchall()
    if not rows:
        return 0, 0
    from modelyard.ledger.pg import hint, row_too_big  # psycopg: only with log.url

    codec = getattr(pg, "narrow_codec", None)
    refused: set[int] = set()
    while True:  # a label too big for an index on the table (54000) is left out, and the batch sent again
        sent = said = 0
        origins: list[str] = []
        pg.execute("BEGIN")
        try:
            for _, label_id, request_id, *values in rows:
                if label_id is None or label_id in refused:
                    continue
                name = label_origin(label_id, request_id, where, named)
                ts, text, agent, source, previous = narrow(tuple(pg_safe(v) for v in values), codec)
                try:
                    pg.execute("DELETE FROM routing_labels WHERE origin = ? AND (agent <> ? OR text <> ?)",
                               (name, agent, text))
                    said += pg.execute("INSERT INTO routing_labels (origin, ts, text, agent, source, request_id, "
                                       "previous) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO NOTHING",
                                       (name, ts, text, agent, source, request_id, previous)).rowcount
                except Exception as exc:
                    if not row_too_big(exc):
                        raise
                    log.error("routing log: routing label %s refused by PostgreSQL (%s%s); kept in the local file",
                              name, str(exc).splitlines()[0], hint(exc))
                    refused.add(label_id)
                    break
                origins.append(name)
                sent += 1
            else:
                pg.execute("COMMIT")
                break
            pg.execute("ROLLBACK")
        except BaseException:
            if pg.in_transaction:
                pg.execute("ROLLBACK")
            raise
    spool.execute("DELETE FROM _label_outbox WHERE seq <= ?", (rows[-1][0],))
    gone = 0
    if 0 <= said < sent:  # one already there (sent twice) also says 0: look
        gone = len(set(origins) - present(pg, "SELECT origin FROM routing_labels WHERE origin IN ({})", origins))
    return sent - gone, gone


def present(pg: Any, sql: str, keys: Sequence[Any], *, whole: bool = False) -> set[Any]:
    """What ``sql`` finds in PostgreSQL for ``keys`` (``{}`` stands for their placeholders): each row's first
    column, or the whole row as a tuple (``whole``)."""
    found: set[Any] = set()
    for start in range(0, len(keys), BATCH):
        part = list(keys[start:start + BATCH])
        rows = pg.execute(sql.format(", ".join("?" * len(part))), part).fetchall()
        found.update(tuple(row) if whole else row[0] for row in rows)
    return found


def copy_team_labels(pg: Any, spool: sqlite3.Connection) -> bool:
    """Make the spool's ``team_labels`` the labels PostgreSQL's last accepted ``routing learn`` trusts;
    True if they changed."""
    upto = trusted_upto(pg)
    # a label never changes in place (a changed one is a new id), so the ids say whether the set changed
    fingerprint = "SELECT COUNT(*), COALESCE(SUM(id), 0) FROM {} WHERE id <= ?"
    if tuple(pg.execute(fingerprint.format("routing_labels"), (upto,)).fetchone()) == \
            tuple(spool.execute(fingerprint.format("team_labels"), (upto,)).fetchone()) and \
            spool.execute("SELECT COUNT(*) FROM team_labels WHERE id > ?", (upto,)).fetchone()[0] == 0:
        return False
    rows = [tuple(r) for r in pg.execute(
        "SELECT id, text, agent, source FROM routing_labels WHERE id <= ? ORDER BY id", (upto,)).fetchall()]
    spool.execute("BEGIN IMMEDIATE")
    try:
        spool.execute("DELETE FROM team_labels")
        spool.executemany("INSERT INTO team_labels (id, text, agent, source) VALUES (?, ?, ?, ?)", rows)
        spool.execute("COMMIT")
    except BaseException:
        spool.execute("ROLLBACK")
        raise
    return True


def pg_safe(value: Any) -> Any:
    """A value PostgreSQL's text type accepts: no NUL character, valid UTF-8 (SQLite took both)."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    elif isinstance(value, bytes):
        value = value.decode("utf-8", "replace").replace("\x00", "\ufffd")
    return value


def without_nul(rows: list[tuple]) -> tuple[list[tuple], int]:
    """``rows`` with every NUL character in their texts replaced by U+FFFD, and how many rows held one — ``in`` on
    each text (memchr) is all a row without one costs. A model's answer carries one now and then (a tokenizer's
    stray token, binary pasted into a prompt); PostgreSQL's text type never stores it."""
    changed = 0
    out = rows
    for i, row in enumerate(rows):
        if any(type(v) is str and "\x00" in v for v in row):
            if out is rows:
                out = list(rows)
            out[i] = tuple(v.replace("\x00", "\ufffd") if type(v) is str else v for v in row)
            changed += 1
    return out, changed


def narrowed(rows: list[tuple], codec: str | None) -> tuple[list[tuple], int]:
    """``rows`` with every character a database of a narrower encoding than UTF-8 cannot hold replaced by ``?``
    (``codec``: :attr:`.pg.PgConnection.narrow_codec`; None: nothing to do), and how many rows held one. PostgreSQL
    refuses a row with one ('character with byte sequence 0xf0 0x9f 0x98 0x80 in encoding "UTF8" has no equivalent in
    encoding "LATIN1"', SQLSTATE 22P05): an emoji, Cyrillic or CJK text in a LATIN1 database."""
    if codec is None:
        return rows, 0
    changed = 0
    out = rows
    for i, row in enumerate(rows):
        fixed = narrow(row, codec)
        if fixed != row:
            if out is rows:
                out = list(rows)
            out[i] = fixed
            changed += 1
    return out, changed


def narrow(row: tuple, codec: str | None) -> tuple:
    """``row`` with every text's characters a database of encoding ``codec`` cannot hold replaced (:func:`narrowed`)."""
    return row if codec is None else tuple(_within(v, codec) if type(v) is str else v for v in row)


def _within(text: str, codec: str) -> str:
    try:
        text.encode(codec)
        return text
    except UnicodeEncodeError:
        return text.encode(codec, "replace").decode(codec)


@dataclass(frozen=True, slots=True)
class ForwardHealth:
    """What /healthz and /metrics show about the copy to PostgreSQL."""

    target: str
    #: this process holds the host's forward lock (another process forwards otherwise)
    active: bool
    alive: bool
    connected: bool
    forwarded: int
    refused: int
    failures: int
    backlog: int
    oldest_backlog_s: float | None
    last_error: str | None
    last_error_age_s: float | None
    #: hosts writing to this log with another shared state (see :mod:`.presence`), from the last look
    limited_apart: tuple[str, ...] = ()
    #: seconds this host's clock is ahead of the database's (behind: negative), when past :data:`CLOCK_BOUND`
    clock_off_s: float | None = None
    #: ``ask``/``chat`` processes writing to this log with another shared state: at most one request over a limit
    #: each, while they run — listed, not degraded (:data:`.presence.ONE_AT_A_TIME`)
    one_at_a_time_apart: tuple[str, ...] = ()
    #: rows (requests, attempts) sent with a NUL character replaced by U+FFFD (PostgreSQL's text refuses it; the
    #: local file keeps it)
    nul_replaced: int = 0
    #: rows (requests, attempts) sent with characters the database's encoding lacks (LATIN1 …) replaced by ``?``
    narrowed: int = 0
    #: spool texts that were not UTF-8 (another program wrote them), sent with U+FFFD in place of the bytes
    undecodable: int = 0
    #: rows (requests, attempts, routing labels) PostgreSQL took without an error but did not keep: a trigger or rule
    #: on its table discarded them (kept in the local file only)
    discarded: int = 0

    @property
    def degraded(self) -> bool:
        recent = self.last_error_age_s is not None and self.last_error_age_s < DEGRADED_FOR
        # hosts limiting the same models apart hand out more than the limit, as limits_differ and counted_apart do
        return (not self.alive or (self.backlog > 0 and not self.connected and self.active) or recent
                or self.clock_off_s is not None or bool(self.limited_apart))


class Forwarder:
    """One thread that drains the spool at ``path`` into the PostgreSQL log at ``url``."""

    def __init__(self, path: str | Path, url: str, *, poll: float = POLL, batch: int = BATCH,
                 lock_timeout: float = LOCK_TIMEOUT, stuck_after: float = STUCK_AFTER):
        self.path = Path(path)
        self.url = url
        self.lock_timeout = lock_timeout
        self.stuck_after = stuck_after
        #: when the step now running started (None: none runs) — the watchdog reads it
        self._step_since: float | None = None
        #: the watchdog cut the running step's connection (it hung): not an idle connection the server ended
        self._aborted = False
        self.target = dburl.redact(url)
        self.poll = poll
        self.batch = batch
        self.forwarded = 0
        self.refused = 0
        #: rows sent with a NUL character replaced (:func:`without_nul`)
        self.nul_replaced = 0
        self._nul_logged = 0.0
        #: rows sent with characters the database's encoding lacks replaced (:func:`narrowed`)
        self.narrowed = 0
        self._narrowed_logged = 0.0
        self.failures = 0
        self.last_error: str | None = None
        self._last_error_at: float | None = None
        self._last_logged = 0.0
        self._backoff = 0.0
        self._next_try = 0.0
        self._measured_at = 0.0
        self._team_labels_at = -TEAM_LABELS_EVERY
        #: the shared state this host uses (:func:`.presence.fingerprint`), recorded in the log for the other hosts
        #: to compare; None: not said (the runtime sets it once its pool is built)
        self.presence: str | None = None
        #: the run ids of the Redis server that shared state reached lately (the runtime sets it from the link): a
        #: host on the same server at another address (a tunnel per host) uses the same shared state
        #: None: not read yet — the look waits for it, else a host on a tunnel was said apart until its next look
        self.presence_servers: Callable[[], Sequence[str] | None] = tuple
        self.presence_every = presence.EVERY
        self._presence_at = -presence.EVERY
        #: hosts writing to this log with another shared state ("hostb uses redis …"), from the last look
        self.state_differs: list[str] = []
        #: ``ask``/``chat`` processes among them ("laptop uses no shared state … for ask/chat …"): not degraded
        self.one_at_a_time_differs: list[str] = []
        #: what this process is, recorded beside its shared state: :data:`.presence.ONE_AT_A_TIME` for ``ask`` and
        #: ``chat`` (the runtime sets it)
        self.presence_kind = ""
        #: seconds this host's clock is ahead of PostgreSQL's, when past CLOCK_BOUND (None: within it, or not looked)
        self.clock_off: float | None = None
        self.clock_every = CLOCK_EVERY
        self._clock_at = -CLOCK_EVERY
        self.where = f"{socket.gethostname()}:{self.path.resolve()}"
        self._backlog: tuple[int, float | None] = (0, None)
        #: spool texts that were not UTF-8, read with U+FFFD in place of what could not be decoded (:meth:`_text`)
        self.undecodable = 0
        #: requests the database took without an error and did not keep (:meth:`_kept`)
        self.discarded = 0
        self._discarded_logged = 0.0
        self._mended_at = 0.0
        #: the unique keys the PostgreSQL tables are upserted on (:meth:`_write`)
        self._keys = KEYS
        #: where the spool stood at the last look that found it whole (:meth:`_mend`); None: not looked yet
        self._anchor: Anchor | None = None
        #: what the watchdog found when it cut a stuck step (said as that step's failure)
        self._stuck = ""
        #: the spool (None until it opens: its disk full or another process's lock at start, :meth:`_open_whole`)
        self._opened: sqlite3.Connection | None = None
        #: this spool's own name (:func:`spool_name`): ``where`` alone may be another host's too
        self.named = SpoolName("", 0)
        self.presence_who = self.where
        # the writer starts without the file too and holds its rows (ledger/writer.py, which says so): the spool is
        # then opened at the forwarder's next steps, and what the writer writes there is forwarded
        self._try_open()
        self._pg: Any = None
        #: which log the database is (:meth:`.pg.PgConnection.identity`; None: not connected yet, "": unreadable):
        #: the shared state compares it, as two hosts' ``localhost`` may be two servers or one through a tunnel each
        self.log_identity: str | None = None
        #: this process's mark in the log (:mod:`.marks`), said beside the identity once written ("" until then: a
        #: process whose role may not write it is compared by identity alone)
        self._mark = marks.new()
        self.log_mark = ""
        #: other processes' marks the shared state asked about → in this log (True), not (False), not looked yet
        #: (None); replaced whole (read by the event loop's thread), looked at again every presence_every
        self._asked: dict[str, bool | None] = {}
        self._asked_lately: set[str] = set()
        self._marks_at = 0.0
        self._lock_fd: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="modelyard-log-forwarder", daemon=True)
        self._thread.start()
        self._watchdog = threading.Thread(target=self._watch, name="modelyard-log-forwarder-watchdog", daemon=True)
        self._watchdog.start()

    def _open_whole(self) -> None:
        """Open the spool, its outbox triggers and name in place; on failure nothing stays open. At start or, when
        the file could not be opened then (a full disk, another process's lock: :func:`.store.passing`), at a
        later step — the triggers are in the file before the writer's held rows are (both wait for it to open), and a
        file new then queues every request it has (:func:`enable_spool`)."""
        conn = self._open_spool()  # migrated: _outbox exists
        try:
            installed = enable_spool(conn)
            named = spool_name(conn)
        except BaseException:
            conn.close()
            raise
        self._spool = SameFile(self.path)
        self._ahead = WriteAhead(self.path)
        if installed:
            log.info("routing log: forwarding %s to %s", self.path, self.target)
        self.named = named
        self.presence_who = f"{self.where}#{self.named.name}"
        self._opened = conn

    def _opened_late(self) -> bool:
        """Try again to open a spool that could not be opened at start; False while it still cannot be, for a state
        that passes — the writer holds the rows meanwhile and says so (not 'cannot forward to PostgreSQL … rows wait
        in the spool': they are in neither). Tried at the pace of PostgreSQL's backoff; anything else raises."""
        if not self._try_open():
            return False
        log.warning("routing log %s: the spool opened; forwarding to %s", self.path, self.target)
        self._backoff = 0.0
        return True

    def _try_open(self) -> bool:
        """:meth:`_open_whole`; False (said in ``last_error``, backed off) when it cannot be for a state that passes."""
        try:
            self._open_whole()
        except (sqlite3.Error, OSError) as exc:
            if not passing(self.path, exc):
                raise
            self.last_error = f"{type(exc).__name__}: the spool {self.path} cannot be opened yet ({exc})"[:500]
            self._last_error_at = time.time()
            self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._backoff * 2))
            return False
        return True

    @property
    def _conn(self) -> sqlite3.Connection:
        """The spool, once open: every step opens it first (:meth:`_opened_late`)."""
        if self._opened is None:
            raise LogUnavailable(f"routing log {self.path}: the spool is not open yet")
        return self._opened

    @_conn.setter
    def _conn(self, conn: sqlite3.Connection) -> None:
        self._opened = conn

    # -- the API -----------------------------------------------------------------------------

    def wake(self) -> None:
        """Rows were committed to the spool: look now rather than at the next poll."""
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything in the spool now is in PostgreSQL. Returns False at ``timeout``, or at
        once when this process forwards and PostgreSQL is failing (nothing to wait for then)."""
        started = time.time()
        deadline = time.monotonic() + timeout
        if self._opened is None:  # the spool not opened yet: the rows wait in the writer's memory, nothing to send
            return False
        while self._read(_SPOOL_PARTS)[0][0] < SPOOL_WHOLE:  # a part gone: rows since are in no outbox until the
            self._mended_at = 0.0  # forwarder puts it back (_mend) and queues them again, at its next step
            self.wake()
            if self._failing_since(started) or time.monotonic() >= deadline or not self.alive:
                return False
            time.sleep(0.05)
        target = self._last_seq()
        if target is None:
            return True
        self.wake()
        with self._changed:
            while True:
                if self._pending_through(target) == 0:
                    return True
                if self._failing_since(started) or time.monotonic() >= deadline or not self.alive:
                    return False
                self._changed.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def _failing_since(self, started: float) -> bool:
        """This process forwards and PostgreSQL has failed since ``started`` (no connection now): a flush has
        nothing to wait for — also while a spool part is being put back, which needs the forwarder's next step."""
        failed = self._last_error_at is not None and self._last_error_at >= started and self._pg is None
        return failed and self._lock_fd is not None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self._stop.is_set()

    def health(self) -> ForwardHealth:
        """Cheap (read from the forwarder's last count, at most MEASURE_EVERY old): scrapes never touch the disk."""
        backlog, oldest_ts = self._backlog
        oldest = None if oldest_ts is None else max(0.0, time.time() - oldest_ts)
        at = self._last_error_at
        return ForwardHealth(self.target, self._lock_fd is not None, self.alive,
                             self._pg is not None and not self._step_slow(),
                             self.forwarded, self.refused, self.failures, backlog, oldest, self.last_error,
                             None if at is None else time.time() - at, tuple(self.state_differs), self.clock_off,
                             tuple(self.one_at_a_time_differs), self.nul_replaced, self.narrowed,
                             self.undecodable, self.discarded)

    def close(self, timeout: float = 5.0) -> None:
        """Forward what is left (up to ``timeout``; what is not sent stays in the spool for the next process)."""
        if self._stop.is_set():
            return
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout + 5)
        self._watchdog.join(timeout=MEASURE_EVERY + 1)
        self._release()
        with contextlib.suppress(sqlite3.Error):
            if self._opened is not None:
                self._opened.close()

    # -- spool reads (any thread) ---------------------------------------------------------------

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = connect(self.path, readonly=True)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def _last_seq(self) -> tuple[int, int] | None:
        """The newest entry of each outbox (requests, labels); None when both are empty."""
        row = self._read("SELECT (SELECT MAX(seq) FROM _outbox), (SELECT MAX(seq) FROM _label_outbox)")[0]
        return None if row[0] is None and row[1] is None else (row[0] or 0, row[1] or 0)

    def _pending_through(self, seq: tuple[int, int]) -> int:
        return self._read("SELECT (SELECT COUNT(*) FROM _outbox WHERE seq <= ?) + "
                          "(SELECT COUNT(*) FROM _label_outbox WHERE seq <= ?)", seq)[0][0]


    # -- the forwarder thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            moved = False
            if time.monotonic() >= self._next_try:
                self._step_since = time.monotonic()
                self._aborted = False
                self._stuck = ""
                held = self._pg
                try:
                    try:
                        moved = self._step()
                    except LogUnavailable as exc:
                        if not self._ended_while_idle(held):
                            raise
                        log.info("routing log: %s closed the forwarder's connection while it was idle (%s); connected "
                                 "again", self.target, dburl.scrub(str(exc).strip().splitlines()[0], self.url))
                        self._drop_pg()
                        moved = self._step()  # once, on a fresh connection: a failure there is counted below
                except BaseException as exc:  # never dies silently: count it, reconnect, back off
                    self._failed(exc)
                    self._drop_pg()
                    self._measured_at = 0.0  # the backlog is news now: /healthz shows it at once, not a second on
                finally:
                    self._step_since = None
                self._next_try = time.monotonic() + (0.0 if moved else self._backoff or self.poll)
            if time.monotonic() - self._measured_at >= MEASURE_EVERY:
                self._measure()
            with self._changed:
                self._changed.notify_all()
            if not moved:
                self._wake.wait(min(MEASURE_EVERY, max(0.0, self._next_try - time.monotonic())))
                if self._wake.is_set():
                    self._wake.clear()
                    self._next_try = min(self._next_try, time.monotonic()) if not self._backoff else self._next_try
        self._drop_pg()

    def _ended_while_idle(self, held: Any) -> bool:
        """The step failed because the server had ended a connection this forwarder kept between steps — an
        ``idle_session_timeout``, a pooler's ``client_idle_timeout``, a restart or failover, ``pg_terminate_backend``
        while nothing was sent: the database may well take the rows on a fresh connection, so that is tried at once
        rather than counted as a failure (``/healthz`` said degraded for 5 minutes after every quiet spell). Not a
        connection the watchdog cut (stuck on a silent path): that is the failure it is."""
        return held is not None and held is self._pg and held.closed and not self._aborted

    def _step_slow(self) -> bool:
        since = self._step_since
        return since is not None and time.monotonic() - since >= SLOW_SAID_AFTER

    def _watch(self) -> None:
        """While a step hangs on PostgreSQL, count the backlog for /healthz (from a connection of its own: the
        forwarder's is busy) and, once the step is stuck, break the connection it waits on."""
        while not self._stop.wait(MEASURE_EVERY):
            since, pg = self._step_since, self._pg
            if since is None or not self._step_slow():
                continue
            with contextlib.suppress(sqlite3.Error):
                rows = self._read("SELECT COUNT(*), MIN(r.ts) FROM _outbox o "
                                  "LEFT JOIN requests r ON r.id = o.request_id")
                self._backlog = (rows[0][0], rows[0][1])
            if pg is not None and time.monotonic() - since >= self.stuck_after:
                waited = time.monotonic() - since
                why = stuck_because(pg_watch.probe(self.url, pg.pid, None))
                log.warning("routing log: no answer from %s for %.0fs%s: dropping the connection and trying again",
                            self.target, waited, why)
                self._stuck = f"no answer for {waited:.0f}s{why}"
                self._aborted = True
                pg.abort()

    def _measure(self) -> None:
        if self._opened is None:
            return
        try:
            row = self._conn.execute(
                "SELECT COUNT(*), MIN(r.ts) FROM _outbox o LEFT JOIN requests r ON r.id = o.request_id").fetchone()
            self._backlog = (row[0], row[1])
        except sqlite3.Error as exc:
            self._failed(exc)
        self._measured_at = time.monotonic()

    def _step(self) -> bool:
        """Forward one batch (requests, then labels); True if something moved (look again at once)."""
        if not self._hold_lock():
            return False
        if self._opened is None and not self._opened_late():
            return False
        if self._spool.gone():  # the writers moved to a new file at the path: forward that one
            if stale_beside(self.path, self._ahead.opened):
                return False  # a writer sets the old file's write-ahead log aside first (same_file.take_over)
            self._failed(OSError(self._spool.describe("forwarding the new file at that path from now on")))
            fresh = self._open_spool()
            enable_spool(fresh)
            self._anchor = None  # another file: where the old one stood says nothing of it
            self._conn.close()
            self._conn = fresh
            self._spool.reopened()
            self._ahead.reopened()
        if time.monotonic() - self._mended_at >= MEND_EVERY:
            self._mend()
        moved = self._forward_requests()
        if self._labels_waiting():
            _, gone = forward_labels(self._conn, self._database(), self.where, self.batch, self.named)
            if gone:
                self._said_discarded(f"{gone} routing label(s)", gone, "routing_labels")
            moved = True
        if time.monotonic() - self._team_labels_at >= TEAM_LABELS_EVERY:
            copy_team_labels(self._database(), self._conn)
            self._team_labels_at = time.monotonic()
        if self.presence is not None and time.monotonic() - self._presence_at >= self.presence_every:
            self._presence_at = time.monotonic()
            self._look_around(self.presence)
        if self._asked and (None in self._asked.values() or time.monotonic() - self._marks_at >= self.presence_every):
            self._look_for_marks()
        if time.monotonic() - self._clock_at >= self.clock_every:
            self._clock_at = time.monotonic()
            self._check_clock()
        return moved

    def _mend(self) -> None:
        """Put back a part of the spool gone while this process forwards it (:func:`enable_spool`): a table of the
        log rebuilt by another tool took its triggers along, and from then on no request entered the outbox — none
        reached PostgreSQL until a restart, while the backlog read 0 and nothing was said; an outbox table dropped
        by hand made the writer refuse every request (its trigger writes there). Where the spool stood at the last
        look (:class:`Anchor`) bounds what is queued again: before, the whole file's history was sent again."""
        self._mended_at = time.monotonic()
        if self._conn.execute(_SPOOL_PARTS).fetchone()[0] >= SPOOL_WHOLE:
            self._anchor = anchor(self._conn)
            return
        before = self._conn.execute("SELECT COUNT(*) FROM _outbox").fetchone()[0] if self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_outbox'").fetchone() else 0
        enable_spool(self._conn, self._anchor)
        queued = self._conn.execute("SELECT COUNT(*) FROM _outbox").fetchone()[0] - before
        log.warning("routing log %s: the spool's own triggers or tables (spool_*, _outbox) were gone — a tool that "
                    "rebuilt a table of the log (sqlite-utils transform, DB Browser's Modify Table) takes its triggers "
                    "along, or they were dropped by hand — so requests written since never reached %s: put back, "
                    "and %d request(s) queued again (PostgreSQL keeps one copy of each); leave the log's "
                    "tables to modelyard while it runs", self.path, self.target, queued)
        self._measured_at = 0.0  # the backlog is news: /healthz shows it at once

    def _check_clock(self) -> None:
        """Compare this host's clock with the database's: a host an hour off logged its requests an hour off, and
        nothing said so (Redis's leases use Redis's clock; the log's rows carry each host's)."""
        try:
            before = wall_clock()
            row = self._database().execute("SELECT EXTRACT(EPOCH FROM clock_timestamp()) AS now").fetchone()
            after = wall_clock()
        except Exception as exc:  # a courtesy: never the forwarder's failure
            log.debug("routing log: clock not compared (%s)", exc)
            return
        off = (before + after) / 2 - float(row["now"])
        if abs(off) - (after - before) / 2 <= CLOCK_BOUND:
            if self.clock_off is not None:
                log.warning("routing log %s: this host's clock agrees with the database's again", self.target)
            self.clock_off = None
            return
        if self.clock_off is None or abs(off - self.clock_off) > CLOCK_BOUND:
            log.warning("routing log %s: this host's clock is %s the database's: its requests are logged at this "
                        "host's time, so they land out of order in `log`, on the wrong day in `report` and in spend "
                        "caps — set the clock (timedatectl set-ntp true, or your NTP client)", self.target,
                        clock_sentence(off))
        self.clock_off = off

    def _look_around(self, mine: str) -> None:
        """Record which shared state this host uses, and say the hosts on this log that use another."""
        servers = self.presence_servers()
        if servers is None:
            self._presence_at = -self.presence_every  # at the next step
            return
        try:
            pg = self._database()
            presence.record(pg, self.presence_who, socket.gethostname(), mine, servers, self.presence_kind)
            found = presence.look(pg, mine, servers)
        except Exception as exc:  # a courtesy: never the forwarder's failure
            log.debug("routing log: presence not recorded (%s)", exc)
            return
        differ = found.apart
        if differ and presence.hosts_of(differ) != presence.hosts_of(self.state_differs):
            log.warning("routing log %s: %s", self.target, presence.sentence(differ, mine))
        if found.one_at_a_time and not self.one_at_a_time_differs:
            log.info("routing log %s: %s", self.target, presence.sentence(found.one_at_a_time, mine))
        self.state_differs = differ
        self.one_at_a_time_differs = found.one_at_a_time

    def holds(self, mark: str) -> bool | None:
        """Whether this log holds another process's mark (:mod:`.marks`): None until looked — asking wakes the
        forwarder, whose next step looks. From the event loop's thread: never waits on the database."""
        self._asked_lately.add(mark)
        if mark not in self._asked:
            self._asked = {**self._asked, mark: None}
            self.wake()
        return self._asked.get(mark)

    def _look_for_marks(self) -> None:
        asked = set(self._asked)
        try:
            found = marks.present(self._database(), asked)
        except Exception as exc:  # a courtesy: never the forwarder's failure
            log.debug("routing log: marks not looked for (%s)", exc)
            return
        self._marks_at = time.monotonic()
        lately, self._asked_lately = self._asked_lately, set()
        # looked at now: in the log or not; asked meanwhile: at the next step; not asked since the last look (its
        # process is gone): forgotten
        self._asked = {m: (m in found if m in asked else None) for m in self._asked if m in lately or m not in asked}

    def _database(self) -> Any:
        if self._pg is None:
            from modelyard.ledger.pg import PgConnection

            self._pg = PgConnection(self.url, application_name="modelyard-forwarder", lock_timeout=self.lock_timeout)
            try:  # before the identity is known: a host that sees this identity can look for the mark at once
                marks.write(self._pg, self._mark)
                self.log_mark = self._mark
            except Exception as exc:  # no right to create or write the table: the identity alone decides
                log.debug("routing log: mark not written (%s)", exc)
                self.log_mark = ""
            self.log_identity = self._pg.identity()  # read again on each new connection: a failover changes it
        return self._pg

    def _open_spool(self) -> sqlite3.Connection:
        """The spool, its texts read by :meth:`_text`. SQLite keeps whatever bytes a TEXT value is given (it does not
        check UTF-8: https://www.sqlite.org/invalidutf.html), and other programs write that way — GNU parallel
        (coleifer/sqlite-web#160), a Go or Perl tool handing it Latin-1 (blacklanternsecurity/bbot#1071,
        thawn/ttmp32gme#122), a ``sqlite3`` shell's ``.import`` of a Windows file. Python's sqlite3 then raises 'Could
        not decode to UTF-8 column' for the whole read: one such row, in a request or a routing label, stopped
        every row after it from being forwarded, for good."""
        conn = connect(self.path)
        conn.text_factory = self._text
        return conn

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable += 1
            if self.undecodable == 1:
                log.warning("routing log %s: a text in it is not UTF-8 (written by another program?): sent to %s with "
                            "U+FFFD in place of what could not be read (the file keeps the bytes)", self.path,
                            self.target)
            return raw.decode("utf-8", "replace")

    def _labels_waiting(self) -> bool:
        return self._conn.execute("SELECT 1 FROM _label_outbox LIMIT 1").fetchone() is not None

    def _forward_requests(self) -> bool:
        rows = []
        size = 0
        cursor = self._conn.execute(_SELECT_REQUESTS, (self.batch,))
        for row in cursor:  # read one by one: a batch of giant rows ends before the rest are read
            rows.append(row)
            size += sum(len(v) for v in row if type(v) is str)
            if size >= BATCH_CHARS:
                break
        cursor.close()
        if not rows:
            self._backlog = (0, None)
            return False
        self._database()
        seqs = [r[0] for r in rows]
        latest: dict[str, tuple] = {}
        for r in rows:
            if r[2] is not None:  # LEFT JOIN: an entry whose request row is gone has nothing to send
                latest[r[1]] = tuple(r[2:])
        ids = list(latest)
        attempts = [tuple(a) for a in self._conn.execute(
            f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE request_id IN "
            f"({', '.join('?' * len(ids))}) ORDER BY request_id, seq", ids).fetchall()] if ids else []
        self._send(list(latest.values()), attempts)
        self._conn.execute(f"DELETE FROM _outbox WHERE seq IN ({', '.join('?' * len(seqs))})", seqs)
        if self._backoff:  # the outage's error line said the rows wait: say when they go (it said nothing)
            log.warning("routing log: %s takes rows again (%d failures so far); the rows that waited in %s are being "
                        "sent", self.target, self.failures, self.path)
        self._backoff = 0.0
        return True

    def _send(self, requests: list[tuple], attempts: list[tuple]) -> None:
        """One transaction for the batch; if PostgreSQL refuses it for its content, request by request,
        repaired. An unreachable database raises (the batch stays queued); so does one that refuses every
        write whatever the row (a read-only transaction after a failover to a standby or
        ``default_transaction_read_only``, a revoked privilege, a dropped table, a constraint the spool does not
        have — :mod:`.drift`): only a row refused for its own values (a data error) is counted as refused and no
        longer blocks the rest."""
        from psycopg import DataError, IntegrityError

        from modelyard.ledger.pg import row_too_big

        requests, nul = without_nul(requests)
        attempts, nul_attempts = without_nul(attempts)
        if nul or nul_attempts:
            self._said_nul(nul + nul_attempts)
        codec = self._pg.narrow_codec
        requests, narrow = narrowed(requests, codec)
        attempts, narrow_attempts = narrowed(attempts, codec)
        if narrow or narrow_attempts:
            self._said_narrowed(narrow + narrow_attempts)
        try:
            said, said_attempts = self._write(requests, attempts)
        except (LogUnavailable, IntegrityError):  # integrity: every row satisfied the same constraints in the spool,
            raise  # so one PostgreSQL adds (a newer modelyard's NOT NULL column, a CHECK) refuses them all (drift.py)
        except Exception as exc:  # a value PostgreSQL will not store: find the row, repair it
            self._failed(exc)
        else:  # committed: whatever the read-back below meets, the batch is not sent again
            self.forwarded += len(requests)
            if 0 <= said < len(requests) or 0 <= said_attempts < len(attempts):
                try:
                    self._kept(requests, attempts)
                except Exception as exc:  # the connection lost right after COMMIT: the rows are there, unchecked
                    log.debug("routing log %s: could not read back a batch it took: %s", self.target, exc)
            return
        by_request: dict[str, list[tuple]] = {}
        for a in attempts:
            by_request.setdefault(a[0], []).append(a)
        for request in requests:
            fixed = tuple(pg_safe(v) for v in request)
            try:
                self._write([fixed], [tuple(pg_safe(v) for v in a) for a in by_request.get(request[0], [])])
                self.forwarded += 1
            except Exception as exc:
                # the row's own refusal: a value psycopg cannot encode (it encodes text itself), a data error, a limit
                # of the server's (an index that cannot hold its text); anything else is the database's: all wait
                if not isinstance(exc, DataError | UnicodeError) and not row_too_big(exc):
                    raise
                if (table_s := altered(self._pg, exc)) is not None:  # a column altered by hand: every row waits
                    raise table_s from None
                self._failed(exc)
                self.refused += 1

    def _write(self, requests: list[tuple], attempts: list[tuple]) -> tuple[int, int]:
        """:func:`.sink.write_batch` on the keys the tables have. A DBA who partitions the log's tables by time (the
        usual answer for a log this size: pg_partman, declarative partitioning) must widen their primary keys to hold
        the partition column — ``(id, ts)`` — and PostgreSQL then refused every upsert that names ``(id)`` ('there is no
        unique or exclusion constraint matching the ON CONFLICT specification', 42P10): nothing reached the log again,
        with no word of why. The keys the tables have now are looked up then, and used from then on."""
        try:
            return write_batch(self._pg, requests, attempts, self._keys)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != "42P10":
                raise
            keys = keys_found(self._pg)
            if keys is None or keys == self._keys:
                raise
        log.warning("routing log %s: its tables' unique keys changed — requests (%s), attempts (%s) (partitioned by "
                    "hand?): rows are upserted on those keys from now on", self.target, ", ".join(keys.requests),
                    ", ".join(keys.attempts))
        self._keys = keys
        return write_batch(self._pg, requests, attempts, keys)

    def _kept(self, requests: list[tuple], attempts: list[tuple]) -> None:
        """PostgreSQL took the batch without an error but said it inserted fewer rows than it was sent: a
        ``BEFORE INSERT`` trigger that returns NULL (a DBA's filter, an old partitioning trigger whose ``ELSE`` drops
        what no partition takes) discards a row silently, and every such row was counted forwarded and dropped from
        the outbox while it was nowhere in the shared log. Rows a trigger moved to a child table (inheritance
        partitioning, https://www.postgresql.org/docs/current/ddl-partitioning.html: ``INSERT INTO child …; RETURN
        NULL``) are read back through the parent and are fine: only the ones that cannot be read back count. Attempts
        are read back too (a trigger on ``attempts`` left requests without the models they tried, unsaid)."""
        ids = [r[0] for r in requests]
        gone = len(ids) - len(present(self._pg, "SELECT id FROM requests WHERE id IN ({})", ids))
        self.forwarded -= gone
        sent = {(a[0], a[1]) for a in attempts}
        held = present(self._pg, "SELECT request_id, seq FROM attempts WHERE request_id IN ({})",
                       list({a[0] for a in attempts}), whole=True)
        lost_attempts = len(sent - held)
        what = " and ".join(f"{n} {kind} row(s)" for n, kind in ((gone, "request"), (lost_attempts, "attempt")) if n)
        if what:
            self._said_discarded(what, gone + lost_attempts,
                                 " and ".join(t for n, t in ((gone, "requests"), (lost_attempts, "attempts")) if n))

    def _said_discarded(self, what: str, rows: int, tables: str) -> None:
        """Count ``rows`` PostgreSQL took without an error and did not keep, and say so (an ERROR line at most once
        per _LOG_EVERY s; degraded)."""
        self.discarded += rows
        now = time.time()
        self.last_error = (f"PostgreSQL took {what} without an error but did not keep them "
                           f"({self.discarded} row(s) so far): a trigger or rule on its table {tables} discards them "
                           f"(a BEFORE INSERT trigger that returns NULL; psql's \\d {tables.split()[0]} lists them) — "
                           f"they are kept only in {self.path}")
        self._last_error_at = now
        if now - self._discarded_logged >= _LOG_EVERY:
            self._discarded_logged = now
            log.error("routing log %s: %s", self.target, self.last_error)

    def _said_nul(self, rows: int) -> None:
        """Count rows sent with NUL replaced and say so (at most once per _LOG_EVERY s): stored, not a failure."""
        self.nul_replaced += rows
        now = time.time()
        if now - self._nul_logged >= _LOG_EVERY:
            self._nul_logged = now
            log.warning("routing log: %d row(s) so far held a NUL character, which PostgreSQL's text refuses: sent to "
                        "%s with U+FFFD in its place (the local file %s keeps the original)", self.nul_replaced,
                        self.target, self.path)

    def _said_narrowed(self, rows: int) -> None:
        """Count rows sent with characters the database's encoding lacks replaced, and say so (at most once per
        _LOG_EVERY s): stored, not a failure."""
        self.narrowed += rows
        now = time.time()
        if now - self._narrowed_logged >= _LOG_EVERY:
            self._narrowed_logged = now
            log.warning("routing log: %d row(s) so far held characters the database's encoding (%s) cannot store: sent "
                        "to %s with '?' in their place (the local file %s keeps the original); a database created with "
                        "ENCODING 'UTF8' keeps every character", self.narrowed, self._pg.server_encoding, self.target,
                        self.path)

    def _hold_lock(self) -> bool:
        """One forwarder per spool file: whoever holds the lock; the others stand by and retry."""
        if self._lock_fd is None:
            self._lock_fd = hold_exclusive(f"{self.path}.forward-lock")
        return self._lock_fd is not None

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _drop_pg(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.close()
            self._pg = None

    def _failed(self, exc: BaseException) -> None:
        now = time.time()
        self.failures += 1
        from modelyard.ledger.pg import hint

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""  # not psycopg's LINE 1: … ^ lines
        if self._aborted and self._stuck:  # the watchdog cut it: what the server said of it, not 'connection closed'
            first = self._stuck
        self.last_error = dburl.scrub(f"{type(exc).__name__}: {first}{hint(exc)}", self.url)[:500]
        self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, self._backoff * 2))
        if now - self._last_logged >= _LOG_EVERY:
            self._last_logged = now
            log.error("routing log: cannot forward to %s (%s; %d failures so far); answers go on, rows wait in %s",
                      self.target, self.last_error, self.failures, self.path)
        self._last_error_at = now
