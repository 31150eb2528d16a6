"""Allocate the write-ahead log's next blocks before commits append to them (issue #15).

A commit appends its frames to the ``-wal`` file. On ext4 (delayed allocation) a write into a block the file does not
have yet reserves it under the inode's ``i_data_sem``, and writeback holds that lock while it allocates the blocks of
the pages it writes out. The checkpoint's fsync of the write-ahead log is such a writeback: a commit that appended
meanwhile waited in ``ext4_da_get_block_prep`` for 4–24 ms (perf sched_switch stacks, Linux 6.18, 2026-12-02), 2–8
times per 3,000 one-row commits, always inside a checkpoint — the one thing of the log's in the gateway's p99 at one
client. Blocks allocated ahead by ``fallocate(FALLOC_FL_KEEP_SIZE)`` (unwritten extents past the file's end: its
size, and so everything SQLite reads, stay as they are) need no reservation; with them none of those waits was seen.

Nothing here can lose a row: no byte of the file changes. Where the call does not exist or the filesystem refuses
it (not Linux, some network shares, a full disk), commits append as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

#: fallocate(2): allocate without changing the file's size
FALLOC_FL_KEEP_SIZE = 1


def _fallocate() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


_CALL = _fallocate()


def reserve_ahead(wal: Path, ahead: int, limit: int) -> bool:
    """Have ``wal``'s blocks allocated up to ``ahead`` bytes past its end (never past ``limit``, the size SQLite cuts
    it back to); False where nothing was allocated (no such file, no such call, refused). Never creates the file: a
    missing one is SQLite's to make."""
    if _CALL is None:
        return False
    try:
        fd = os.open(wal, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        want = min(size + ahead, limit) - size
        if want <= 0:
            return False
        return _CALL(fd, FALLOC_FL_KEEP_SIZE, size, want) == 0  # refused (EOPNOTSUPP, ENOSPC...): appended as before
    finally:
        os.close(fd)  # SQLite holds no lock on the -wal file itself: closing this descriptor drops none of its locks
