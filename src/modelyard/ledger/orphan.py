"""A write-ahead log left without its database: ``rm log.sqlite3`` while ``log.sqlite3-wal`` and ``-shm`` stay.

A user who deletes the log file alone (to start afresh, to free space, by a clean-up job's glob) leaves its
write-ahead log beside the path; after a writer killed (kill -9, the OOM killer, a power cut) that file holds every
row committed since the last checkpoint — for a young log, every row. SQLite, opening a database file that is missing
or empty, deletes a write-ahead log it finds beside it without a word (pager.c, ``pagerOpenWalIfPresent``: "If the
database file is zero bytes in size … delete the WAL file"): the next ``serve`` or ``modelyard log`` silently took
those rows away. And while a process still ran on the deleted file, the next one opened the new file through the old
one's ``-shm``, an index of another file's log.

Before anything opens the path, such a log is set aside: its newest page 1 (the header and the schema) is written as
the database file of ``<log>.orphaned-<time>`` with the write-ahead log beside it, and SQLite itself replays and
checks its frames (their salts and checksums) and copies them in — a database of its own, the rows of every page the
log held. Pages only the deleted file had are missing there: ``integrity_check`` says so and ``sqlite3 … .recover``
reads what is left. A log with no page 1 cannot be opened as a database: it is only moved aside. The ``-shm`` (an
index of that log, rebuilt from it) is removed. Said as an ERROR naming the files.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import struct
from datetime import datetime
from pathlib import Path

from modelyard.ledger.aside import recover_command

#: the write-ahead log's header and frame header sizes, and its two magic numbers
#: (https://www.sqlite.org/fileformat.html, 4.1 "WAL File Format")
_HEADER, _FRAME = 32, 24
_MAGIC = (0x377F0682, 0x377F0683)


def orphaned(path: Path) -> bool:
    """Whether ``path`` has no database (missing or empty) and a write-ahead log with at least one frame beside it:
    what SQLite would delete on opening it. One ``stat`` when the file is there (every connect asks)."""
    try:
        if os.stat(path).st_size > 0:
            return False
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        return os.stat(f"{path}-wal").st_size > _HEADER + _FRAME
    except OSError:
        return False


def _first_page(wal: Path) -> bytes | None:
    """The newest page 1 among the log's frames of its current generation (salts as in its header); None without."""
    try:
        with open(wal, "rb") as f:
            header = f.read(_HEADER)
            if len(header) < _HEADER:
                return None
            magic, _, size, _, salt1, salt2 = struct.unpack(">IIIIII", header[:24])
            if magic not in _MAGIC or size < 512 or size & (size - 1):
                return None
            newest = None
            while len(frame := f.read(_FRAME)) == _FRAME:
                page = f.read(size)
                if len(page) < size:
                    break
                number, _, s1, s2 = struct.unpack(">IIII", frame[:16])
                if (s1, s2) != (salt1, salt2):
                    break  # a frame of an earlier generation: the log ends before it
                if number == 1:
                    newest = page
            return newest
    except OSError:
        return None


