"""A consistent copy of the SQLite routing log while modelyard runs (``modelyard backup DEST``).

``cp log.sqlite3 backup.sqlite3`` while a process writes is no backup: in WAL mode the rows committed since the last
checkpoint are in ``log.sqlite3-wal``, not in the file, so the copy lacks them; and a checkpoint that runs while ``cp``
reads writes pages into the file under it — the copy holds pages from before and after (torn), which SQLite may not
notice until a query meets the mismatch ("Backup or restore while a transaction is active",
https://www.sqlite.org/howtocorrupt.html §1.2). ``VACUUM INTO`` reads one snapshot inside a read transaction — a
checkpoint does not write past it — and writes a new, compacted database: "a consistent snapshot of the original"
(https://www.sqlite.org/lang_vacuum.html#vacuuminto). The copy is written beside ``DEST``, checked (``quick_check``),
synced and only then renamed to ``DEST``: a backup cut short leaves no file that looks whole.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from modelyard.ledger.db import connect_readonly

#: how long the copy waits for a writer's lock (the snapshot is read-only: only the start waits)
BUSY_TIMEOUT = 10.0


class BackupError(Exception):
    """The copy could not be made: said with the file and why."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    requests: int
    size: int


def dated_name(now: float | None = None) -> str:
    """The name a backup takes in a folder: ``routing-20261130T094512Z.sqlite3`` (UTC, sorts by date)."""
    return time.strftime("routing-%Y%m%dT%H%M%SZ.sqlite3", time.gmtime(now))


def backup(source: Path, dest: Path, *, now: float | None = None) -> Backup:
    """Copy the log at ``source`` to ``dest`` (which must not exist), consistent whatever writes meanwhile.

    ``dest`` a folder: the copy goes into it under :func:`dated_name`, as ``cp FILE FOLDER/`` puts a file in a folder —
    ``modelyard backup ~/backups`` said "~/backups exists: name a new file" (and a nightly cron line needs a new name
    each night)."""
    if not source.is_file():
        raise BackupError(f"routing log {source}: no such file (nothing logged on this host yet?)")
    if dest.is_dir():
        dest = dest / dated_name(now)
    if dest.exists():
        raise BackupError(f"{dest} exists: name a new file (a backup never overwrites one)")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent}: no such directory")
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        conn = connect_readonly(source, timeout=BUSY_TIMEOUT)
        try:
            conn.execute("VACUUM INTO ?", (str(partial),))
        finally:
            conn.close()
        check = sqlite3.connect(partial)
        try:
            verdict = check.execute("PRAGMA quick_check").fetchone()[0]
            requests = int(check.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
        finally:
            check.close()
        if verdict != "ok":
            raise BackupError(f"routing log {source}: the copy fails SQLite's quick_check ({verdict}): the log "
                              "itself may be damaged — `sqlite3 … .recover` reads what it can")
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        _put_in_place(partial, dest)
        _sync_dir(dest.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"routing log {source}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return Backup(dest, requests, dest.stat().st_size)


def _put_in_place(partial: Path, dest: Path) -> None:
    """Give the finished copy its name, never over a file made there since the check above (a second backup started
    at the same second, a user's file): a hard link refuses an existing name atomically, where a rename replaces it.
    A filesystem without hard links (exFAT, some network and FUSE mounts) gets the rename after one more look."""
    try:
        os.link(partial, dest)
    except FileExistsError:
        raise BackupError(f"{dest} exists: name a new file (a backup never overwrites one)") from None
    except OSError:
        if dest.exists():
            raise BackupError(f"{dest} exists: name a new file (a backup never overwrites one)") from None
        os.replace(partial, dest)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
