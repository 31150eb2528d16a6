"""A routing log the filesystem refuses is said by the filesystem's errno, not by its free space.

/proc and /sys report 0 bytes free (statvfs; `df /proc` shows 0 blocks), as does a full mount remounted read-only: a
log there read "the disk holding it is full", whatever the filesystem said — ENOENT, EACCES, EROFS (errno(3),
https://man7.org/linux/man-pages/man3/errno.3.html). Real places only: /proc and /sys themselves, and a real tmpfs
filled and remounted read-only (root only: elsewhere that test is skipped)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers import tmpfs

from modelyard.ledger.store import FULL_DISK, LogStore, LogUnavailable
from modelyard.ledger.writer import LogWriter


def opened(path: Path) -> list[Callable[[], object]]:
    """The two ways the log is opened: the writer, and a reader's connection."""
    return [lambda: LogWriter(path), lambda: LogStore(path).local()]


def refusal(opening: Callable[[], object]) -> str:
    with pytest.raises(LogUnavailable) as refused:
        opening()
    return str(refused.value)


@pytest.mark.parametrize(("path", "cause"), [
    ("/proc/modelyard/routing.sqlite3", "its directory /proc/modelyard does not exist and could not be made "
                                        "(No such file or directory: /proc/modelyard)"),
    ("/proc/routing.sqlite3", "no file can be made in /proc (No such file or directory; SQLite said: unable to open "
                              "database file) — a kernel filesystem such as /proc holds no files of yours"),
    ("/sys/routing.sqlite3", "this user may not write there (Permission denied: /sys; SQLite said: unable to open "
                             "database file)"),
])
def test_a_log_in_a_kernel_filesystem_says_what_the_filesystem_said(path: str, cause: str) -> None:
    """/proc and /sys report 0 bytes free: the log there was said to be on a full disk."""
    for opening in opened(Path(path)):
        said = refusal(opening)
        assert said.startswith(f"routing log {path}: {cause}"), said
        assert "full" not in said and "free some space" not in said, said
        assert said.endswith("check log.path in the config"), said


@pytest.fixture
def full_then_read_only(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs holding a log, filled to the last byte, then remounted read-only (0 bytes free, EROFS)."""
    with tmpfs(tmp_path / "ro", "size=2m") as mount:
        LogWriter(mount / "routing.sqlite3").close()
        with (mount / "filler").open("wb") as filler, contextlib.suppress(OSError):
            while filler.write(b"\0" * 65536):
                pass
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
        yield mount


def test_a_log_on_a_full_read_only_mount_says_read_only(full_then_read_only: Path) -> None:
    """Read-only and full at once: what refuses the write is the read-only mount (freeing space would not help)."""
    path = full_then_read_only / "routing.sqlite3"
    assert shutil.disk_usage(full_then_read_only).free < FULL_DISK  # the free-space reading alone says "full"
    for opening in opened(path):
        said = refusal(opening)
        read_only = "the filesystem holding it is read-only (Read-only file system"
        assert said.startswith(f"routing log {path}: {read_only}"), said
        assert "disk holding it is full" not in said, said
        assert said.endswith("put the log on a writable one; check log.path in the config"), said
