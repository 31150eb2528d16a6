"""The routing log on PostgreSQL, through psycopg 3, behind the same connection shape as SQLite's.

Why psycopg 3 (not asyncpg): every routing-log reader and writer here is synchronous (CLI commands,
the writer thread, dashboard reads in a worker thread); psycopg has a first-class sync API (asyncpg
is async-only), pipelines ``executemany`` (one round trip per batch), and leaves connection strings,
``PGPASSWORD``, ``~/.pgpass``, ``PGSSLMODE`` … to libpq like every other PostgreSQL tool.

:class:`PgConnection` quacks like ``sqlite3.Connection`` for what the ledger uses: ``execute`` with
``?`` placeholders, rows readable by column name and by position (:class:`Row`), ``dict(row)``.
So each query is written once (in the SQL both databases speak) and runs on either. psycopg is
imported only when a PostgreSQL log is configured: it costs ~0.3 s of start-up.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.config import dburl
from modelyard.ledger.migrations import MIGRATIONS
from modelyard.ledger.migrator import Dialect, migrate, up_to_date
from modelyard.ledger.store import LogUnavailable

if TYPE_CHECKING:
    import psycopg

    from modelyard.ledger import pg_watch

#: seconds to wait for a connection before calling the database unreachable
CONNECT_TIMEOUT = 5
#: how long a reader (``log``, ``report``, ``models``, the dashboard) waits for a lock another session holds on the
#: log's tables before it says who holds it and stops, in seconds
READ_LOCK_TIMEOUT = 10.0
#: how long a reader's statement waits for PostgreSQL's answer before its connection is cut, in seconds: a connection
#: gone silent mid-query (a firewall dropping packets, a server host frozen) answers nothing and raises nothing — no
#: server-side timeout fires where nothing arrives — and ``log``, ``report``, ``models``, the dashboard waited for
#: ever. Generous: ``stats`` over 300,000 rows took 33-43 s on a loaded host (README), and a slow answer is no fault
READ_BOUND = 60.0
#: how long the schema check every connection makes once open (is the log's schema this modelyard's? two catalog
#: reads, milliseconds) waits for PostgreSQL's answer before the connection is cut, in seconds. ``connect_timeout``
#: ends at the handshake and :data:`READ_BOUND` began after the check: a connection gone silent right after it opened
#: left every command, and the forwarder of ``serve``, waiting there for ever. Above :data:`READ_LOCK_TIMEOUT`, so a
#: lock held by another session is said as that
CHECK_BOUND = 15.0
#: how long in all a reader's statement may run once the server said, at each :data:`READ_BOUND`, that it is still
#: running it (a slow read, not a lost one: :mod:`~modelyard.ledger.pg_watch`), in seconds; ``log.read_ceiling``
#: raises it
READ_CEILING = 600.0

log = logging.getLogger("modelyard.ledger")


#: what a refusal by SQLSTATE means for the log, and what to do (said with the error in /healthz and the log)
HINTS = {
    "57014": ("the server's statement_timeout cancelled it (SHOW statement_timeout): raise it for this role or "
              "database, e.g. ALTER ROLE … SET statement_timeout = '30s'"),
    "42P01": ("a table of the log is gone though its migrations are recorded (dropped by hand?): restore it from a "
              "backup, or drop the log's schema to let modelyard create it afresh"),
    "25006": ("the database takes no writes (a hot standby after a failover, default_transaction_read_only): point "
              "log.url at the primary"),
    "53100": "PostgreSQL's disk is full",
    "42P10": ("the log's tables have no unique key modelyard can upsert on (a primary key dropped or changed by "
              "hand): give requests a unique key on (id) — or (id, ts) when partitioned by ts — and attempts one on "
              "(request_id, seq), or (request_id, seq, ts); the rows wait in the local spool"),
    "54000": ("a row too big for an index on the log's tables (a btree holds at most 2,704 bytes of a text, any index "
              "8,191): an index added on a text column (prompt, response, error) — index md5(the column) or "
              "left(the column, 1000) instead; the row stays in the local file"),
    "53300": "PostgreSQL has max_connections sessions: put a pooler (PgBouncer) in front, or raise max_connections",
    "42501": "the role may not write the log's tables: GRANT INSERT, SELECT on them (or ownership) to it",
    "42703": ("a column of the log's tables is gone or renamed (by a newer modelyard's migration, or by hand): the "
              "rows wait in the local spool; run the newer modelyard here too, or restore the column"),
    **dict.fromkeys(("23502", "23514", "23503", "23505"), (
        "the log's tables have a column or constraint this modelyard does not fill (a newer modelyard migrated the "
        "log, or it was changed by hand): the rows wait in the local spool; run the newer modelyard here too, or give "
        "the column a default / drop the constraint")),
}


def _server(url: str) -> str:
    """``host:port`` of the URL, never its user or password: its authority, else libpq's ``?host=`` (or
    ``hostaddr``) and ``port=`` (:func:`dburl.where` puts PGHOST there when the URL names no host)."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(dburl.where(url))
    params = dict(parse_qsl(parts.query))
    host = parts.netloc or params.get("host") or params.get("hostaddr")
    if not host:
        return "this host's default socket"
    return f"{host}:{params['port']}" if not parts.netloc and "port" in params else host


