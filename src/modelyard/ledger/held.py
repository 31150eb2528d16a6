"""Rows the log's store still refused when the writer closed — a full disk, the file locked by another process past
the busy timeout — kept in a file and written at the next start, instead of going with the process.

Before, they were counted as lost: a restart (a deploy, ``systemctl restart``, Ctrl-C) during a full disk dropped
every row held since the disk filled (up to ``max_queue``). The file goes beside the log (``<log>.held-<pid>-<n>``)
when that directory takes it, else into a directory of this user's own beside it (``.modelyard-held-<uid>``: the log's
directory may be writable by others), else into this user's state directory (systemd's ``StateDirectory=``, else
``$XDG_STATE_HOME/modelyard``: kept across reboots, and often on another disk than a service's log), else into one
under the temp directory (a full disk often spares /tmp, a tmpfs — which a boot empties, and systemd's
``PrivateTmp=yes`` at the service's stop: said so when used). Only files this user owns, in a directory nobody else
may write, are read back: they hold the
``INSERT`` statements the writer runs.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _private_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"modelyard-held-{os.getuid()}"


def _state_dir() -> Path | None:
    """This user's directory for state that outlives a reboot: systemd's ``$STATE_DIRECTORY`` (a service's
    ``StateDirectory=``, the first when it names several), else ``$XDG_STATE_HOME/modelyard`` (``~/.local/state``);
    None without a home."""
    systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd) / "modelyard-held"
    try:
        import platformdirs

        return Path(platformdirs.user_state_dir("modelyard")) / "held"
    except (KeyError, RuntimeError, OSError):  # no home directory for this user
        return None


def volatile(file: Path) -> bool:
    """Whether ``file`` was kept in the temp directory: a boot empties it, and a service's private /tmp goes at stop."""
    return file.parent == _private_dir()


def _ours(directory: Path) -> bool:
    """A directory this user owns that nobody else may write: what a file in it says can be trusted."""
    try:
        st = directory.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _places(path: Path) -> list[tuple[Path, str]]:
    """(directory, file-name prefix) where ``path``'s held rows may be: beside it, else in a directory of this user's
    own beside it, then this user's private dir under the temp directory.

    The one beside it is for a log directory others may write — every directory made under umask 002 (the user's
    own group: Debian's and Ubuntu's default for people) is: the temp directory is emptied at boot, and a service with
    systemd's ``PrivateTmp=yes`` has a /tmp of its own removed at stop — the very restart these files are for (rows
    refused by a file locked, a table gone or renamed: states that last). A full disk refuses both places beside
    the log: this user's state directory is tried next (it survives a reboot, and a service's is often on another
    disk than its log), the temp directory last — before, it came right after them, and the rows there went with
    the next boot or the service's stop."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    own = path.parent / f".modelyard-held-{os.getuid()}"
    beside = [] if own.is_symlink() else [(own, f"{path.name}.held-")]
    state = _state_dir()
    kept = [] if state is None or state.is_symlink() else [(state, f"{key}-")]
    return [(path.parent, f"{path.name}.held-"), *beside, *kept, (_private_dir(), f"{key}-")]


def _trusted(file: Path) -> bool:
    """Owned by this user, and neither it nor its directory writable by anybody else."""
    return _ours(file.parent) and _ours(file) and file.is_file()


def _encode(value: Any) -> Any:
    return {"b64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def _decode(value: Any) -> Any:
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value


def save(path: Path, rows: Sequence[tuple[str, Sequence[Any]]]) -> Path | None:
    """Write ``rows`` (an ``INSERT`` statement and its values each) to a new file for ``path``'s next writer; the file,
    or None when no place took it."""
    text = "".join(json.dumps({"sql": sql, "v": [_encode(v) for v in values]}) + "\n" for sql, values in rows)
    for directory, prefix in _places(path):
        file = directory / f"{prefix}{os.getpid()}-{os.urandom(4).hex()}"
        try:
            if directory != path.parent:
                directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                directory.mkdir(mode=0o700, exist_ok=True)
            if not _ours(directory):  # it would not be read back
                continue
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # a process starting meanwhile leaves it until it is whole
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            return file
        except (OSError, ValueError):  # full, read-only, or text that cannot be written
            with contextlib.suppress(OSError):
                file.unlink()
    return None


def _found(path: Path) -> Iterator[Path]:
    for directory, prefix in _places(path):
        with contextlib.suppress(OSError):
            yield from sorted(f for f in directory.glob(f"{prefix}*") if _trusted(f))


def load(conn: sqlite3.Connection, path: Path) -> int:
    """Write the rows earlier writers of ``path`` left (one transaction per file, the file removed after its commit);
    how many. A file the store still refuses is left for the next start; one that cannot be read is said and kept;
    one another process is writing now (two starting at once) is left to it."""
    total = 0
    for file in _found(path):
        try:
            fd = os.open(file, os.O_RDONLY)
        except OSError:  # taken by another process meanwhile
            continue
        try:
            total += _load_one(conn, path, file, fd)
        finally:
            os.close(fd)
    return total


def _load_one(conn: sqlite3.Connection, path: Path, file: Path, fd: int) -> int:
    """One file, opened as ``fd``: locked for as long as it is written, so two processes never write it twice (a
    routing decision has no key: it would be there twice). A file cut short — its writer killed, or the power lost,
    while it wrote (the rows are fsynced only once all are written) — has its whole rows written and the cut one said;
    before, the whole file was 'cannot be read' at every start, for good."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another process writes these rows now
        return 0
    if os.fstat(fd).st_nlink == 0:  # written and removed by another process before this one had the lock
        return 0
    try:
        with os.fdopen(os.dup(fd), encoding="utf-8") as text:
            lines = text.read().split("\n")
        torn = lines.pop()  # after the last newline: "" when the file is whole
        with contextlib.suppress(ValueError):
            lines.append(json.dumps(json.loads(torn)))  # cut just before its newline: a whole row
            torn = ""
        rows = [json.loads(line) for line in lines if line]
        statements = [(r["sql"], [_decode(v) for v in r["v"]]) for r in rows]
        if any(not sql.startswith("INSERT ") or ";" in sql for sql, _ in statements):
            raise ValueError("not the writer's INSERT statements")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("routing log %s: rows kept at an earlier close in %s cannot be read (%s); left there",
                    path, file, exc)
        return 0
    try:
        conn.execute("BEGIN")
        for sql, values in statements:
            conn.execute(sql, values)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        log.warning("routing log %s: rows kept at an earlier close in %s not written yet (%s); tried again at the "
                    "next start", path, file, exc)
        return 0
    if torn:  # the writer that kept it was killed (or the power went) while it wrote: every whole row is written
        log.warning("routing log %s: %s ended in the middle of a row (%d bytes: its writer was cut off while it "
                    "wrote); the %d whole row(s) before it were written", path, file, len(torn.encode()),
                    len(statements))
    with contextlib.suppress(OSError):
        file.unlink()  # still locked: nobody else reads it in between
    log.info("routing log %s: wrote %d row(s) an earlier process could not write before it closed (%s)",
             path, len(statements), file)
    return len(statements)
