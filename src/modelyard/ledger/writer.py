"""Write routing-log rows off the request path, in batches.

The router calls :meth:`LogWriter.submit`, which only appends to an in-memory queue
(microseconds). A background thread drains the queue and writes everything it finds in
one transaction, so throughput grows with load instead of paying one fsync per request.
:meth:`flush` waits until everything submitted so far is committed — front-ends call it
before they report an answer as delivered, so a crash cannot lose a request the user saw.

The writer never dies silently and never drops a row for its content: a batch that fails
is written again row by row with its values repaired (text that UTF-8 cannot encode, such
as a lone UTF-16 surrogate from a JavaScript server, gets U+FFFD; out-of-range numbers are
clamped), so one bad row cannot take the rows batched with it down. Every failure is
counted and kept for :meth:`health` (``/healthz`` says ``degraded``, ``/metrics`` counts it);
a row that still cannot be stored is counted as lost, and nobody waits on a writer that
stopped.

The queue is bounded (``max_queue``): when the disk stalls for long, a request past the bound is
dropped and counted (``dropped`` in /healthz and /metrics, degraded) instead of growing memory
until the process dies; its answer is not held back.

A store that refuses writes for a while (disk full, the file locked by another process past the busy
timeout, a read-only directory) loses nothing: the rows it refused are held, counted as settled so nobody
waits on them, and written again every few seconds (``RETRY_PAUSE``) until the store takes them — within
the same ``max_queue`` bound. Rows still refused when the writer closes are kept in a file that the next writer of
the log writes (:mod:`.held`); only those no file took either are counted as lost. A file that cannot be opened at
start for such a state (its disk full, another process holding its lock: :func:`.store.passing`) is the same episode:
the writer starts without it, holds every row and tries to open it every few seconds — a start ended there before,
and under a service manager's restart no answer came until the disk was freed. A place somebody must change (a
read-only directory, permissions, another program's file) is still refused at start: it never takes the rows itself.
With ``log.url`` the file is the spool: the forwarder opens it once the writer can (ledger/forward.py) — a full local
disk at start refused to start then, the PostgreSQL log reachable or not.

Rows of the log's other tables that are written on the request path (the orchestrator's routing
decisions) go through the same queue and thread as a :class:`Row` (:meth:`LogWriter.submit_row`):
one writer per log file, one transaction per batch, the same repair, accounting and flush.

Checkpoints (copying the write-ahead log into the database file, two fsyncs) run in a thread of their
own on a connection of their own, never inside a commit: with SQLite's automatic checkpoint, every
~100th commit also did the checkpoint before returning, and the request waiting for that commit
waited for both fsyncs (the p99 tail of the gateway at concurrency 1, issue #15). A checkpoint copies what was
committed before it started; rows committed while it runs (its fsyncs take milliseconds, and a busy gateway commits
every millisecond) stay in the write-ahead log, and SQLite starts that file over only once a checkpoint has copied all
of it. Under steady traffic that never happened: 3,000 rows committed one at a time left a 110 MB write-ahead log
(37 KB a row), growing until traffic paused for CHECKPOINT_IDLE. Past WAL_BOUND the writer itself folds the rest in,
between two commits on its own connection, where nothing can be appended meanwhile; its next commit starts the file
over. That holds the next commit for the fold's fsyncs (milliseconds), once every ~1,800 rows written one per commit.
A checkpoint that is due waits for a pause in the commits (CHECKPOINT_QUIET, round 38): between bursts of requests
its fsyncs no longer run beside one; traffic that never pauses has it after another CHECKPOINT_EVERY rows at most.

A waiter that is alone on its event loop may wait for the commit *blocking*, for a short bound
(``wait_written(block=...)``): the loop's thread sleeps on a lock (the GIL released) that the writer
opens right after the commit, instead of going through the loop's selector, its self-pipe and a
``call_soon_threadsafe`` — a thread wake-up and a loop iteration fewer per answer (issue #15). Only
while the writer is idle or has been busy for less than the bound: a stalled disk costs the loop at
most one bound per stall, then every waiter waits asynchronously again until the writer catches up.

Waiters count: a row is settled (committed, lost or held) once ``written + errors + held`` reaches its place. Places
are given in the order rows enter the queue (``_queued``, under ``_order`` together with the put), and the one writer
thread settles the queue in that order — so a count that reaches a row's place means that row and every one before
it are settled. A row an event loop holds until its iteration's end has no place yet: its waiter learns its target
at that hand-over (``_after``), not at submit. Counting places at submit instead (as before round 26) let another
thread's later row, queued at once, settle first and release the waiter of a row still held (issue #15's caveat of
round 22; tests/unit/test_log_writer_order.py).

A request alone on its loop goes further (``submit(crowd=False)``, :meth:`LogWriter._write_here`): when every row
that has a place is settled and the writer thread is idle, its row is committed on the submitting thread at the
hand-off itself, so neither thread has to wake the other (issue #15, rounds 22 and 26: the c=1 tail was those two
wake-ups). The connection is shared under one lock (``_writing``) the writer thread takes per batch and the loop only
ever *tries*; the loop's transaction starts with ``BEGIN IMMEDIATE`` at a busy timeout of 0, so another process
holding the log's write lock sends the row to the writer thread instead of holding the loop. The check, the row's
place and its commit (or, failing, its place in the queue) happen under ``_order``: no row can be queued ahead of it
meanwhile. Every other case (rows in flight, rows held for a retry, a fold due, the file replaced, a slow last commit)
goes through the queue as before.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import math
import os
import queue
import socket
import sqlite3
import threading
import time
from _thread import allocate_lock
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelyard.config import dburl
from modelyard.config.schema import LogConfig
from modelyard.ledger import held as held_file
from modelyard.ledger.bounds import Bounds
from modelyard.ledger.damaged import alone, damaged, set_aside, sqlite_file
from modelyard.ledger.db import connect, orphaned, set_orphan_aside
from modelyard.ledger.drift import refused_by_table, requests_changed, table_gone
from modelyard.ledger.episode import Refusal
from modelyard.ledger.filesystem import on_network
from modelyard.ledger.replaced import keep_old
from modelyard.ledger.reserve import reserve_ahead
from modelyard.ledger.retention import Pruner
from modelyard.ledger.same_file import Change, SameFile, WriteAhead, identity, take_over
from modelyard.ledger.store import LogUnavailable, held_by_another, hidden_cause, passing, where_to_fix
from modelyard.outcomes import AttemptOutcome
from modelyard.router.clock import current_loop, running_loop
from modelyard.router.records import RequestRecord
from modelyard.types import repair_text

log = logging.getLogger(__name__)

#: said of rows kept at close in the temp directory (no other place took them: a full disk)
_TEMPORARY = (" — a temporary directory, which a reboot empties (and a service's stop under systemd's PrivateTmp=yes): "
              "free space on the log's disk and start modelyard before then, or move that file into this user's state "
              "directory (STATE_DIRECTORY, XDG_STATE_HOME) on another disk, where the next start also looks")

_STOP = object()
_NOTHING = object()  # what _take gives when its timeout passed
#: how long after its last failure the writer still reports itself degraded
DEGRADED_FOR = 300.0
_INT64 = 2**63 - 1
#: failures that belong to one row's values, not to the database
_ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError, ValueError, TypeError,
               OverflowError)
#: seconds between two tries of rows the store refused (disk full, locked): doubled per failed try up to the last
RETRY_PAUSE = (0.25, 0.5, 1.0, 2.0, 4.0)
#: SQLite's busy timeout for the writer's connection, in seconds (how long a commit waits for another process's lock
#: before the rows are held for a later try). Another modelyard process holds it for milliseconds (a commit, a batch of
#: a retention pass: 0.22 s at most measured); longer is someone else (a sqlite3 shell left in a transaction, a backup
#: tool), and every answer in flight waited that long, up to the gateway's LOG_WAIT (5 s), for its row
BUSY_TIMEOUT = 2.0
#: seconds the writer waits at start for another process's lock on the file (a migration, a retention batch of
#: another modelyard process: milliseconds); past it the writer starts without the file and holds its rows
START_BUSY = 10.0
#: seconds a try of rows held because another process kept the write lock past BUSY_TIMEOUT waits for it: each answer
#: meanwhile waits this long for its row to be held with them, not LOG_WAIT (each waited 5 s while a sqlite3 shell kept
#: a transaction open, and 10-30 s were spent per try)
RETRY_BUSY = 0.1
#: at most one log line per this many seconds while writes keep failing (a full disk fails every batch)
_LOG_EVERY = 10.0
#: rows committed between two checkpoints (~9 pages each when written one per commit: ~2,300 pages at most,
#: SQLite's automatic checkpoint runs at 1,000); a quiet writer's rows are checkpointed after CHECKPOINT_IDLE s
CHECKPOINT_EVERY = 256
CHECKPOINT_IDLE = 2.0
#: seconds without a commit (and with no batch being written) a due checkpoint waits for, so that it runs between
#: bursts rather than beside the requests of one: its fsyncs and the writeback of the log's ~7-9 MB per 256 rows took
#: ~6-25 ms, and the requests that overlapped it made serve's p99 at one client (issue #15). A due checkpoint waits
#: for such a pause for at most another CHECKPOINT_EVERY rows: traffic that never pauses is checkpointed all the same
CHECKPOINT_QUIET = 0.005
#: write-ahead log bytes past which the writer checkpoints the rest itself, between two commits (module docstring)
WAL_BOUND = 64 * 1024 * 1024
#: write-ahead log bytes a checkpoint leaves uncopied past which a reader holding an old snapshot is said (_starved)
WAL_STARVED = 2 * WAL_BOUND
#: bytes each frame of the write-ahead log adds to its page (sqlite.org/fileformat.html, "WAL File Format")
WAL_FRAME_HEADER = 24
#: bytes the write-ahead log keeps once a checkpoint emptied it. A reader that holds a snapshot (a GUI browsing the
#: file, a ``sqlite3`` shell left in a transaction) stops checkpoints from getting past it, so the log grows meanwhile;
#: SQLite then reuses the file from its start but never shrinks it: without a limit it stayed that size for good.
#: Above what steady traffic grows it to (WAL_BOUND and the rows of one checkpoint's run): a log started over keeps
#: its blocks and its commits overwrite them. Cut back to 4 MiB, every cycle grew the file again from there — each
#: commit's pwrites appended to it (new blocks, new page-cache pages), and the cut itself freed them (issue #15)
WAL_LIMIT = 80 * 1024 * 1024
#: bytes of the write-ahead log's next blocks the checkpoint thread has allocated before commits append to them (more
#: than the rows of one checkpoint's run add: 2 * CHECKPOINT_EVERY rows at most, ~19 MB at one row per commit): a
#: commit that appends to a block the file does not have yet waits for the checkpoint's fsync on ext4 (reserve.py)
WAL_AHEAD = 32 * 1024 * 1024

#: a commit that took longer than this (seconds) sends the next lone row to the writer thread rather than commit it on
#: the loop's (a slow disk must not hold the loop); the same bound as the gateway's blocking wait (intake.SOLE_WAIT)
QUICK_COMMIT = 0.002

#: seconds a request may be stamped before the newest in the log before the clock is said to have gone back (requests
#: are stamped when they start and written when they end: a long one lands after shorter, later ones)
CLOCK_BACK = 3600.0

#: the host every row this process writes was answered on (``log`` shows it when a shared log has several)
HOST = socket.gethostname()

REQUEST_COLUMNS = (
    "id", "parent_id", "ts", "agent", "model", "is_local", "outcome", "fallback_reason", "n_attempts",
    "queue_wait_ms", "ttft_ms", "total_ms", "tokens_in", "tokens_out", "tokens_per_s", "cost_usd",
    "prompt", "response", "thinking", "error", "finish_reason", "host", "kind",
)
ATTEMPT_COLUMNS = (
    "request_id", "seq", "ts", "agent", "model", "provider", "outcome", "reason", "detail", "queue_wait_ms",
    "ttft_ms", "duration_ms", "tokens_in", "tokens_out", "tokens_per_s", "cost_usd", "backend", "cache_read_tokens",
    "cache_write_tokens", "cache_write_1h_tokens",
)
_INSERT_REQUEST = (f"INSERT OR REPLACE INTO requests ({', '.join(REQUEST_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})")
_INSERT_ATTEMPT = (f"INSERT OR REPLACE INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})")


#: no model's server known (a writer built without a config: tests, tools)
_NO_BACKENDS: Mapping[str, str] = MappingProxyType({})

#: rows per INSERT statement at most (23 values each: within SQLite's oldest limit of 999 variables)
GROUP = 32
_GROUPED: dict[tuple[str, int], str] = {}
_flat = itertools.chain.from_iterable


@dataclass(frozen=True, slots=True)
class Row:
    """One row for a table beside ``requests``: an ``INSERT`` with ``?`` placeholders and its values."""

    insert: str
    values: tuple


#: characters of each text (prompt, answer, thinking) the log keeps by default: ``log.max_text_chars``'s
MAX_TEXT_CHARS: int | None = LogConfig.model_fields["max_text_chars"].default


#: characters of an error text (a request's ``error``, an attempt's ``detail``) the log keeps: an exhausted chain
#: lists every attempt's words, and a server's error page or a relay's traceback reaches a row whole wherever a
#: provider path does not cut it — one 5 MB page made a 5 MB row in the file, the spool and PostgreSQL. The reason
#: has its own column and the text's head names it; the rest is said as cut
MAX_ERROR_CHARS = 8_000


def capped(text: str | None, limit: int | None, setting: str = "log.max_text_chars") -> str | None:
    """``text`` as the log keeps it: whole up to ``limit`` characters, else its first ``limit`` and a line saying how
    much was cut (a pasted file or a long answer made one row megabytes; its token counts are kept whole).
    ``setting``: what set the limit, as the line says it."""
    if text is None or limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n[… cut: {len(text) - limit:,} more characters not kept ({setting}: {limit:,})]"


def error_capped(text: str) -> str:
    """An error text past :data:`MAX_ERROR_CHARS`, cut as :func:`capped` cuts (the caller checks the length: one
    comparison per row on the hot path)."""
    return capped(text, MAX_ERROR_CHARS, "the log's cap on an error text") or ""


def request_row(r: RequestRecord, local_models: frozenset[str], max_text: int | None = MAX_TEXT_CHARS) -> tuple:
    """The ``requests`` row. Outcomes (StrEnum members) go in as their values, plain ``str``s of the same text:
    sqlite3 binds a ``str`` subclass only after asking it for an adapter, ~3,500 instructions per value (callgrind,
    issue #15 round 12). A reason is None on an answered request (an enum, and adapted, on a failed attempt only)."""
    reason = None  # the first attempt's that did not answer (a loop: no generator per row)
    for a in r.attempts:
        if a.outcome is not AttemptOutcome.OK and a.reason:
            reason = a.reason
            break
    return (
        r.id, r.parent_id, r.ts, r.agent, r.model,
        None if r.model is None else int(r.model in local_models),
        getattr(r.outcome, "_value_", r.outcome), reason, len(r.attempts), r.queue_wait_ms, r.ttft_ms, r.total_ms,
        r.tokens_in, r.tokens_out, r.tokens_per_s, r.cost_usd, capped(r.prompt, max_text), capped(r.response, max_text),
        capped(r.thinking, max_text), r.error if r.error is None or len(r.error) <= MAX_ERROR_CHARS
        else error_capped(r.error), r.finish_reason, HOST, None if r.kind is None else r.kind._value_,
    )


def locked(exc: BaseException) -> bool:
    """SQLite's SQLITE_BUSY ('database is locked', any extended code): another connection holds the lock."""
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", 0) & 0xFF == 5


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def attempt_rows(r: RequestRecord, backends: Mapping[str, str] = _NO_BACKENDS) -> list[tuple]:
    """The ``attempts`` rows, the outcome as its plain value (see :func:`request_row`). ``backends``: model name ->
    the server it is on in the writing process's config (:func:`modelyard.ledger.probes.backend_of`), so a reader can
    tell this config's ``qwen3.5`` from another's sharing the log (one dict look-up per attempt)."""
    rid, agent = r.id, r.agent
    backend = backends.get
    return [(rid, seq, a.started_at, agent, a.model, a.provider, getattr(a.outcome, "_value_", a.outcome),
             a.reason or None,
             (a.detail if len(a.detail) <= MAX_ERROR_CHARS else error_capped(a.detail)) if a.detail else None,
             a.queue_wait_ms, a.ttft_ms, a.duration_ms, a.tokens_in, a.tokens_out,
             a.tokens_per_s, a.cost_usd, backend(a.model), a.cache_read_tokens, a.cache_write_tokens,
             a.cache_write_1h_tokens)
            for seq, a in enumerate(r.attempts)]


def repair_value(value: Any) -> Any:
    """A value SQLite accepts, as close to the original as possible (never dropped)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return max(-_INT64, min(_INT64, value))
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str):
        return repair_text(value)
    return repair_text(str(value))


def _repaired(row: tuple) -> tuple:
    return tuple(repair_value(v) for v in row)


@dataclass(frozen=True, slots=True)
class WriterHealth:
    """What /healthz and /metrics show about the routing log."""

    alive: bool
    written: int
    lost: int
    repaired: int
    failures: int
    queued: int
    last_error: str | None
    last_error_age_s: float | None
    #: requests dropped because the queue was full (never written)
    dropped: int = 0
    #: rows the store refused (disk full, locked), held in memory and tried again until it takes them
    held: int = 0
    #: rows still refused at close, kept in a file the next process writes (ledger/held.py)
    saved: int = 0

    @property
    def degraded(self) -> bool:
        recent = self.last_error_age_s is not None and self.last_error_age_s < DEGRADED_FOR
        return not self.alive or recent


class LogWriter:
    def __init__(self, path: str | Path, *, local_models: Iterable[str] = (), max_batch: int = 2000,
                 max_queue: int = 50_000, keep_days: float | None = None, max_text: int | None = MAX_TEXT_CHARS,
                 url: str | None = None, backends: Mapping[str, str] = _NO_BACKENDS):
        """``url``: ``log.url``, the PostgreSQL log ``keep_days`` prunes too (this writer never writes there; the file
        is then the spool its forwarder reads);
        ``backends``: each model's server in this config, kept on its attempts (:func:`attempt_rows`)."""
        self.path = Path(path)
        #: characters of each text kept (None: all)
        self.max_text = max_text
        self.local_models = frozenset(local_models)
        self.backends = dict(backends)
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.dropped = 0
        #: called after every commit (the PostgreSQL forwarder looks at once instead of at its next poll)
        self._on_commit: list[Callable[[], None]] = []
        #: rows committed / rows that could not be stored (lost) / rows stored after repair
        self.written = 0
        self.errors = 0
        self.repaired = 0
        #: failed write attempts, recovered or not (each is also in last_error)
        self.failures = 0
        self.last_error: str | None = None
        self._last_error_at: float | None = None
        self._last_logged = 0.0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        #: rows accepted (the bound, /healthz's queued, flush's target); guarded by _order
        self._submitted = 0
        #: rows given their place in the commit order: queued, or committed on their own thread (module docstring);
        #: guarded by _order, which is held from the increment through the put so places follow the queue's order
        self._queued = 0
        self._order = allocate_lock()
        #: rows the writer thread has taken off the queue (the bound counts the rest)
        self._taken = 0
        #: rows submitted on an event loop, handed to the queue together at the loop's next iteration
        self._held: dict[asyncio.AbstractEventLoop, list[RequestRecord | Row]] = {}
        self._done = threading.Condition()
        #: held for a batch's whole write (the connection, its checks and accounting): by the writer thread per batch,
        #: tried (never waited for) by a thread committing a lone row itself (_write_here)
        self._writing = allocate_lock()
        #: per loop, [target, future, ...]: the waiters whose rows the loop still holds, the target set at the hand-over
        #: (each list touched from its loop's thread only)
        self._after: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        #: how long the last commit took (s): past QUICK_COMMIT the next lone row goes to the writer thread
        self._last_commit = 0.0
        #: rows committed on their submitting thread (_write_here)
        self.written_here = 0
        #: seconds the connection waits for another process's write lock: BUSY_TIMEOUT, RETRY_BUSY while rows are held
        #: because it was held past that, 0 for _write_here's commits
        self._patience = BUSY_TIMEOUT
        #: what the writer thread's batches wait for that lock: BUSY_TIMEOUT, or RETRY_BUSY while it keeps it
        self._retry_busy = BUSY_TIMEOUT
        #: the last batch was refused because another process held the write lock (writer thread only)
        self._locked_out = False
        #: threads waiting in flush() on _done (the commit notifies only then); guarded by _done
        self._flushing = 0
        #: (target count, future) of async callers waiting in wait_written(); guarded by _done
        self._async_waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: the time bounds of each loop's async waiters (ledger/bounds.py), each touched from its loop only
        self._bounds: dict[asyncio.AbstractEventLoop, Bounds] = {}
        #: (target count, held lock) of the one caller waiting blocking in wait_written(block=); guarded by _done
        self._blocked: tuple[int, Any] | None = None
        #: when the writer thread took the batch it is writing (None: waiting for rows)
        self._busy_since: float | None = None
        #: items the store refused (disk full, locked), in order, tried again first (writer thread only)
        self._retry: list[RequestRecord | Row] = []
        #: how many of them there are (read by waiters: held rows count as settled); guarded by _done
        self.held = 0
        self._failed_tries = 0
        #: when held rows are tried again (time.monotonic()); the last try stored none of its rows (writer thread only)
        self._retry_at = 0.0
        self._refusing = False
        #: says when rows start to be held and when they are written (:mod:`.episode`)
        self._refusal = Refusal(self.path, max_queue)
        #: rows the store still refused at close, kept in a file for the next start (ledger/held.py)
        self.saved = 0
        #: the write-ahead files were deleted under this connection: each commit is copied into the file at once
        self._unshared = False
        #: another process made write-ahead files of its own since, and that was said
        self._anew_said = False
        #: the write-ahead log's growth past WAL_STARVED was said (until it is back under WAL_BOUND)
        self._starved_said = False
        #: connections the writer made so far, less one: the checkpoint thread opens its own again when this changes
        self._generation = 0
        #: (the old file's identity, what was said of its rows) once a file moved over it was taken over
        #: (:mod:`.replaced`)
        self._kept_old: tuple[tuple[int, int] | None, str | None] | None = None
        #: why the file could not be opened yet (a full disk, another process's lock at start): rows are held until it
        #: opens (:meth:`_open_late`); None once it is open
        self._unopened: str | None = None
        if orphaned(self.path) and (said := set_orphan_aside(self.path)):  # before SQLite deletes it (ledger/orphan.py)
            log.error("%s", said)
            self.failures += 1
            self.last_error = f"OrphanedWriteAhead: {said}"[:500]
            self._last_error_at = self._last_logged = time.time()
        for tries in itertools.count(1):
            before = _inode(self.path)
            try:
                self._open(START_BUSY)
                break
            except (sqlite3.Error, OSError) as exc:  # a read-only directory or file, a full disk, not a database
                if _inode(self.path) != before and tries < 3:
                    continue  # replaced meanwhile (another process set a damaged file aside): the new one, again
                # a full disk, a lock: starts, its rows held until the file opens — with log.url too: the forwarder
                # opens the spool once it can (ledger/forward.py)
                if passing(self.path, exc):
                    self._unopened = self._why_unopened(exc)
                    spool = (f"; it is the spool of {dburl.redact(url)}: the rows reach it once written here"
                             if url else "")
                    self._refusal.unopened(self._unopened + spool)  # its one line: not _failed's as well
                    self.failures += 1
                    self.last_error = f"{LogUnavailable.__name__}: {self._unopened}"[:500]
                    self._last_error_at = self._last_logged = time.time()
                    break
                if said := hidden_cause(self.path, exc) or held_by_another(self.path, exc):
                    raise LogUnavailable(said) from None
                if not damaged(exc):
                    raise LogUnavailable(f"routing log {self.path}: cannot be opened for writing ({exc}); check that "
                                         f"this user can write the file and its directory; {where_to_fix(self.path)}"
                                         ) from None
                if not sqlite_file(self.path):  # another program's file named by mistake: left as it is
                    raise LogUnavailable(f"routing log {self.path}: not a SQLite file (SQLite: {exc}), left as it "
                                         f"is: name a new file for the log; {where_to_fix(self.path)}") from None
                self._open_anew(exc)
                break
        self._closed = False
        self._thread = self._start()
        #: rows committed since the last checkpoint (writer thread only); set _checkpoint_due past CHECKPOINT_EVERY
        self._uncheckpointed = 0
        self._checkpoint_due = threading.Event()
        #: time.monotonic() of the last commit (either thread): a checkpoint waits for a pause (CHECKPOINT_QUIET)
        self._committed_at = 0.0
        #: set by the checkpoint thread when the write-ahead log is past WAL_BOUND: the writer folds the rest in
        self._fold = False
        #: started by the first CHECKPOINT_EVERY rows (a smaller log is checkpointed when it closes)
        self._checkpoints: threading.Thread | None = None
        #: ``log.keep_days``: deletes older requests from the file (and PostgreSQL's log), hourly (ledger/retention.py)
        self.retention = Pruner(self.path, keep_days, url=url) if keep_days else None
        atexit.register(self.close)

    def _why_unopened(self, exc: BaseException) -> str:
        return (hidden_cause(self.path, exc) or held_by_another(self.path, exc)
                or f"routing log {self.path}: cannot be opened ({exc})")

    def _open_late(self) -> bool:
        """Try again to open a file that could not be opened at start (writer thread, holding ``_writing``); False
        while it still cannot be — the rows stay held, the next try after a pause (RETRY_PAUSE). Another process's lock
        is waited for RETRY_BUSY, not 10 s: the answers whose rows come meanwhile wait for this try."""
        try:
            self._open(RETRY_BUSY)
        except (sqlite3.Error, OSError) as exc:
            self._unopened = self._why_unopened(exc)
            self._failed(LogUnavailable(self._unopened))
            return False
        self._unopened = None
        return True

    def _open(self, busy: float = 10.0) -> None:
        """Open the file and read what the writer needs of it; on failure nothing stays open."""
        self._conn = self._connect(busy)
        try:
            self._file = SameFile(self.path, content=True)
            self._write_ahead = WriteAhead(self.path)
            #: rows an earlier writer kept at its close (the store refused them then)
            self.recovered = held_file.load(self._conn, self.path)
            #: the newest request's time in the log (a much older one written after it: the clock went back)
            self._newest: float = self._conn.execute("SELECT COALESCE(MAX(ts), 0) FROM requests").fetchone()[0]
        except BaseException:
            with contextlib.suppress(Exception):
                if hasattr(self, "_file"):
                    self._file.release()
            self._conn.close()
            raise
        self._clock_said = False
        if remote := on_network(self.path):  # it opened, but WAL's locks may not hold there: said, not refused
            log.warning("routing log %s: %s; it opened, but expect 'disk I/O error' or 'database is locked'",
                        self.path, remote)

    def _open_anew(self, exc: BaseException) -> None:
        """The file SQLite found damaged at start, set aside (:mod:`.damaged`), and a new one opened in its place:
        said as an ERROR and kept in /healthz (degraded) — a refusal here stopped ``serve`` at every restart. Another
        process starting at once may have set it aside and made the new file already: that one is opened, never
        moved aside in its turn (looked at again under the directory's lock, :func:`.damaged.alone`)."""
        with alone(self.path):  # another process starting at once waits here, then opens the new file
            try:
                self._open()
                return  # another process set it aside meanwhile
            except (sqlite3.Error, OSError) as again:
                if not damaged(again):
                    raise LogUnavailable(f"routing log {self.path}: cannot be opened for writing ({again}); "
                                         f"{where_to_fix(self.path)}") from None
                aside, said = set_aside(self.path, again)
            if aside is None:
                raise LogUnavailable(said) from None
            log.error("%s", said)
            try:
                self._open()
            except (sqlite3.Error, OSError) as again:
                raise LogUnavailable(f"{said}; the new file cannot be opened either ({again})") from None
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {said}"[:500]
        self._last_error_at = self._last_logged = time.time()

    def _connect(self, busy: float = 10.0) -> sqlite3.Connection:
        conn = connect(self.path, busy=busy)
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it, off the commit path
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        return conn

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="modelyard-log-writer", daemon=True)
        #: False once the writer thread's loop has ended (an attribute read per row, not is_alive()'s lock)
        self._running = True
        thread.start()
        return thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def held_items(self) -> list[RequestRecord | Row]:
        """The rows held now because the store refuses them (a full disk, another process's lock), oldest first: a
        label of a correction looks for its routing decision there (agents/decision_log.held_decision). Any thread:
        the writer thread replaces the list, never changes it in place."""
        return list(self._retry)

    def submit(self, record: RequestRecord, *, crowd: bool = False) -> None:
        """Queue a finished request (with its attempts) for writing. Never blocks; past ``max_queue``
        waiting requests the record is dropped and counted (nobody waits for it).

        ``crowd``: other requests are in flight on this loop, so this row goes with the rest of the loop
        iteration's rows at its end instead of waking the writer at once (one commit per iteration). Without it,
        on an event loop, the row may be committed here and now (module docstring; :meth:`_write_here`)."""
        if crowd or not self._write_here(record):
            self._enqueue(record, crowd)

    __call__ = submit

    def submit_row(self, row: Row) -> None:
        """Queue one row of another table (e.g. a routing decision); same rules as :meth:`submit`."""
        self._enqueue(row)

    def _enqueue(self, item: RequestRecord | Row, crowd: bool = False) -> None:
        if self._submitted - self._taken >= self.max_queue:
            self.dropped += 1
            what = f"a {item.insert.split()[2]} row" if isinstance(item, Row) else f"request {item.id}"
            self._failed(OverflowError(f"{self.max_queue} rows wait for the disk: {what} dropped"))
            return
        loop = _running_loop()
        with self._order:  # placed and queued in one step: another thread's row cannot be queued in between
            self._submitted += 1
            if loop is None or self._closed:
                self._queued += 1
                self._queue.put(item)
            else:  # the first row of a loop iteration wakes the writer at once (no wait at concurrency 1); the
                # rest of that iteration's rows follow in one hand-over at its end, however many requests ended in it
                held = self._held.get(loop)
                if held is None:
                    loop.call_soon(self._hand_over, loop)
                    if crowd:
                        self._held[loop] = [item]
                    else:
                        self._held[loop] = []
                        self._queued += 1
                        self._queue.put(item)
                else:
                    held.append(item)
        if not self._running and not self._closed:  # only after something killed the thread
            self._thread = self._start()

    def _write_here(self, record: RequestRecord) -> bool:
        """Commit a lone request's row on this thread now, if that keeps every rule of the queue (module docstring);
        True once the row is taken care of (committed, or placed and queued after all), False: queue it as usual.
        Only on a running event loop (the gateway's), only for the first row of a loop iteration (the rest of it are
        held and handed over together at its end, as before), and only while every row with a place is settled."""
        loop = _running_loop()
        if (loop is None or loop in self._held or self._closed or not self._running
                or self._last_commit > QUICK_COMMIT or not self._writing.acquire(False)):
            return False
        try:  # holding _writing: the writer thread is between batches, so its fields hold still
            if self._closed or self._retry or self._fold or self._unshared or self._unopened is not None:
                return False
            if self._file.gone() or self._look_at_write_ahead():  # the writer thread takes it from here
                return False
            with self._order:  # nothing is queued from here to the commit: the row keeps its place
                if self._queued != self.written + self.errors + self.held:  # rows ahead of it: via the queue
                    return False
                self._submitted += 1
                self._queued += 1
                self._held[loop] = []  # this iteration's other rows: held, handed over at its end
                loop.call_soon(self._hand_over, loop)
                started = time.perf_counter()
                try:
                    self._write_batch([record], "BEGIN IMMEDIATE")
                except BaseException as exc:  # busy (another process writes), a bad value, the disk: the writer
                    self._queue.put(record)  # thread's repairs and retries, first in line (nothing queued since)
                    if not isinstance(exc, Exception):
                        raise
                    return True
                self._last_commit = time.perf_counter() - started
            self._taken += 1
            self.written_here += 1
            self._account(1, 0)
            return True
        finally:
            self._writing.release()

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue what ``loop`` submitted since its last iteration (runs in that loop, or for a loop that stopped);
        its waiters that waited for that learn their target now (module docstring)."""
        held = self._held.pop(loop, None)
        if held:
            with self._order:
                self._queued += len(held)
                self._queue.put(held)
                target = self._queued
            if after := self._after.pop(loop, None):
                after[0] = target
                with self._done:
                    if self.written + self.errors + self.held < target and self._running and not self._closed:
                        self._async_waiters += [(target, fut) for fut in after[1:]]
                        return
                _resolve_all(after[1:])

    def _hand_over_all(self) -> None:
        """Queue what this thread's loop holds (a blocking flush() in it would otherwise wait for itself)
        and what loops that no longer run held (one stopped first); a loop running elsewhere hands its
        rows over itself, at its next iteration."""
        current = _running_loop()
        for loop in list(self._held):
            if loop is current or not loop.is_running():
                self._hand_over(loop)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the writer thread; it must be quick) after each commit."""
        self._on_commit.append(callback)

    def _settled(self, target: int) -> bool:
        return self.written + self.errors + self.held >= target or self._closed or not self._running

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record submitted so far is committed (at once if the writer has stopped). Rows another
        running loop still holds are counted, not seen: the count waits for as many rows as were submitted."""
        self._hand_over_all()
        target = self._submitted
        with self._done:
            self._flushing += 1
            try:
                self._done.wait_for(lambda: self._settled(target), timeout)
            finally:
                self._flushing -= 1
            return self.written + self.errors + self.held >= target

    async def wait_written(self, timeout: float = 10.0, *, block: float = 0.0) -> bool:
        """Async :meth:`flush`: wait, without blocking the event loop, until every record submitted so
        far is committed. Concurrent callers share the writer's next commit (group commit).

        ``block`` (seconds; for a caller that knows nothing else on its loop is waiting): first wait
        blocking for at most that long, if the writer is not stuck in an earlier batch (module docstring)."""
        loop = running_loop()  # without asyncio's getpid system call on serve's loop (issue #15)
        after: list[Any] | None = None
        if self._held.get(loop):  # rows this loop holds (the caller's among them) have no place yet
            if block:
                self._hand_over(loop)  # they go now: nothing else runs on the loop during a blocking wait
            else:  # the hand-over at the iteration's end gives the target: [target, futures...] (module docstring)
                after = self._after.get(loop)
                if after is None:
                    after = self._after[loop] = [0]
                fut = loop.create_future()
                after.append(fut)
        if after is None:
            target = self._queued
            if self.written + self.errors + self.held >= target:  # committed already (a lone row at hand-off)
                return True
            if block and self._wait_blocking(target, block):
                return self.written + self.errors + self.held >= target
            with self._done:
                if self._settled(target):
                    return self.written + self.errors + self.held >= target
                fut = loop.create_future()
                self._async_waiters.append((target, fut))
        # the bound releases the waiter (not asyncio.timeout, which cancels the task and takes the cancellation
        # back: ~3x the cost, per request, nor wait_for: an extra task); one timer for all of a loop's waiters
        bounds = self._bounds.get(loop)
        if bounds is None:  # a loop new to this writer: forget those closed since (tests run many)
            self._bounds = {other: b for other, b in self._bounds.items() if not other.is_closed()}
            bounds = self._bounds[loop] = Bounds(loop)
        bounds.add(fut, timeout)
        await fut
        if after is not None:
            target = after[0]  # 0: released at its bound before the hand-over
            return 0 < target <= self.written + self.errors + self.held
        return self.written + self.errors + self.held >= target

    def _wait_blocking(self, target: int, bound: float) -> bool:
        """Wait up to ``bound`` s on this thread for the commit of ``target`` rows; True once settled.
        False at once if the writer has been busy for longer than the bound (a stalled disk)."""
        busy = self._busy_since
        if busy is not None and time.monotonic() - busy > bound:
            return False
        lock = allocate_lock()
        lock.acquire()
        with self._done:
            if self._settled(target):
                return True
            if self._blocked is not None:  # another thread's loop waits blocking: take the async way
                return False
            self._blocked = (target, lock)
        if lock.acquire(True, bound):
            return True
        with self._done:
            if self._blocked is not None and self._blocked[1] is lock:
                self._blocked = None
                return self._settled(target)
        return True  # released by the writer between the bound and here

    def health(self) -> WriterHealth:
        at = self._last_error_at
        return WriterHealth(self._thread.is_alive() or self._closed, self.written, self.errors, self.repaired,
                            self.failures, max(0, self._submitted - self.written - self.errors - self.saved),
                            self.last_error, None if at is None else time.time() - at, self.dropped, self.held,
                            self.saved)

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True  # from here on, submit() queues directly
        if self.retention is not None:
            self.retention.close()
        self._hand_over_all()
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        if self._checkpoints is not None:
            self._checkpoint_due.set()
            self._checkpoints.join(timeout=10)
        if self._unopened is not None:  # never opened: the rows it held are kept in a file (_keep), nothing to close
            atexit.unregister(self.close)
            return
        if self._file.gone():  # restored since the last batch: the close's checkpoint would lay the old log over it
            try:
                kept = self._take_over_file(self._file.change or Change.DELETED)
                log.warning("%s", self._file.describe(f"closing{'; ' + kept if kept else ''}"))
            except OSError as exc:
                log.error("%s", self._file.describe(f"it could not be taken over before closing ({exc})"))
        writing = self._writing.acquire(True, 10)  # a lone row being committed on a loop's thread finishes first
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()  # the last connection: SQLite checkpoints and removes the write-ahead log
        if writing:
            self._writing.release()
        self._file.release()  # after: closing its descriptors drops this process's locks on the file
        atexit.unregister(self.close)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._drain():
                pass
        finally:
            self._running = False
            self._wake_all()  # stopped (or died): release every waiter now rather than at its timeout

    def _drain(self) -> bool:
        """Write one batch (rows the store refused before go first); True once the stop marker was seen.
        Never raises."""
        retry = self._retry
        # rows held, or the file not opened yet: wait for the pause before trying the store again, taking new rows
        # along if some come
        waits = retry or self._unopened is not None
        item = self._take(max(0.0, self._retry_at - time.monotonic())) if waits else self._take()
        batch: list[RequestRecord | Row] = list(retry)
        stop = item is _STOP
        pending = self._queue
        bound = len(batch) + self.max_batch  # new rows per batch: held ones do not count (else one a try)
        while item is not _STOP and item is not _NOTHING:
            if type(item) is list:
                batch += item
            else:
                batch.append(item)
            # only this thread takes from the queue: empty() is exact here, and costs no raised queue.Empty
            # per batch (get_nowait's way of saying so) on the commit a lone request waits for (issue #15)
            if len(batch) >= bound or pending.empty():
                break
            item = pending.get_nowait()
            if item is _STOP:
                stop = True
                break
        if not batch:
            if self._unopened is not None and not stop and time.monotonic() >= self._retry_at:
                with self._writing:  # no rows yet: open it all the same (rows kept at a stop wait in their files)
                    opened = self._open_late()
                if opened:
                    self._failed_tries = 0
                    self._refusal.ended(0, self.dropped)
                else:
                    self._refusing = True
                    self._failed_tries += 1
                    self._retry_at = time.monotonic() + RETRY_PAUSE[min(self._failed_tries, len(RETRY_PAUSE) - 1)]
            return stop
        if self._refusing and not stop and time.monotonic() < self._retry_at:
            self._hold(batch, retry)  # the store refused every row a moment ago: these wait with the rest
            return False
        with self._writing:  # the connection is shared with a thread committing a lone row itself (_write_here)
            return self._write_taken(batch, retry, stop)

    def _hold(self, batch: list[RequestRecord | Row], retry: list[RequestRecord | Row]) -> None:
        """Hold rows that came while the store refuses every row, with those held already, until the pause is up:
        settled at once, nobody waits on them. Before, each row that came set off a try of every row held — one
        transaction of them all per request, on a full disk: past a few thousand held, a try took longer than rows
        came, every answer waited LOG_WAIT for its row, and the queue grew to ``max_queue``, dropping the rest."""
        self._retry = batch
        self._account(0, 0, len(batch) - len(retry))  # taken and held: _taken unchanged (held count against the bound)

    def _write_taken(self, batch: list[RequestRecord | Row], retry: list[RequestRecord | Row], stop: bool) -> bool:
        """The rest of :meth:`_drain`, holding ``_writing``: look at the file, write, account, fold."""
        self._taken += len(batch)
        taken = True
        late = self._unopened is not None
        if late:
            taken = self._open_late()
        elif self._file.gone():  # deleted, replaced or copied over: commits would go where nobody reads them
            taken = self._take_over()
        else:
            self._look_at_write_ahead()
        started = time.perf_counter()
        self._locked_out = False
        try:
            ok, lost, held = self._write(batch) if taken else (0, 0, batch)
            self._retry_busy = RETRY_BUSY if held and self._locked_out else BUSY_TIMEOUT
        except BaseException as exc:  # a bug in the writer itself: count it, keep the thread serving
            self._failed(exc)
            ok, lost, held = 0, len(batch), []
        self._last_commit = time.perf_counter() - started
        if held and not ok and not stop:
            self._refusal.held(len(held), self.last_error, self.dropped)
        elif (retry or late) and not held:
            self._refusal.ended(len(retry), self.dropped)
        if held and stop:  # closing: one last try was all there was; kept in a file for the next start
            lost += self._keep(held)
            held = []
        self._failed_tries = self._failed_tries + 1 if held else 0
        self._retry = held
        #: the store took none of the rows: new ones are held until the next try (:meth:`_hold`)
        self._refusing = bool(held) and not ok
        if held:
            self._retry_at = time.monotonic() + RETRY_PAUSE[min(self._failed_tries, len(RETRY_PAUSE) - 1)]
        self._taken -= len(held)  # held rows count against max_queue until written
        if self._unshared and ok:
            self._copy_in()
        self._account(ok, lost, len(held) - len(retry))
        if self._fold and not stop:  # after the waiters were released
            self._fold_in()
        return stop

    def _keep(self, held: list[RequestRecord | Row]) -> int:
        """Keep rows still refused at close in files for the next writer (:mod:`.held`); how many no file took. One
        file per table: the next writer commits a file whole or leaves it, and a table that is gone (:mod:`.drift`)
        must not leave the requests kept beside its rows unwritten."""
        tables: dict[str, list[RequestRecord | Row]] = {}
        for item in held:
            tables.setdefault(item.insert if isinstance(item, Row) else _INSERT_REQUEST, []).append(item)
        lost = 0
        for items in tables.values():
            kept = held_file.save(self.path, self._statements(items))
            if kept is None:
                log.error("routing log %s: %d row(s) could not be written before closing (%s), nor kept in a file",
                          self.path, len(items), self.last_error)
                lost += len(items)
            else:
                log.warning("routing log %s: %d row(s) could not be written before closing (%s): kept in %s, written "
                            "by the next modelyard process that opens this log%s", self.path, len(items),
                            self.last_error, kept, _TEMPORARY if held_file.volatile(kept) else "")
                self.saved += len(items)
        return lost

    def _look_at_write_ahead(self) -> bool:
        """Whether this connection's write-ahead files are no longer the ones at the path (then each commit is copied
        into the file, :meth:`_copy_in`); said once when found, and once when another process made its own."""
        if not self._unshared and self._write_ahead.gone():
            self._unshared = True
            self._failed(OSError(self._write_ahead.describe()))
        elif self._unshared and not self._anew_said and self._write_ahead.made_anew():  # once: nothing here ends it
            self._anew_said = True
            self._failed(OSError(self._write_ahead.describe_anew()))
        return self._unshared

    def _take_over(self) -> bool:
        """Write into the file now at the path (:func:`.same_file.take_over` makes it safe to open first); False
        while it cannot be opened yet — the batch is held and tried again, never committed into the old file."""
        change = self._file.change or Change.DELETED
        try:
            kept = self._take_over_file(change)
        except OSError as exc:
            self._failed(OSError(self._file.describe(f"it could not be taken over yet ({exc}); its rows are held")))
            return False
        also = f"; {kept}" if kept else ""
        said = self._file.describe(f"writing to the file now at that path from now on{also}")  # before reopened()
        if not self._reconnect():  # another program's file moved there, one this user may not open: not the log's
            self._failed(OSError(self._file.describe(
                f"the file now at that path cannot be opened as the log ({self.last_error}): its rows are held until "
                f"it can — move that file away if it is not the log{also}")))
            return False
        self._failed(OSError(said))
        return True

    def _take_over_file(self, change: Change) -> str | None:
        """:func:`.same_file.take_over`, the rows of a file another was moved over kept first where they can be read
        (:mod:`.replaced`): its write-ahead log alone, set aside, could not be read without it. Raises OSError."""
        old = None
        if change is Change.REPLACED:  # once per old file: a take-over that cannot open the new one is tried again
            if self._kept_old is None or self._kept_old[0] != self._file.opened:
                self._kept_old = (self._file.opened, keep_old(self._conn, self.path, self._file.descriptor))
            old = self._kept_old[1]
        kept = take_over(self.path, change, self._write_ahead.opened, wal_kept=old is not None)
        return old or kept

    def _fold_in(self) -> None:
        """Checkpoint what the checkpoint thread could not (rows committed while it ran), on the writer's own
        connection between two commits: nothing is appended meanwhile, so the whole log is copied and the next
        commit starts it over. Tried again after the next batch while the checkpoint thread holds its lock; a
        reader's snapshot holds this back as it holds every checkpoint."""
        self._busy_since = time.monotonic()  # a waiter that blocks meanwhile is bounded as during a commit
        try:
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self._file.checkpointed()
            self._fold = bool(busy)
        except sqlite3.Error as exc:
            self._fold = False
            log.warning("routing log %s: checkpoint failed (%s); retried later", self.path, exc)

    def _copy_in(self) -> None:
        """Copy what was committed into the database file (write-ahead files deleted: :class:`WriteAhead`), before
        the waiters are released, so a row another process cannot read yet is never reported as written. A
        checkpoint a reader of this process holds back is finished after a later commit."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._file.checkpointed()
        except sqlite3.Error as exc:
            log.warning("routing log %s: copying commits into the file failed (%s); retried after the next commit",
                        self.path, exc)

    def _take(self, timeout: float | None = None) -> Any:
        """The next item of the queue, waiting for one (:data:`_NOTHING` after ``timeout``); marks the writer
        busy from then on."""
        self._busy_since = None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            item = _NOTHING
        self._busy_since = time.monotonic()
        return item

    def _rows(self, item: RequestRecord | Row) -> tuple[list[tuple], list[tuple], list[Row]]:
        """(request rows, attempt rows, other rows) of one queued item."""
        if isinstance(item, Row):
            return [], [], [item]
        return [request_row(item, self.local_models, self.max_text)], attempt_rows(item, self.backends), []

    def _write(self, batch: list[RequestRecord | Row]) -> tuple[int, int, list[RequestRecord | Row]]:
        """(rows stored, rows lost, rows the store refused: to try again). One transaction for the batch; if
        that fails, one per row, repaired: a row whose values cannot be stored is lost alone; once the store
        itself refuses (on a fresh connection too), that row and the rest are held for a later try."""
        try:
            self._write_batch(batch)
            return len(batch), 0, []
        except Exception as exc:  # disk full, locked for too long, a value SQLite cannot bind...
            if locked(exc):  # the store's, not a row's: each row alone, and a new connection, waited as long again
                self._locked_out = True
                self._failed(sqlite3.OperationalError(self._locked_said(exc)))
                return 0, 0, batch
            self._failed(exc)
        ok = lost = 0
        reconnected = set_aside = False
        apart: list[RequestRecord | Row] = []  # rows of a table that is gone: held, the others go on
        i = 0
        while i < len(batch):
            item = batch[i]
            try:
                requests, attempts, others = self._rows(item)
                fixed_requests, fixed_attempts = [_repaired(x) for x in requests], [_repaired(x) for x in attempts]
                fixed_others = [Row(o.insert, _repaired(o.values)) for o in others]
                self._commit(fixed_requests, fixed_attempts, fixed_others)
                ok += 1
                if fixed_requests != requests or fixed_attempts != attempts or fixed_others != others:
                    self.repaired += 1
            except _ROW_ERRORS as exc:  # this row only (e.g. a required value missing): the others go on
                said = self._refused_by_table(exc, item)
                if said is None:
                    self._failed(exc)
                    lost += 1
                else:  # a column or constraint of a newer schema refuses every row: the store's, held (drift.py)
                    self._failed(said)
                    return ok, lost, batch[i:]
            except Exception as exc:  # the store itself: once more on a fresh connection, then hold the rest
                if isinstance(item, Row) and (gone := table_gone(exc, item.insert, self.path)):
                    self._failed(sqlite3.OperationalError(gone))  # its table only: held, the requests written
                    apart.append(item)
                    i += 1
                    continue
                changed = requests_changed(exc, self.path)
                self._failed(exc if changed is None else sqlite3.OperationalError(changed))
                if reconnected:
                    if damaged(exc) and not set_aside and self._set_aside(exc):
                        set_aside = True  # once per batch: a new file damaged at once is not this
                        continue
                    return ok, lost, apart + batch[i:]
                self._reconnect()
                reconnected = True
                continue  # the same row again
            i += 1
        return ok, lost, apart

    def _refused_by_table(self, exc: BaseException, item: RequestRecord | Row) -> sqlite3.IntegrityError | None:
        """``exc`` as the table's refusal, saying what changed, when the table refuses every row (:mod:`.drift`)."""
        inserts = (item.insert,) if isinstance(item, Row) else (_INSERT_REQUEST, _INSERT_ATTEMPT)
        said = refused_by_table(exc, inserts, self.path)
        return None if said is None else sqlite3.IntegrityError(said)

    def _write_batch(self, batch: list[RequestRecord | Row], begin: str = "BEGIN") -> None:
        """``batch`` in one transaction as it is (raises if it cannot be: nothing of it committed)."""
        requests: list[tuple] = []
        attempts: list[tuple] = []
        others: list[Row] = []
        local, max_text, backends = self.local_models, self.max_text, self.backends
        for item in batch:  # what _rows does per item, without its three lists per row (issue #15)
            if isinstance(item, Row):
                others.append(item)
            else:
                requests.append(request_row(item, local, max_text))
                attempts += attempt_rows(item, backends)
        # on the loop's thread ("BEGIN IMMEDIATE") another process's write lock must not hold it; while rows are held
        # because that lock was held past BUSY_TIMEOUT, a try waits RETRY_BUSY for it (module docstring)
        patience = (self._retry_busy if begin == "BEGIN" else 0.0)
        if patience != self._patience:  # set only when it changes: not twice per commit at concurrency 1
            self._conn.execute(f"PRAGMA busy_timeout={int(patience * 1000)}")
            self._patience = patience
        self._commit(requests, attempts, others, begin)
        last = batch[-1]
        if not isinstance(last, Row):
            if last.ts > self._newest:
                self._newest = last.ts
            elif last.ts < self._newest - CLOCK_BACK and not self._clock_said:
                self._clock_went_back(last.ts)

    def _locked_said(self, exc: BaseException) -> str:
        """What SQLite's 'database is locked' means here, in the words of what to do."""
        waited = f"{self._patience:g} s" if self._patience >= 1 else "again"
        return (f"{exc}: another process holds the log's write lock (waited {waited}) — a sqlite3 shell left in a "
                f"transaction, a backup or copy tool: `fuser {self.path}` or `lsof` shows which; end it. Rows are "
                "held in memory meanwhile (held in /healthz) and written once it lets go; answers wait for them no "
                "more")

    def _set_aside(self, exc: BaseException) -> bool:
        """Move a file SQLite finds damaged aside (with its write-ahead log, for ``.recover``) and write into a new
        one at the path: the damaged file refused every later row, for ever (module docstring of
        tests/integration/test_log_damaged.py). Other processes writing it follow the new file (:class:`SameFile`)."""
        aside, said = set_aside(self.path, exc)
        if aside is None:
            self._failed(OSError(said))
            return False
        log.error("%s", said)
        self._failed(OSError(said))
        return self._reconnect()

    def _clock_went_back(self, ts: float) -> None:
        """Say once that a request is stamped well before one already in the log: the clock went back (or was ahead
        when that one was logged) — ``log`` lists this host's new requests under older ones, ``report`` puts them on
        other days; with ``log.url`` the forwarder compares with the database's clock too."""
        self._clock_said = True
        behind = self._newest - ts
        amount = f"{behind / 86400:.1f} days" if behind >= 86400 else f"{behind / 3600:.1f} h"
        log.warning("routing log %s: a request was stamped %s before the newest one already in the log: this host's "
                    "clock went back (or was ahead when that one was logged), so its requests are listed below older "
                    "ones in `log` and counted on other days in `report` — set the clock (timedatectl set-ntp true, or "
                    "your NTP client)", self.path, amount)

    def _statements(self, items: list[RequestRecord | Row]) -> list[tuple[str, tuple]]:
        """Each item's rows as (``INSERT``, repaired values): what :mod:`.held` keeps for the next start."""
        out: list[tuple[str, tuple]] = []
        for item in items:
            requests, attempts, others = self._rows(item)
            out += [(_INSERT_REQUEST, _repaired(r)) for r in requests]
            out += [(_INSERT_ATTEMPT, _repaired(a)) for a in attempts]
            out += [(o.insert, _repaired(o.values)) for o in others]
        return out

    def _commit(self, requests: list[tuple], attempts: list[tuple], others: Sequence[Row] = (),
                begin: str = "BEGIN") -> None:
        try:
            self._conn.execute(begin)
            self._insert(_INSERT_REQUEST, requests)
            self._insert(_INSERT_ATTEMPT, attempts)
            for row in others:
                self._conn.execute(row.insert, row.values)
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise

    def _insert(self, insert: str, rows: list[tuple]) -> None:
        """``rows`` inserted by ``insert`` (one row's ``VALUES (?, …)``), up to GROUP rows per statement: one
        sqlite3_step, and one release and take-back of the GIL, per statement instead of per row (issue #15)."""
        n = len(rows)
        if n == 1:
            self._conn.execute(insert, rows[0])
            return
        i = 0
        while i < n:
            k = min(GROUP, 1 << ((n - i).bit_length() - 1))
            statement = _GROUPED.get((insert, k))
            if statement is None:
                head, _, values = insert.partition(" VALUES ")
                statement = _GROUPED[(insert, k)] = head + " VALUES " + ", ".join([values] * k)
            self._conn.execute(statement, tuple(_flat(rows[i:i + k])))
            i += k

    def _reconnect(self) -> bool:
        """After a row failed even repaired, start the next one on a fresh connection (a broken handle
        is one way to get here); if the file cannot be opened, keep the old one and keep counting (False)."""
        try:
            fresh = self._connect()
        except Exception as exc:
            self._failed(exc)
            return False
        self._file.reopened()  # first: its map of the old -shm goes while the old connection still holds that file
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._conn = fresh
        self._patience = BUSY_TIMEOUT  # _connect's busy timeout
        self._write_ahead.reopened()
        self._unshared = self._anew_said = False
        self._generation += 1
        return True

    def _failed(self, exc: BaseException) -> None:
        now = time.time()
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self._last_error_at is None or now - self._last_logged >= _LOG_EVERY:
            self._last_logged = now
            log.error("routing log %s: write failed (%s; %d failures so far); the writer carries on",
                      self.path, self.last_error, self.failures)
        self._last_error_at = now

    def _account(self, ok: int, lost: int, held: int = 0) -> None:
        """Count a batch's fate: ``held`` is the change in rows held for a later try."""
        self._committed_at = time.monotonic()
        self._uncheckpointed += ok
        if self._uncheckpointed >= CHECKPOINT_EVERY:
            self._uncheckpointed = 0
            self._checkpoint_due.set()
            if self._checkpoints is None:
                self._checkpoints = threading.Thread(target=self._checkpoint_loop, name="modelyard-log-checkpoint",
                                                     daemon=True)
                self._checkpoints.start()
        ready: list[asyncio.Future[None]] = []
        with self._done:
            self.written += ok
            self.errors += lost
            self.held += held
            if self._flushing:  # a thread in flush() (Condition.notify_all is Python: not called for nobody)
                self._done.notify_all()
            done = self.written + self.errors + self.held
            if waiters := self._async_waiters:
                ready = [f for t, f in waiters if t <= done]
                if ready:
                    self._async_waiters = [(t, f) for t, f in waiters if t > done]
            blocked = self._blocked
            if blocked is not None and blocked[0] <= done:
                self._blocked = None
            else:
                blocked = None
        if ready:
            _resolve_all(ready)
        for callback in self._on_commit:
            with contextlib.suppress(Exception):  # a listener's bug must not stop the writer
                callback()
        if blocked is not None:  # last: the woken loop thread then finds the GIL about to be free
            blocked[1].release()

    def _checkpoint_loop(self) -> None:
        """Fold the write-ahead log into the database every CHECKPOINT_EVERY rows (or CHECKPOINT_IDLE s after
        the last commit), at the next pause in the commits (:meth:`_pause`). PASSIVE: it never blocks the writer, nor
        waits for readers; what a reader still uses is copied next time. A failure is logged and retried next time
        (the rows are committed)."""
        conn: sqlite3.Connection | None = None
        file = self._file  # the writer's: one look at the file for both threads
        wal = Path(f"{self.path}-wal")
        seen = self._generation
        done = -1
        frame_bytes = 0
        try:
            while True:
                due = self._checkpoint_due.wait(CHECKPOINT_IDLE)
                self._checkpoint_due.clear()
                if self._closed:
                    return  # close() closes the writer's connection last, which checkpoints
                if due and self._fold:  # the writer folds in after its next commit: a checkpoint here would hold the
                    continue  # checkpoint lock it needs (each try of its own then found it busy, at load 11 every one)
                if self.written == done:
                    continue
                self._pause(max(done, 0) + 2 * CHECKPOINT_EVERY)
                if self._closed:
                    return
                done = self.written
                try:
                    if file.gone() or seen != self._generation:  # a new file at the path: checkpoint that one
                        if conn is not None:
                            conn.close()
                            conn = None
                        if seen == self._generation:  # the writer takes it over first: opened before, the old
                            continue  # file's write-ahead log beside it would be laid over it (same_file.take_over)
                    if identity(self.path) is None:
                        continue  # deleted: the writer makes the new one (connecting here would make an empty file)
                    if conn is None:
                        seen = self._generation
                        conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None,
                                               check_same_thread=False)
                        frame_bytes = conn.execute("PRAGMA page_size").fetchone()[0] + WAL_FRAME_HEADER
                    reserve_ahead(wal, WAL_AHEAD, WAL_LIMIT)  # before its fsync: appends meanwhile then wait for none
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    file.checkpointed()
                    # rows committed meanwhile were not copied: past the bound, the writer copies them (no growth).
                    # The log's own length, not its file's size: a log started over keeps its file (WAL_LIMIT),
                    # and by the file's size every checkpoint after the first fold folded again (issue #15)
                    if frames * frame_bytes > WAL_BOUND:
                        self._fold = True
                    self._starved(max(0, frames - copied) * frame_bytes)
                except sqlite3.Error as exc:
                    log.warning("routing log %s: checkpoint failed (%s); retried later", self.path, exc)
                    with contextlib.suppress(sqlite3.Error):
                        if conn is not None:
                            conn.close()
                    conn = None
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def _pause(self, most: int) -> None:
        """Wait until the commits pause for CHECKPOINT_QUIET s (no commit, no batch being written), or until ``most``
        rows are written (never paused: the log is checkpointed all the same, so it stays bounded), or the close."""
        while not self._closed and self.written < most:
            quiet = time.monotonic() - self._committed_at
            if quiet >= CHECKPOINT_QUIET and self._busy_since is None:
                return
            # the rest of the pause, or a whole one while a batch is being written (a slow disk: no spin); woken early
            # by the writer's next due mark and by close()
            if self._checkpoint_due.wait(CHECKPOINT_QUIET - quiet if quiet < CHECKPOINT_QUIET else CHECKPOINT_QUIET):
                self._checkpoint_due.clear()

    def _starved(self, size: int) -> None:
        """Say once (per episode) that a checkpoint left more than WAL_STARVED bytes of the write-ahead log uncopied
        (``size``). A checkpoint copies every frame that was there when it began; what it leaves is what was committed
        while it ran (a few hundred KB at most) — unless a reader holds an old snapshot, which no checkpoint may copy
        past: checkpoint starvation (https://www.sqlite.org/wal.html, 'Avoiding Excessively Large WAL Files'), a
        ``sqlite3`` shell or DB Browser for SQLite left in a transaction. The log then grew, unsaid, until the disk
        was full."""
        if size <= WAL_BOUND:
            self._starved_said = False
        elif size > WAL_STARVED and not self._starved_said:
            self._starved_said = True
            self._failed(OSError(
                f"routing log {self.path}: {size >> 20} MiB of its write-ahead log ({self.path.name}-wal) cannot be "
                "copied into the file: another connection holds an old read transaction (a sqlite3 shell "
                f"or DB Browser left in a transaction, a long-running read) — `fuser {self.path}` shows which; end it "
                "and the next checkpoint takes it back. Until then it keeps growing with every row"))

    def _wake_all(self) -> None:
        with self._done:
            self._done.notify_all()
            ready = [f for _, f in self._async_waiters]
            self._async_waiters = []
            blocked, self._blocked = self._blocked, None
        _resolve_all(ready)
        if blocked is not None:
            blocked[1].release()


#: the running event loop of this thread, or None (asyncio's own helper, without the RuntimeError; nor, on serve's
#: loop, its getpid system call)
_running_loop = current_loop


def _resolve_all(ready: list[asyncio.Future[None]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for fut in ready:
        by_loop.setdefault(fut.get_loop(), []).append(fut)
    for loop, futures in by_loop.items():  # one wake-up per loop, however many waiters
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, futures)


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(None)
