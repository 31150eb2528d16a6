"""What the routing log says while its store refuses every row — a full disk, a quota, another process holding the
write lock, a file made read-only — once when rows start to be held, once when the store takes them again.

Before, the only line was the writer's error, every 10 s: 'write failed (OperationalError: disk I/O error; 4305
failures so far); the writer carries on' — it never said that the rows were held rather than lost, how many, how
many more may wait, nor when writing went on (a full disk said through SQLite's 'disk I/O error' named no disk)."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from modelyard.ledger.store import FULL_DISK

log = logging.getLogger(__name__)


def free_space(path: Path) -> str:
    """A clause naming a full disk under ``path`` (empty when it is not: the cause is something else)."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    if free >= FULL_DISK:
        return ""
    return f" — the disk holding it is full ({free // 1024} KiB free): free some space there"


class Refusal:
    """One episode of a store that refuses every row: :meth:`held` after each try that stored nothing (said at the
    first), :meth:`ended` once a try stores the rows held (said when there was an episode). Writer thread only."""

    def __init__(self, path: Path, bound: int):
        self.path = path
        self.bound = bound
        #: time.monotonic() of the first refusal of this episode (None: none under way)
        self.since: float | None = None
        #: rows dropped (past the bound) before it began
        self.dropped = 0

    def held(self, count: int, error: str | None, dropped: int) -> None:
        if self.since is not None:
            return
        self.since, self.dropped = time.monotonic(), dropped
        log.warning("routing log %s refuses every row (%s)%s. Its rows are held in memory (%d so far: `held` in "
                    "/healthz) and written once it takes them, tried again every few seconds; answers do not wait for "
                    "them. Past %d rows waiting, new ones are dropped and counted (`dropped`); rows still held when "
                    "modelyard stops are kept in a file the next start writes", self.path, error, free_space(self.path),
                    count, self.bound)

    def unopened(self, said: str) -> None:
        """The log could not be opened at start for a state that passes (a full disk, another process's lock:
        store.passing): the process starts all the same, and this is the episode's first line. Before, ``serve`` (and
        ask, chat, the bot) exited 1 — under systemd's ``Restart=`` or Docker's ``restart:``, a gateway down until
        someone freed the disk."""
        self.since, self.dropped = time.monotonic(), 0
        log.error("%s. modelyard starts all the same and answers; the rows of its answers are held in memory (`held` "
                  "in /healthz, degraded) and written once the log opens, tried every few seconds. Past %d rows "
                  "waiting, new ones are dropped and counted (`dropped`); rows still held at a stop are kept in a file "
                  "the next start writes — but a process killed meanwhile (kill -9, the OOM killer, a power cut) loses "
                  "them", said, self.bound)

    def ended(self, written: int, dropped: int) -> None:
        if self.since is None:
            return
        dropped -= self.dropped
        lost = ("nothing was lost" if not dropped else
                f"{dropped} request(s) that came while {self.bound} rows waited were dropped (`dropped` in /healthz)")
        rows = f"the {written} row(s) held since it refused them were written" if written else "no row was held"
        log.warning("routing log %s takes rows again: %s (%.0f s later); %s", self.path, rows,
                    time.monotonic() - self.since, lost)
        self.since = None
