"""Where the routing log lives, and the one connection shape every reader uses on either backend.

Readers (``log``, ``stats``, ``report``, ``rate``, ``models``, the dashboard) take a
:class:`LogConnection`: ``sqlite3.Connection`` itself, or :class:`~modelyard.ledger.pg.PgConnection`.
Both run the same SQL text (``?`` placeholders, the SQL the two databases share), return rows
readable by name and position, and so no reader branches on the backend. The SQLite path is
the plain ``sqlite3`` connection, exactly as fast as before.

With ``log.url`` set, readers see PostgreSQL (every host's requests); the local SQLite file
(``log.path``) stays this host's write-ahead spool.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelyard.config import dburl
from modelyard.config.schema import Config, LogConfig
from modelyard.ledger.aside import recover_command
from modelyard.ledger.damaged import damaged, sqlite_file
from modelyard.ledger.db import connect
from modelyard.ledger.filesystem import on_network
from modelyard.ledger.refusal import refused
from modelyard.ledger.refusal import said as refusal_said
from modelyard.paths import default_log_path


class LogUnavailable(RuntimeError):
    """The configured log cannot be reached or used; the message names it (never with a password)."""


class LogConnection(Protocol):
    """The DB-API subset the readers use: ``execute(sql, params)`` → ``fetchone``/``fetchall``/iteration."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def close(self) -> None: ...


def where_to_fix(path: Path) -> str:
    """What to change when the log file cannot be used: ``log.path`` when the config names it; the default lives
    in the data directory, which no config line names (a newcomer looked for a log.path that was not there)."""
    if path != default_log_path():
        return "check log.path in the config"
    source = ("$MODELYARD_DATA_DIR, the data directory" if os.environ.get("MODELYARD_DATA_DIR")
              else "the user data directory")
    return f"it is the default place, in {source}: fix that, or set log.path in the config to put it elsewhere"


#: free bytes under which a log that cannot be opened is said to be on a full disk
FULL_DISK = 1 << 20


#: SQLite's primary result codes of a store that refuses for now: another connection's lock, a full disk
_BUSY, _FULL = 5, 13


def free_bytes(path: Path) -> int | None:
    """Bytes free on the disk that holds ``path`` (its nearest existing folder); None when it cannot be read."""
    where = next((p for p in (path, *path.parents) if p.exists()), None)
    try:
        return shutil.disk_usage(where).free if where is not None else None
    except OSError:
        return None


def passing(path: Path, exc: BaseException) -> bool:
    """Whether the log could not be opened for a state that passes — its disk full (SQLITE_FULL, or SQLite's 'disk I/O
    error' with under FULL_DISK free and no errno of a place that refuses: ledger/refusal.py), another process holding
    its lock — rather than one somebody must change (permissions, a read-only mount, a wrong path, another program's
    file). A writer starts without the file on such a state and holds its rows until it opens (ledger/writer.py)."""
    if not isinstance(exc, sqlite3.OperationalError) or path.is_dir():
        return False
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (_BUSY, _FULL):
        return True
    free = free_bytes(path)
    return free is not None and free < FULL_DISK and refused(path, exc) is None


def hidden_cause(path: Path, exc: BaseException) -> str | None:
    """What SQLite's words hide when the log cannot be opened: a full disk read 'disk I/O error' or 'cannot
    rollback - no transaction is active' beside 'check that this user can write the file'; a directory named
    as the file read 'unable to open database file'; a log on NFS or a FUSE folder 'disk I/O error' or 'database is
    locked' (ledger/filesystem.py); a read-only, missing or forbidden place, its errno (ledger/refusal.py)."""
    if path.is_dir():
        return (f"routing log {path}: a directory, not a file: name a file in it, e.g. {path / 'routing.sqlite3'}; "
                + where_to_fix(path))
    free = free_bytes(path)
    full = free is not None and free < FULL_DISK
    # a damaged file is said as damaged wherever it is: the filesystem let it be read
    damaged = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
    if not damaged and not full and (remote := on_network(path)):
        return f"routing log {path}: cannot be opened ({exc}); {remote}"
    if free is None or free >= FULL_DISK:
        return None  # said as it was: 'cannot be opened … check that this user can write the file and its directory'
    # the filesystem's own errno before the free-space reading: /proc, /sys, squashfs and read-only mounts report 0
    # bytes free, and a log there read "the disk holding it is full"
    if not damaged and (refusal := refusal_said(path, exc, where_to_fix(path))):
        return refusal
    return (f"routing log {path}: the disk holding it is full ({free // 1024} KiB free; SQLite said: {exc}): free "
            f"some space there; {where_to_fix(path)}")


