"""Is the log's path still the file a connection opened?

SQLite writes through an open file descriptor: once the file is deleted (``rm log.sqlite3*`` to start afresh, a
cleanup job) or replaced (``mv new.sqlite3 log.sqlite3``), every later commit succeeds into a file nobody can
open any more, and vanishes when the process exits — no error, ``written`` keeps counting. Comparing the path's
device and inode with the ones seen at connect time finds it (one ``stat``, ~2 µs).

A backup copied *into* the file (``cp backup.sqlite3 log.sqlite3``, a restore tool, Time Machine) keeps the inode. In
WAL mode only a checkpoint writes the database file, and every checkpoint first notes itself in the wal-index (the
``-shm`` file: ``nBackfillAttempted`` before its first write, ``nBackfill`` after its last, new salts when the log
starts over — https://www.sqlite.org/walformat.html): so the file's time or size changing while that note did not is
somebody else's write. The wal-index is read only when the ``stat`` shows a change (after each checkpoint).
"""

from __future__ import annotations

import enum
import mmap
import os
import shutil
import struct
import threading
import time
from datetime import datetime
from pathlib import Path

from modelyard.ledger import orphan


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Change(enum.Enum):
    """What happened to the file a connection opened."""

    DELETED = "deleted"
    REPLACED = "replaced by another file"
    OVERWRITTEN = "overwritten: a file was copied over it"
    #: truncated to nothing in place: logrotate's ``copytruncate`` (its copy is taken first, then ``cp /dev/null``
    #: over the file), ``: > log.sqlite3``, ``truncate -s 0``. Told apart from a copy: the remedy differs
    EMPTIED = "emptied in place (truncated: logrotate's copytruncate, `: > file`, `truncate -s 0`)"


#: what to do about :attr:`Change.EMPTIED`, said after it
_NOT_A_TEXT_LOG = ("; it is a database, not a text log: take it out of logrotate's list (log.keep_days bounds its "
                   "size, `modelyard backup` copies it safely)")


#: offsets in the wal-index header (native byte order): frames in the log, its salts, frames copied, being copied
_MAX_FRAME, _SALTS, _BACKFILL, _ATTEMPTED = 16, 32, 96, 128
_NOTE = _ATTEMPTED + 4


#: changes that keep the file (its inode) and change its content
_IN_PLACE = (Change.OVERWRITTEN, Change.EMPTIED)


def _note(view: mmap.mmap | None) -> tuple[int, ...] | None:
    """(frames, salt 1, salt 2, frames copied, frames being copied) of a mapped ``-shm``: read from memory, no
    system call (the writer looks at every batch)."""
    if view is None:
        return None
    return (struct.unpack_from("=I", view, _MAX_FRAME)[0], *struct.unpack_from("=II", view, _SALTS),
            struct.unpack_from("=I", view, _BACKFILL)[0], struct.unpack_from("=I", view, _ATTEMPTED)[0])


def _checkpointed_since(old: tuple[int, ...] | None, new: tuple[int, ...] | None) -> bool:
    """Did a checkpoint (any connection's, any process's) write the database file between the two notes? Unsure
    counts as yes: a restore taken for a checkpoint is missed; a checkpoint taken for a restore would set committed
    rows aside."""
    if old is None or new is None or new[3] != new[4]:  # a checkpoint under way, or one that failed half-way
        return True
    if new[1:3] == old[1:3]:
        return new[3:] != old[3:]
    # the log started over (new salts): that follows a checkpoint that copied all of it — one since the old note
    # unless that had copied all already; and one since the start over has noted itself; and a RESTART or TRUNCATE
    # checkpoint (``PRAGMA wal_checkpoint(TRUNCATE)`` by hand, after a VACUUM) starts it over itself, empty (a writer
    # starting it over publishes frames with its commit): taken for no checkpoint, a vacuum read as a restore
    return new[4] > 0 or old[3] < old[0] or new[0] == 0


