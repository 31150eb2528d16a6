"""Why the filesystem refused the routing log, read from an errno rather than guessed from free space.

/proc, /sys, a squashfs image and a read-only mount report 0 bytes free: a log there read "the disk holding it is
full" whatever the filesystem really said — ENOENT (/proc makes no files), EACCES (/sys), EROFS. SQLite's errors
carry no errno ("unable to open database file"), so when the one raised has none, the log's directory is asked: an
empty file made there and removed at once (never the log itself: closing another descriptor of an open SQLite file
drops this process's locks on it, https://www.sqlite.org/howtocorrupt.html §2.2)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

#: the errnos that name the cause themselves; any other (ENOSPC among them) leaves it to the free-space reading
SAID = frozenset({errno.EROFS, errno.ENOENT, errno.EACCES, errno.EPERM})


def probe(directory: Path) -> OSError | None:
    """What making a file in ``directory`` meets (None: a file can be made there)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".modelyard-probe-")
    except OSError as exc:
        return exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def refused(path: Path, exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` when it is one of :data:`SAID`: ``exc``'s own, a missing directory, what making
    a file beside the log meets, or a log file this user may not read and write."""
    if isinstance(exc, OSError) and exc.errno is not None:  # its own errno is the cause: said here or not at all
        return exc if exc.errno in SAID else None  # (a file where the directory should be: EEXIST, ENOTDIR)
    if not path.parent.exists():
        return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path.parent))
    found = probe(path.parent)
    if found is None and path.exists() and not os.access(path, os.R_OK | os.W_OK):
        found = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    return found if found is not None and found.errno in SAID else None


def said(path: Path, exc: BaseException, fix: str) -> str | None:
    """The sentence for a refusal :func:`refused` finds, ``fix`` saying where to change the log's place."""
    cause = refused(path, exc)
    if cause is None:
        return None
    sqlite = "" if cause is exc else f"; SQLite said: {exc}"
    where = cause.filename if cause is exc or cause.filename == str(path) else path.parent  # not the probe's name
    if cause.errno == errno.EROFS:
        return (f"routing log {path}: the filesystem holding it is read-only ({cause.strerror}: {where}{sqlite}): "
                f"put the log on a writable one; {fix}")
    if cause.errno == errno.ENOENT and not path.parent.exists():
        return (f"routing log {path}: its directory {path.parent} does not exist and could not be made "
                f"({cause.strerror}: {where}{sqlite}); {fix}")
    if cause.errno == errno.ENOENT:
        return (f"routing log {path}: no file can be made in {path.parent} ({cause.strerror}{sqlite}) — a kernel "
                f"filesystem such as /proc holds no files of yours: name a file in an ordinary directory; "
                f"{fix}")
    return (f"routing log {path}: this user may not write there ({cause.strerror}: {where}{sqlite}) — SQLite makes "
            f"its -wal and -shm files beside the log, so it needs the directory as well as the file: give this user "
            f"write access, or {fix}")