def _aside(path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.orphaned-{stamp}")
    for n in itertools.count(2):  # never over one set aside within the same second
        if not aside.exists() and not Path(f"{aside}-wal").exists():
            return aside
        aside = path.with_name(f"{path.name}.orphaned-{stamp}-{n}")
    raise AssertionError("unreachable")


def _rebuilt(aside: Path) -> tuple[bool, int | None, bool, tuple[int, int]]:
    """Replay the write-ahead log beside ``aside`` into it and leave it a database of its own (rollback journal):
    (replayed, requests it holds or None when that table cannot be read, whether SQLite finds it whole, (pages that
    hold something, pages)). A log whose schema pages were checkpointed into the deleted file refuses every statement
    ('database disk image is malformed'); closing the last connection copies the log in all the same."""
    conn = sqlite3.connect(aside, isolation_level=None)
    try:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()  # the last connection: SQLite copies the log in and deletes it
    if Path(f"{aside}-wal").exists() and Path(f"{aside}-wal").stat().st_size > 0:
        return False, None, False, (0, 0)
    Path(f"{aside}-wal").unlink(missing_ok=True)
    Path(f"{aside}-shm").unlink(missing_ok=True)
    with open(aside, "r+b") as f:
        f.seek(18)
        f.write(b"\x01\x01")  # the header's write and read versions: a rollback-journal file, no -wal looked for
        f.seek(0)
        size = int.from_bytes(f.read(18)[16:18], "big")
        size = 65536 if size == 1 else size  # the header's way of writing 65536 (fileformat.html, 1.3.2)
        f.seek(0)
        pages = [f.read(size) for _ in range(os.fstat(f.fileno()).st_size // size)]
    held = (sum(1 for page in pages if any(page)), len(pages))
    conn = sqlite3.connect(aside, isolation_level=None)
    try:
        try:  # pages only the deleted file had read as damaged
            whole = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            whole = False
        try:
            count = int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
        except sqlite3.Error:
            count = None
    finally:
        conn.close()
    return True, count, whole, held


def set_aside(path: Path, found: str | None = None) -> str | None:
    """Set aside the write-ahead log found without its database at ``path`` (:func:`orphaned`); what to say (after
    ``found``, what was found), or None when there was none any more (another process starting at once took it
    first). Never raises: a log that could not be moved is said, and SQLite then deletes it as before."""
    if not orphaned(path):
        return None
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    with contextlib.suppress(OSError):
        found = found or (f"routing log {path}: its database file is gone (deleted? `rm {path.name}` alone leaves "
                          f"{wal.name} and {shm.name} behind) but its write-ahead log {wal.name} is still there "
                          f"({wal.stat().st_size} bytes), which SQLite deletes on opening the path")
    found = found or f"routing log {path}: its database file is gone but its write-ahead log {wal.name} is there"
    aside = _aside(path)
    page = _first_page(wal)
    try:
        if page is None:  # no schema page: not a database SQLite can open; the log's page images kept as they are
            raw = aside.with_name(f"{aside.name}.wal")
            os.replace(wal, raw)
            shm.unlink(missing_ok=True)
            return (f"{found}: moved aside as {raw.name} (it holds no page 1, so no SQLite database can be made of it;"
                    " `sqlite3 … .recover` cannot read it either); a new log file is started")
        with open(aside, "xb") as f:
            f.write(page)
        os.replace(wal, f"{aside}-wal")
        shm.unlink(missing_ok=True)
    except OSError as exc:
        with contextlib.suppress(OSError):
            if not Path(f"{aside}-wal").exists():
                aside.unlink()
        return f"{found}: it could not be moved aside ({exc}) — move {wal} away yourself before the next start"
    try:
        replayed, count, whole, (held, pages) = _rebuilt(aside)
    except (sqlite3.Error, OSError) as exc:
        replayed, count, whole, held, pages, why = False, None, False, 0, 0, f" ({exc})"
    else:
        why = ""
    if not replayed:
        return (f"{found}: moved aside as {aside.name}-wal beside {aside.name} (its page 1), which SQLite could not "
                f"replay{why}; a new log file is started")
    if whole:
        return (f"{found}: every row it held is kept in {aside.name} in the same folder, a SQLite database of its own "
                f"({count} request(s); ATTACH it and INSERT OR IGNORE what you want back); a new log file is started")
    missing = f"{pages - held} of its {pages} pages were only in the deleted file"
    if count is not None:
        return (f"{found}: what it held is kept in {aside.name} in the same folder ({count} request(s) readable; "
                f"{missing}) — `{recover_command(aside.name)}` reads what is left; a new "
                "log file is started")
    return (f"{found}: its pages are kept in {aside.name} in the same folder, but {missing}, the schema's among them, "
            "so no table of it can be read (a forensic tool may read its rows); a new log file is started")