def _looks(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of the file at ``path``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _first_page(fd: int | None) -> bytes | None:
    """The file's first 4 KiB (its header and schema page): a file copied over it differs there (its size, its page
    count), a ``touch`` does not."""
    if fd is None:
        return None
    try:
        return os.pread(fd, 4096, 0)
    except OSError:
        return None


class SameFile:
    """Remembers which file ``path`` named when it was opened; :meth:`gone` says it no longer does. ``content``:
    also a file copied over it in place — for the connections of a writer, which share the ``-shm`` at the path
    (its checkpoints call :meth:`checkpointed`). Used from the writer's and the checkpoint thread: one lock."""

    def __init__(self, path: Path, *, content: bool = False):
        self.path = path
        self.content = content
        self.change: Change | None = None
        self._lock = threading.Lock()
        #: descriptors of the file and of its -shm (mapped: ``_view``), opened once per file and closed only when that
        #: file is no longer the log (:meth:`reopened`) or at :meth:`release`: closing any descriptor of a file drops
        #: every POSIX lock this process holds on it — SQLite's too (https://www.sqlite.org/howtocorrupt.html, 2.2);
        #: another process then took the file's lock, and at its close deleted the write-ahead log under this one
        self._fd: int | None = None
        self._fd_of: tuple[int, int] | None = None
        self._shm_fd: int | None = None
        self._shm: tuple[int, int] | None = None
        self._view: mmap.mmap | None = None
        #: the file's (size, time), the wal-index's note and the file's first page when last looked at
        self._looked: tuple[int, int] | None = None
        self._noted: tuple[int, ...] | None = None
        self._page: bytes | None = None
        self.reopened()

    def gone(self) -> bool:
        with self._lock:
            return self._gone()

    def _gone(self) -> bool:
        # the note before the look: a checkpoint between the two is then in the look and not in the note (taken for
        # a checkpoint next time), never the other way round (its writes taken for somebody else's)
        note = _note(self._view)
        try:
            st = os.stat(self.path)
        except OSError:
            self.change = Change.DELETED
            return True
        if (st.st_dev, st.st_ino) != self.opened:
            self.change = Change.REPLACED
            return True
        if self.change in _IN_PLACE:
            return True  # until reopened
        if self._view is None:  # not asked, or no wal-index to read: the inode alone
            return False
        looked = (st.st_size, st.st_mtime_ns)
        if looked == self._looked:  # a checkpoint inside the time's tick (it is coarse: ~4 ms) leaves it as it was
            if _checkpointed_since(self._noted, note):
                self._stamp(looked, note)  # its first page too: else a later touch would look like a copy
            else:
                self._noted = note
            return False
        after = _note(self._view)  # judged by a note after the look: a checkpoint notes itself before it writes
        if _checkpointed_since(self._noted, after) or identity(Path(f"{self.path}-shm")) != self._shm:
            self._stamp(looked, note)
            return False
        page = _first_page(self._fd)
        if self._looked is not None and looked[0] == self._looked[0] and page == self._page:  # touched, not written
            self._stamp(looked, note, page)
            return False
        # a checkpoint never leaves the file empty once it held a page (a new log's file is empty until its first)
        emptied = st.st_size == 0 and self._looked is not None and self._looked[0] > 0
        self.change = Change.EMPTIED if emptied else Change.OVERWRITTEN
        return True

    def _stamp(self, looked: tuple[int, int] | None, note: tuple[int, ...] | None, page: bytes | None = None) -> None:
        self._looked, self._noted = looked, note
        self._page = page if page is not None else _first_page(self._fd)

    def checkpointed(self) -> None:
        """A checkpoint of this process wrote the file: what it looks like now is its own doing."""
        with self._lock:
            if self.content and self.change is None:
                note = _note(self._view)  # first, as in _gone
                self._stamp(_looks(self.path), note)

    def reopened(self) -> None:
        with self._lock:
            self.change = None
            self.opened = identity(self.path)
            shm = Path(f"{self.path}-shm")
            shm_now = identity(shm)
            if self.content and (self.opened != self._fd_of or shm_now != self._shm):  # the same files: kept open
                self._close()
                self._fd, self._fd_of = _open(self.path), self.opened
                self._shm_fd = _open(shm)
                try:
                    self._view = (None if self._shm_fd is None else
                                  mmap.mmap(self._shm_fd, _NOTE, access=mmap.ACCESS_READ))
                except (OSError, ValueError):  # shorter than the header
                    self._view = None
            self._shm = shm_now
            self._looked, self._noted, self._page = None, None, None
            if self.content:
                note = _note(self._view)
                self._stamp(_looks(self.path), note)

    def _close(self) -> None:
        if self._view is not None:
            self._view.close()
        for fd in (self._fd, self._shm_fd):
            if fd is not None:
                os.close(fd)
        self._view = self._fd = self._shm_fd = self._fd_of = None

    def release(self) -> None:
        """Close its descriptors: once this process's connections to the file are closed (see ``_fd``)."""
        with self._lock:
            self._close()

    @property
    def descriptor(self) -> int | None:
        """A descriptor of the file last opened (None: it could not be opened): it still reads that file once another
        is at the path."""
        return self._fd

    def describe(self, then: str) -> str:
        what = (self.change or (Change.DELETED if identity(self.path) is None else Change.REPLACED)).value
        advice = _NOT_A_TEXT_LOG if self.change is Change.EMPTIED else ""
        return f"routing log {self.path} was {what} while this process had it open; {then}{advice}"


#: how long a file copied over the log must stay unchanged before it is taken (the copy has ended), at most SETTLE_MAX
SETTLE_QUIET = 0.2
SETTLE_MAX = 30.0


def settle(path: Path) -> None:
    """Wait until a copy into ``path`` has ended: its size and time unchanged for SETTLE_QUIET s (SETTLE_MAX at
    most: a file written for good is taken as it is)."""
    deadline = time.monotonic() + SETTLE_MAX
    last = _looks(path)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_QUIET)
        now = _looks(path)
        if now == last:
            return
        last = now


