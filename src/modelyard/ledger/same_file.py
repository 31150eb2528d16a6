"""Is the log's path still the file a connection opened?

SQLite writes through an open file descriptor: once the file is deleted (``rm log.sqlite3*`` to start afresh, a
cleanup job) or replaced (``mv new.sqlite3 log.sqlite3``), every later commit succeeds into a file nobody can
open any more, and vanishes when the process exits — no error, ``written`` keeps counting. Comparing the path's
device and inode with the ones seen at connect time finds it (one ``stat``, ~2 µs).
"""

from __future__ import annotations

import os
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
