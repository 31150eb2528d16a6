"""Is the log's path still the file a connection opened?

SQLite writes through an open file descriptor: once the file is deleted (``rm log.sqlite3*`` to start afresh, a
cleanup job) or replaced (``mv new.sqlite3 log.sqlite3``), every later commit succeeds into a file nobody can
open any more, and vanishes when the process exits — no error, ``written`` keeps counting. Comparing the path's
device and inode with the ones seen at connect time finds it (one ``stat``, ~2 µs).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class SameFile:
    """Remembers which file ``path`` named when it was opened; :meth:`gone` says it no longer does."""

    def __init__(self, path: Path):
        self.path = path
        self.opened = identity(path)

    def gone(self) -> bool:
        return identity(self.path) != self.opened

    def reopened(self) -> None:
        self.opened = identity(self.path)

    def describe(self, then: str) -> str:
        what = "deleted" if identity(self.path) is None else "replaced by another file"
        return f"routing log {self.path} was {what} while this process had it open; {then}"


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

    def reopened(self) -> None:
        self.opened = tuple(identity(f) for f in self.files)

    def describe(self) -> str:
        return (f"routing log {self.files[0].parent / self.files[0].name.removesuffix('-wal')}: its write-ahead files "
                "(-wal, -shm) were deleted while this process had them open, so other processes no longer see its "
                "commits and a crash would lose them; each commit is now copied into the file at once — restart "
                "modelyard to end this, and leave those files alone while it runs")