def stale_beside(path: Path, opened: tuple[tuple[int, int] | None, ...]) -> bool:
    """The old file's write-ahead log (``opened[0]``) is still beside the file now at ``path``: opening that file now
    would lay its pages over it."""
    return opened[0] is not None and identity(Path(f"{path}-wal")) == opened[0]


def take_over(path: Path, change: Change, opened: tuple[tuple[int, int] | None, ...], *,
              wal_kept: bool = False) -> str | None:
    """Make the file now at ``path`` safe to open after ``change``; where the old file's last rows went, if anywhere.

    A file copied in place is copied once more to a file of its own, renamed over the path: the connections on the
    old one then see it moved, and SQLite neither checkpoints their write-ahead log into it nor deletes the files
    at the path when they close (SQLite's pager looks whether its file moved). The write-ahead log the old file left
    at the path (``opened``: the ``-wal`` and ``-shm`` the old connection opened, :class:`WriteAhead`'s; ones another
    process already made are left alone) is renamed aside, else SQLite would lay its pages over the new file's; its
    ``-shm`` is removed (an index, rebuilt from the log). ``wal_kept``: the old file's rows are kept whole elsewhere
    (:mod:`.replaced`), so its write-ahead log is removed rather than set aside."""
    if change in _IN_PLACE:
        settle(path)
        fresh = path.with_name(f"{path.name}.restoring")
        shutil.copyfile(path, fresh)
        with open(fresh, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(fresh, path)
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if opened[1] is not None and identity(shm) == opened[1]:
        shm.unlink(missing_ok=True)
    if not stale_beside(path, opened):
        return None
    if wal_kept:
        wal.unlink(missing_ok=True)
        return None
    # the deleted file's pages in its write-ahead log made a database of their own: page images alone are unreadable
    if change is Change.DELETED and (said := orphan.set_aside(path, "the old file's write-ahead log")):
        return said
    aside = wal.with_name(f"{wal.name}.replaced-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    os.replace(wal, aside)
    return f"the old file's last rows (its write-ahead log) are kept in {aside}"


class WriteAhead:
    """The write-ahead files beside a WAL log (``-wal``, ``-shm``) as a connection opened them: deleted under it (a
    clean-up that took them for temporary files, a backup tool), SQLite goes on committing into files only this process
    can see — other processes read the log as it was, and a crash loses those commits. Looked at once a ``every`` s."""

    def __init__(self, path: Path, every: float = 1.0):
        self.files = (Path(f"{path}-wal"), Path(f"{path}-shm"))
        self.every = every
        self.opened = tuple(identity(f) for f in self.files)
        self._looked = time.monotonic()

    def gone(self) -> bool:
        now = time.monotonic()
        if now - self._looked < self.every:
            return False
        self._looked = now
        return any(was is not None and identity(f) != was for f, was in zip(self.files, self.opened, strict=True))

    def made_anew(self) -> bool:
        """After :meth:`gone`: another process opened the log since and made write-ahead files of its own at the
        path (looked at once a ``every`` s)."""
        now = time.monotonic()
        if now - self._looked < self.every:
            return False
        self._looked = now
        return identity(self.files[0]) not in (None, self.opened[0])

    def reopened(self) -> None:
        self.opened = tuple(identity(f) for f in self.files)

    def _log(self) -> Path:
        return self.files[0].parent / self.files[0].name.removesuffix("-wal")

    def _restart(self) -> str:
        return (f"stop every modelyard process using this log (`fuser {self._log()}` lists them) and only then start "
                "them again: one started while another still runs gets write-ahead files of its own beside the old "
                "ones, and two write-ahead logs of one file corrupt it")

    def describe(self) -> str:
        return (f"routing log {self._log()}: its write-ahead files (-wal, -shm) were deleted while this process had "
                "them open, so other processes no longer see its commits and a crash would lose them; each commit is "
                f"now copied into the file at once — {self._restart()}; leave those files alone while modelyard runs")

    def describe_anew(self) -> str:
        return (f"routing log {self._log()}: another process opened it since its write-ahead files were deleted and "
                "made new ones; if it writes (serve, ask, chat, telegram), its commits and this process's go to two "
                f"write-ahead logs of one file, which corrupts it — {self._restart()}")
