"""The rows of a log file another file was moved over while a writer had it open, kept where they can be read.

``mv other.sqlite3 log.sqlite3`` while ``serve`` runs — the shrink recipe (``VACUUM INTO 'small.sqlite3'`` then
``mv``), a backup restored, a sync tool — leaves the writer's file without a name (or under another one). Its rows
are in that file and, since the last checkpoint, in its write-ahead log. The writer used to rename that ``-wal`` aside
and say 'the old file's last rows (its write-ahead log) are kept in …-wal.replaced-…': a write-ahead log is page images
of its own database and cannot be read without it, and that database was gone — the rows written between the copy and
the ``mv`` (20 of 330 in the probe) were nowhere anybody could read. Now, through the writer's connection, which still
has the old file open: a file still named somewhere (moved away) gets its write-ahead log copied in (a checkpoint), so
it holds every row where it is; a file with no name left is copied whole (SQLite's backup, its write-ahead log
included) to ``<log>.replaced-<time>``, a database of its own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import datetime
from pathlib import Path


def keep_old(conn: sqlite3.Connection, path: Path, fd: int | None) -> str | None:
    """Keep every row of the file ``conn`` has open (``fd``: a descriptor of that file, to see whether it still has a
    name); what to say of it, or None when it could not be kept (the caller keeps the write-ahead log aside)."""
    try:
        linked = fd is not None and os.fstat(fd).st_nlink > 0
    except OSError:
        return None
    if linked:  # moved away: its write-ahead log, which stays at the old path, copied into it
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        except sqlite3.Error:
            return None
        if busy or frames != copied:
            return None
        return ("the file that was there keeps every row it had where it was moved to (its write-ahead log copied "
                "into it)")
    aside = path.with_name(f"{path.name}.replaced-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    try:
        target = sqlite3.connect(aside)
        try:
            conn.backup(target)
        finally:
            target.close()
    except (sqlite3.Error, OSError):
        with contextlib.suppress(OSError):
            aside.unlink()  # a copy cut short (a full disk) is no copy
        return None
    return (f"the file that was there had no other name: every row it had is kept in {aside}, a SQLite database of "
            "its own (ATTACH it and INSERT OR IGNORE what the new file lacks)")