def held_by_another(path: Path, exc: BaseException) -> str | None:
    """What to say when another process holds the file locked past the busy timeout (10 s): it was told to check
    that this user may write the file, which was not the trouble."""
    if not isinstance(exc, sqlite3.OperationalError) or ("locked" not in str(exc) and "busy" not in str(exc)):
        return None
    return (f"routing log {path}: another process held it locked for longer than 10 s ({exc}) — a sqlite3 shell "
            "left in a transaction or in locking_mode=EXCLUSIVE, a backup or copy tool: `fuser` or `lsof` on the file "
            "shows which; end it, then try again")


def readable(raw: bytes) -> str:
    """A TEXT value as readers show it: SQLite keeps whatever bytes it is given (https://www.sqlite.org/invalidutf.html)
    and other programs put Latin-1 there (a ``sqlite3`` shell's ``.import``, a script fixing a prompt by hand:
    blacklanternsecurity/bbot#1071, thawn/ttmp32gme#122) — Python's sqlite3 refused the whole read ('Could not decode
    to UTF-8 column'), and ``log``, ``report`` and the dashboard ended in a traceback. What is not UTF-8 reads as
    U+FFFD. Decoding valid text this way costs what the default does in C plus one call (~20% of a bare
    ``SELECT *`` fetch, a few % of a command)."""
    return raw.decode("utf-8", "replace")


def log_path(log: LogConfig) -> Path:
    """The local SQLite file: the whole log, or with ``log.url`` this host's spool."""
    return Path(log.path).expanduser() if log.path else default_log_path()


@dataclass(frozen=True)
class LogStore:
    path: Path
    url: str | None = None
    #: seconds in all a PostgreSQL read the server is still running may take (``log.read_ceiling``; None: the default)
    read_ceiling: float | None = None
    #: where a PostgreSQL read with no answer asks whether the server still runs it (``log.probe_url``; None: ``url``)
    probe_url: str | None = None

    @classmethod
    def of(cls, config: Config) -> LogStore:
        return cls(log_path(config.log), config.log.url, config.log.read_ceiling, config.log.probe_url)

    @property
    def where(self) -> str:
        """What to show people: the file, or the URL without its password."""
        return dburl.redact(self.url) if self.url else str(self.path)

    def connect(self, *, readonly: bool = False) -> LogConnection:
        """A new connection to where readers look (PostgreSQL when configured); the caller closes it.
        Raises ``LogUnavailable`` when PostgreSQL cannot be reached, and each statement does when PostgreSQL gives no
        answer within ``pg.READ_BOUND`` and the server, asked, is not running it any more (a connection gone silent
        mid-query), or when it still runs it after ``read_ceiling`` (``pg.READ_CEILING``)."""
        if self.url:
            from modelyard.ledger import pg

            return pg.PgConnection(self.url, migrate_schema=not readonly, lock_timeout=pg.READ_LOCK_TIMEOUT,
                                   read_bound=pg.READ_BOUND, read_ceiling=self.read_ceiling or pg.READ_CEILING,
                                   probe_url=self.probe_url)
        return self.local(readonly=readonly)

    def local(self, *, readonly: bool = False) -> sqlite3.Connection:
        """This host's SQLite file, whatever the readers use (probes, conversations, the spool). A file that
        is not a database, or a ``log.path`` naming a directory, raises ``LogUnavailable`` naming it."""
        try:
            conn = connect(self.path, readonly=readonly)
        except (sqlite3.Error, OSError) as exc:
            if said := hidden_cause(self.path, exc) or held_by_another(self.path, exc):
                raise LogUnavailable(said) from None
            if not readonly and damaged(exc) and sqlite_file(self.path):  # what a writer does with it: said
                raise LogUnavailable(f"routing log {self.path} is damaged (SQLite: {exc}): the next modelyard process "
                                     "that writes the log (serve, ask, chat, the bot) sets it aside whole and starts a "
                                     "new one; its rows can then be recovered with "
                                     f"`{recover_command(f'{self.path.name}.damaged-<time>')}`") from None
            raise LogUnavailable(f"routing log {self.path}: cannot be opened ({exc}); it must be a SQLite file (or "
                                 "where to create one) that this user can read and write; "
                                 + where_to_fix(self.path)) from None
        conn.text_factory = readable
        return conn
