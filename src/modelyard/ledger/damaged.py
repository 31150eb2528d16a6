"""A routing log file SQLite finds damaged: moved aside whole (kept for ``sqlite3 … .recover``), a new file made.

SQLite says SQLITE_CORRUPT ('database disk image is malformed', 'malformed database schema') or SQLITE_NOTADB ('file
is not a database') after a disk or power fault, a file synced by a cloud folder, a bad copy. At a write, the writer
sets the file aside and goes on in a new one (tests/integration/test_log_damaged.py). At start it refused to open, and
``serve`` exited 1 — under systemd's ``Restart=`` or Docker's ``restart: unless-stopped`` for ever, no request answered
because of the log (seakee/CPA-Manager-Plus#523: 'exits(1) in an infinite restart loop on open sqlite: database disk
image is malformed (11); HTTP port never binds', RestartCount 634; sysadminsmedia/homebox#160, slskd/slskd#634: the
same at every start). Now a file that is SQLite's — its header says so, or its write-ahead log is beside it, or a
zeroed block took its header, or its name is a database's — is set aside at start too, said as an ERROR and in
``/healthz``. A file that is nothing of the kind (``log.path`` naming the config or a model by mistake) is left where
it is and refused, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from modelyard.ledger.aside import recover_command

#: the first 16 bytes of every SQLite database file (https://www.sqlite.org/fileformat.html, 1.3.1)
MAGIC = b"SQLite format 3\x00"
#: names of files that are databases whatever their first bytes say
_DATABASE_SUFFIXES = (".sqlite3", ".sqlite", ".db", ".db3")


def damaged(exc: BaseException) -> bool:
    """SQLite found the file damaged: SQLITE_CORRUPT ('database disk image is malformed', any of its extended codes)
    or SQLITE_NOTADB ('file is not a database')."""
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorcode", 0) & 0xFF in (11, 26)


def sqlite_file(path: Path) -> bool:
    """Whether ``path`` is a SQLite database, damaged or not, rather than another program's file named by mistake."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError:
        return False
    return (head.startswith(MAGIC) or Path(f"{path}-wal").exists() or (len(head) == 100 and not any(head))
            or path.suffix.lower() in _DATABASE_SUFFIXES)


@contextlib.contextmanager
def alone(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the log's directory while a process looks at a damaged file and sets it aside:
    two processes starting at once on it (``serve`` and the bot) would each move aside what the other had just made,
    or open the new file while the old write-ahead log still lay beside it. Without a lock there (a filesystem that
    has none), it goes on without one."""
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # the lock goes with it


def set_aside(path: Path, exc: BaseException) -> tuple[Path | None, str]:
    """Move the damaged ``path`` (with its write-ahead log) aside: (where it went, what to say). Where is None when it
    could not be moved; the words then say to move it by hand."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for n in itertools.count(2):  # never over an earlier one set aside within the same second
        if not aside.exists() and not Path(f"{aside}-wal").exists():
            break
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    try:
        os.replace(path, aside)
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}-wal", f"{aside}-wal")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}-shm")
    except OSError as move:
        return None, (f"routing log {path} is damaged (SQLite: {exc}) and could not be moved aside ({move}): its rows "
                      "are held; move it away yourself")
    # the path once: /healthz keeps 500 characters of it, and a long path (a CI's, a macOS Application Support
    # folder) cut the recovery command off when the message named it four times
    return aside, (f"routing log {path} is damaged (SQLite: {exc}): moved aside as {aside.name} in the same folder, "
                   f"new rows go to a new file; recover its rows there with `{recover_command(aside.name)}`")

