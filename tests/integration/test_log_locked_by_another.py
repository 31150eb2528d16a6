"""The routing log's SQLite file held locked by another process past the busy timeout (helper-46's hunt): a sqlite3
shell left in a transaction in ``locking_mode=EXCLUSIVE``, a backup tool. ``serve`` and ``log`` stopped after 10 s
with 'cannot be opened … check that this user can write the file and its directory' — the one thing that was fine.
Since round 38 a writer starts all the same, saying it, and holds its rows until the lock goes
(tests/reliability/test_ledger_hunt38.py); a reader still stops, saying it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelyard.ledger import connect
from modelyard.ledger.store import LogStore, LogUnavailable
from modelyard.ledger.writer import LogWriter

HOLD = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA locking_mode=EXCLUSIVE"); c.execute("BEGIN EXCLUSIVE")
c.execute("INSERT INTO _migrations VALUES ('held', 1)")
print("held", flush=True)
time.sleep(60)
"""


def test_a_log_held_locked_by_another_process_says_so(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    connect(path).close()  # a migrated log
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(LogUnavailable) as reader:
            LogStore(path).local()
        writer = LogWriter(path)
        writer.close()
        assert time.monotonic() - t0 < 40  # each within the busy timeout (10 s) and a little
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()  # its pipe, else an unclosed-file ResourceWarning when the collector takes it
    for text in (str(reader.value), writer.health().last_error or ""):
        assert "another process held it locked" in text and "`fuser` or `lsof`" in text, text
        assert "this user can" not in text, text