def row_too_big(exc: BaseException) -> bool:
    """PostgreSQL refused a row for a limit of its own (SQLSTATE 54000: 'index row size 3056 exceeds btree version 4
    maximum 2704', 'index row requires 9016 bytes, maximum size is 8191'): a refusal of the row's values, as a data
    error is, though psycopg files it under OperationalError with a lost connection. Taken for the database's
    failure, the one row blocked every row after it from being forwarded, for good (concourse/concourse#1618,
    icoretech/airbroke#6: an index on a long text column)."""
    return getattr(exc, "sqlstate", None) == "54000"


#: a new connection refused for a role or a database not made yet (libpq gives a refused connection no SQLSTATE:
#: the server's words are all there is) — the README's team steps run `CREATE DATABASE modelyard OWNER modelyard`, which
#: needs the role first; modelyard creates its tables, never the role or the database
_NOT_MADE = re.compile(r'FATAL:\s+(role|database) "([^"]+)" does not exist')


def hint(exc: BaseException) -> str:
    """`` — what it means``, for a refusal in :data:`HINTS` or a role or database not made yet; "" otherwise."""
    why = HINTS.get(getattr(exc, "sqlstate", None) or "")
    if not why and (missing := _NOT_MADE.search(str(exc))):
        kind, name = missing.groups()
        why = (f"create the role as a superuser (psql: CREATE ROLE \"{name}\" LOGIN PASSWORD '…'), or name a role "
               "that exists in log.url" if kind == "role" else
               f"modelyard creates its tables, not the database: create it (psql: CREATE DATABASE \"{name}\" OWNER "
               "the role in log.url)")
    return f" — {why}" if why else ""


class Row:
    """A result row read by name or position, like ``sqlite3.Row`` (``row["model"]``, ``row[0]``, ``dict(row)``)."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]):
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _rows(cursor: Any) -> Any:
    description = cursor.description
    index = {column.name: i for i, column in enumerate(description or ())}
    return lambda values: Row(index, values)


@functools.lru_cache(maxsize=512)
def to_pg(sql: str) -> str:
    """``?`` placeholders become psycopg's ``%s`` (a literal ``%`` is doubled). Our SQL has no ``?`` in literals."""
    return sql.replace("%", "%%").replace("?", "%s")


def _loaders() -> Any:
    from psycopg.adapt import Loader

    class Number(Loader):
        """``numeric`` (what SUM over BIGINT returns) as int or float, as SQLite gives, not Decimal."""

        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    return Number


class PgConnection:
    """One autocommit psycopg connection to the log's database (``BEGIN``/``COMMIT`` work as in SQLite)."""

    dialect = Dialect.POSTGRES
    #: how long a statement of an explicit transaction (``BEGIN`` … ``COMMIT``) may wait for a lock another session
    #: holds, in seconds (None: no bound). ``SET LOCAL``, so it ends with the transaction — safe behind a
    #: transaction pooler, where a session-level ``SET`` would stay on a server connection others use next.
    lock_timeout: float | None = None
    #: how long one statement may wait for the answer before the server is asked whether it still runs it (None: no
    #: bound); not running it, or not reachable: the connection is cut
    read_bound: float | None = None
    #: how long in all a statement the server still runs may take (None: ``read_bound``)
    read_ceiling: float | None = None
    #: what the server said of the statement the bound cut (None: not asked — the schema check)
    finding: pg_watch.Finding | None = None
    #: the bound cut this connection (said instead of libpq's 'server closed the connection unexpectedly')
    cut = False
    #: the schema check at connect is running (the bound is :data:`CHECK_BOUND`)
    _checking = False
    #: the server process of the connection (:attr:`pid`)
    _pid = 0

    def __init__(self, url: str, *, migrate_schema: bool = True, application_name: str = "modelyard",
                 lock_timeout: float | None = None, read_bound: float | None = None,
                 read_ceiling: float | None = None, probe_url: str | None = None):
        import psycopg

        self.url = url
        #: where the watch asks whether the server still runs a statement (straight to it, past a pooler; None: url)
        self.probe_url = probe_url
        self.read_ceiling = read_ceiling
        self._deciding = threading.Lock()  # a statement's end, and the watcher's decision to cut it
        self.lock_timeout = lock_timeout  # before the migration: its check waits on the same locks
        self.where = dburl.redact(url)
        self._application_name = application_name
        self._tag = secrets.token_hex(6)  # with a count, names each watched statement on the server (pg_watch.tag)
        self._statements = itertools.count(1)
        try:
            # prepare_threshold=None: no server-side prepared statements. psycopg prepares a query once it ran five
            # times and then sends only its name; behind a transaction pooler (PgBouncer before 1.21, or with
            # max_prepared_statements = 0) the next transaction runs on another server connection, where the name
            # is unknown or taken, and every batch after the fifth failed. The log's queries are few and cheap to
            # plan; batches already go in one round trip (executemany pipelines).
            self._conn: psycopg.Connection[Any] = self._open()
        except psycopg.Error as exc:
            raise LogUnavailable(self.describe(exc)) from None
        if migrate_schema:
            try:
                self.read_bound, self._checking = CHECK_BOUND, True
                current = up_to_date(self, Dialect.POSTGRES, MIGRATIONS)
                self.read_bound, self._checking = None, False  # a step may build an index on a large log: unbounded
                if not current:
                    migrate(self, Dialect.POSTGRES, MIGRATIONS)
            except psycopg.errors.InvalidSchemaName as exc:  # search_path names no schema that exists
                path = self._search_path()
                self.close()
                raise LogUnavailable(self.describe(exc) + (
                    f" — the search_path ({path}) names no schema that exists: create it first "
                    "(CREATE SCHEMA …), or drop options=-csearch_path from the URL")) from None
            except psycopg.Error as exc:
                self.close()
                raise LogUnavailable(self.describe(exc)) from None
            except BaseException:  # NewerSchema, a bug: the caller never gets this connection to close
                self.close()
                raise
        self.read_bound = read_bound  # after the migration: building an index on a large log may take longer

    def _open(self) -> psycopg.Connection[Any]:
        import psycopg

        # client_encoding UTF8: libpq's default is the database's own encoding. In a SQL_ASCII database (a cluster
        # made under the C locale, "the template database were set to encoding SQL_ASCII from the installation":
        # psycopg/psycopg#276) psycopg then gives text back as bytes — the forwarder failed on every step and
        # forwarded nothing, readers failed too; in a LATIN1 one psycopg encoded rows itself, and one row holding a
        # character LATIN1 lacks stopped every row after it (the forwarder now replaces what the database cannot
        # hold first: :attr:`narrow_codec`)
        conn = psycopg.connect(self.url, autocommit=True, row_factory=_rows, connect_timeout=CONNECT_TIMEOUT,
                               application_name=self._application_name, prepare_threshold=None,
                               client_encoding="UTF8")
        conn.adapters.register_loader("numeric", _loaders())
        self._pid = int(conn.info.backend_pid)  # while libpq knows it (:attr:`pid`)
        return conn

    def identity(self) -> str:
        """Which log this is, whatever address reaches it: the cluster's ``system_identifier`` and timeline (a server
        restored or promoted from another's backup keeps the first, not the second), the database's oid and the
        schema the log's tables are in ("" where it cannot be read). Two hosts that both write
        ``postgresql://localhost/modelyard`` — each its own server, or one through an SSH tunnel each — compare this,
        as the shared state compares Redis's ``run_id``. ``pg_control_system()`` may be run by any role (PostgreSQL
        ≥ 10) and is one plain query, so it works through a transaction pooler too; a standby shares its primary's."""
        import psycopg

        try:
            row = self._conn.execute(
                "SELECT (SELECT system_identifier FROM pg_control_system()), "
                "(SELECT timeline_id FROM pg_control_checkpoint()), "
                "(SELECT oid FROM pg_database WHERE datname = current_database()), current_schema()").fetchone()
        except psycopg.Error:  # EXECUTE revoked, an outage: the address decides
            return ""
        return ":".join(str(v) for v in row) if row and all(v is not None for v in row) else ""

    def _search_path(self) -> str:
        try:
            row = self._conn.execute("SHOW search_path").fetchone()
            return str(row[0]) if row else "?"
        except Exception:  # the hint is a courtesy: never let it hide the error
            return "?"

    def describe(self, exc: BaseException) -> str:
        """An error about this database, for people: names it, never shows its password."""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first += hint(exc)
        if getattr(exc, "sqlstate", None) == "55P03":  # lock_not_available: say where to look
            first += (f" — waited {self.lock_timeout or 0:g}s: another session holds a lock on the log's tables "
                      "(an open transaction, a migration, VACUUM FULL)")
            holders = self._lock_holders()
            first += f": {holders}" if holders else ": pg_stat_activity and pg_locks show which"
        return dburl.scrub(f"routing log {self.where}: {first}", self.url)

    def _lock_holders(self) -> str:
        """Who holds a lock on a table of the log's schema that keeps others out (named in the error: 'log' waited
        forever behind a psql left in a transaction, and said nothing)."""
        try:
            rows = self._conn.execute(
                "SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, "
                "EXTRACT(EPOCH FROM now() - a.xact_start)::int, left(a.query, 80), c.relname "
                "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.granted AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock') "
                "AND c.relnamespace = current_schema()::regnamespace AND l.pid <> pg_backend_pid() "
                "ORDER BY 1 LIMIT 3").fetchall()
        except Exception:  # the hint is a courtesy: never let it hide the error
            return ""
        return "; ".join(f"pid {pid} (user {user}, application '{app}', {state} for {age}s, holds {table}: "
                         f"{query!r}) — pg_terminate_backend({pid}) ends it"
                         for pid, user, app, state, age, query, table in rows)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; a lost or refused connection is :class:`LogUnavailable`, a bad row stays psycopg's.

        With ``lock_timeout``, a statement outside an explicit transaction runs in one of its own with the bound
        (``SET LOCAL``): a reader (``log``, ``report``, the dashboard) waited without bound behind a session that
        held the table exclusively, with nothing said."""
        import psycopg

        try:
            with self._watched(alone=sql != "BEGIN" and not self.in_transaction) as mark:
                if self.lock_timeout and sql != "BEGIN" and not self.in_transaction:
                    with self._conn.transaction():
                        self._conn.execute(self._bound())
                        return self._conn.execute(mark + to_pg(sql), params)
                cursor = self._conn.execute(mark + to_pg(sql), params)
                if self.lock_timeout and sql == "BEGIN":
                    self._conn.execute(self._bound())
                return cursor
        except psycopg.OperationalError as exc:
            if row_too_big(exc):
                raise
            raise LogUnavailable(self.silent() if self.cut else self.describe(exc)) from None

    @contextlib.contextmanager
    def _watched(self, *, alone: bool = False) -> Iterator[str]:
        """Watch the statement (:meth:`_watch`, in a thread of its own) while it waits for PostgreSQL's answer; what
        it yields opens the statement's text (:func:`~modelyard.ledger.pg_watch.tag`: how the server is asked about
        it, through a pooler too), "" when unwatched.

        Its end and the watcher's decision to cut take the same lock, and the watcher cuts only a statement still
        waiting: a bound passing just as the statement finished cut the connection, and the NEXT statement then
        failed saying 'no answer within 60s'. The one window left — the answer read whole by libpq, the cut decided
        before the statement's end takes the lock — keeps the answer, and a statement run ``alone`` (no transaction
        to lose) opens a new connection for the next one."""
        from modelyard.ledger import pg_watch

        if not self.read_bound:
            yield ""
            return
        mark = pg_watch.tag(self._tag, next(self._statements))
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(done, time.monotonic(), mark), daemon=True,
                                   name="modelyard-pg-read-watch")
        watcher.start()
        answered = False
        try:
            yield mark
            answered = True
        finally:
            with self._deciding:
                done.set()
        if answered and self.cut and alone:
            self._reopen()

    def _reopen(self) -> None:
        """A new connection in place of one cut just as its statement was answered (the next statement would
        have failed saying 'no answer'); not reopened, the next statement says why it was cut."""
        import psycopg

        try:
            conn = self._open()
        except psycopg.Error:
            return
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn, self.cut, self.finding = conn, False, None

    def _watch(self, done: threading.Event, started: float, mark: str) -> None:
        """Each ``read_bound`` without an answer, ask the server (over a new connection) whether it is still running
        the statement: yes — a slow read, wait on (said once), up to ``read_ceiling``; the server unreachable, the
        session idle or gone — the answer will never come: cut (:meth:`abort`). The schema check is not asked about
        (two catalog reads: a slow one is no healthy server's)."""
        from modelyard.ledger import pg_watch

        bound = self.read_bound or 0.0
        ceiling = max(bound, self.read_ceiling or bound)
        sending = 0
        told = False
        while not done.wait(max(0.0, min(bound, started + ceiling - time.monotonic()))):
            finding = None if self._checking else pg_watch.probe(self.probe_url or self.url, self.pid, mark)
            if finding is not None:
                log.info("routing log %s: probe of %s: %s (pid %s) in %.3fs", self.where, mark.strip(),
                         finding.verdict.value, finding.pid, finding.took)
                sending = sending + 1 if finding.verdict is pg_watch.Verdict.SENDING else 0
                slow = finding.verdict is pg_watch.Verdict.WORKING or (
                    finding.verdict is pg_watch.Verdict.SENDING and sending < 2)
                if slow and time.monotonic() - started < ceiling:
                    if not told:
                        told = True
                        log.warning(dburl.scrub(
                            f"routing log {self.where}: a slow read — no answer after {bound:g}s, but "
                            f"{_server(self.url)} is still running the query (pid {finding.pid}): waiting for it, up "
                            f"to {ceiling:g}s in all (log.read_ceiling)", self.url))
                    continue
            with self._deciding:
                if done.is_set():  # it finished while the server was asked: nothing to cut
                    return
                self.finding = finding
                self.cut = True
                if finding is not None and finding.verdict is pg_watch.Verdict.WORKING:  # past the ceiling
                    self._cancel()  # the server would run it on for nobody
                self.abort()
            return

    def _cancel(self) -> None:
        """Ask the server to cancel the running statement (a new connection with the cancel key, bounded)."""
        from modelyard.ledger.pg_watch import PROBE_CONNECT

        with contextlib.suppress(Exception):  # a courtesy to the server: the cut goes on whatever happens
            self._conn.cancel_safe(timeout=PROBE_CONNECT)

    @property
    def pid(self) -> int:
        """The server process of this connection (libpq's, from the handshake: no round trip; kept at open, as
        libpq says 0 once the connection is cut). Behind a pooler it is none of the server's: the watch finds the
        statement by its text (:mod:`~modelyard.ledger.pg_watch`)."""
        return self._pid

    def silent(self) -> str:
        """What to say when the bound cut the connection: where, how long, what the server said, what to check."""
        if self._checking:
            server = _server(self.url)
            host, sep, port = server.rpartition(":")
            if not (sep and port.isdigit()):
                host, port = server, ""
            probe = "pg_isready" + (f" -h {host.strip('[]')}" if host and " " not in host else "") \
                + (f" -p {port}" if port else "")
            return (f"routing log {self.where}: connected to {_server(self.url)}, but no answer to the schema check "
                    f"within {self.read_bound or 0:g}s, the connection was cut — the network to it drops packets, "
                    f"or the server is frozen or overloaded: check that it is up and reachable from this host "
                    f"({probe}, a firewall), then try again")
        from modelyard.ledger.pg_watch import Verdict

        finding = self.finding
        if finding is not None and finding.verdict is Verdict.WORKING:  # the ceiling passed
            ceiling = max(self.read_bound or 0, self.read_ceiling or 0)
            return dburl.scrub(
                f"routing log {self.where}: the query was still running on {_server(self.url)} after {ceiling:g}s "
                f"(pid {finding.pid}), the connection was cut — the server is slow, not down: read a shorter period, "
                f"or raise log.read_ceiling", self.url)
        if finding is not None and finding.verdict is Verdict.DOWN:  # stopped mid-read: the probe heard it first
            return dburl.scrub(
                f"routing log {self.where}: the server closed the connection — {_server(self.url)} is down or "
                f"restarting ({finding.said()}): check that it is up (pg_isready), then try again", self.url)
        if finding is not None and finding.verdict is Verdict.REFUSED:  # up, but no room to ask (max_connections)
            return dburl.scrub(
                f"routing log {self.where}: no answer to the query within {self.read_bound or 0:g}s, the connection "
                f"was cut — {_server(self.url)} is up, but refused the new connection that asks whether the query "
                f"still runs ({finding.said()}): give log.probe_url a way in that has room (a role under its "
                f"CONNECTION LIMIT, a server below max_connections), or read a shorter period", self.url)
        said = f" ({finding.said()})" if finding is not None else ""
        return dburl.scrub(
            f"routing log {self.where}: no answer from PostgreSQL within {self.read_bound or 0:g}s, the connection "
            f"was cut — the network to {_server(self.url)} drops packets, or the server is frozen or overloaded"
            f"{said}: check that it is up and reachable from this host (pg_isready, a firewall), then try again",
            self.url)

    def _bound(self) -> str:
        return f"SET LOCAL lock_timeout = {max(1, round((self.lock_timeout or 0) * 1000))}"

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        import psycopg

        cursor = self._conn.cursor()
        try:
            cursor.executemany(to_pg(sql), rows)
        except psycopg.OperationalError as exc:
            if row_too_big(exc):
                raise
            raise LogUnavailable(self.describe(exc)) from None
        return cursor

    @property
    def server_encoding(self) -> str:
        """The database's encoding as PostgreSQL names it (``UTF8``, ``LATIN1``, ``SQL_ASCII``…), from the handshake."""
        return self._conn.info.parameter_status("server_encoding") or "UTF8"

    @property
    def narrow_codec(self) -> str | None:
        """The Python codec of a database encoding that holds fewer characters than text may carry (``LATIN1``,
        ``WIN1251``, ``EUC_JP``…: PostgreSQL refuses a row with one it lacks, SQLSTATE 22P05); None for ``UTF8`` and
        ``SQL_ASCII`` (which stores any bytes, unconverted)."""
        from psycopg._encodings import pg2pyenc

        name = self.server_encoding
        if name in ("UTF8", "SQL_ASCII"):
            return None
        try:
            return pg2pyenc(name.encode())
        except Exception:  # an encoding Python has no codec for: keep ASCII, which every server encoding holds
            return "ascii"

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self._conn.info.transaction_status != TransactionStatus.IDLE

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def close(self) -> None:
        self._conn.close()

    def abort(self) -> None:
        """From another thread: end a call waiting on a connection that went silent (a host cut off by a firewall
        that drops packets, a server frozen). libpq waits on such a socket for as long as TCP keeps it — for ever when
        something in between still acknowledges — so its socket is shut down: the waiting call fails at once."""
        from modelyard.ledger.pg_watch import shut_down

        shut_down(self._conn)
