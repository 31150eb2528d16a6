"""``log.keep_days`` under a wrong clock (ledger/retention.py). A wall-clock cutoff deletes by whatever the clock
reads: a clock stepped a year forward (a dead CMOS battery, a restored VM snapshot, a boot before NTP — Yuzu#2360,
#2361: the same cutoff emptied a whole retention window) deleted every request of the window at the next pass; rows a
host stamped while its clock was set back (1970 before NTP) were deleted as ancient once it was right."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from tests.unit.test_log_retention import DAY, counts, fill, record

from modelyard.ledger import LogWriter, connect
from modelyard.ledger.retention import Pruner


def ids(path: Path) -> list[str]:
    conn = connect(path, readonly=True)
    try:
        return sorted(r[0] for r in conn.execute("SELECT id FROM requests"))
    finally:
        conn.close()


def test_a_clock_stepped_forward_deletes_nothing_of_the_kept_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    path, now = tmp_path / "log.db", time.time()
    fill(path, now, old=10, new=4)  # 10 requests 40 days old, 4 from yesterday
    pruner = Pruner(path, keep_days=32, first_after=3600)  # opened with the clock right
    try:
        with monkeypatch.context() as m, caplog.at_level(logging.WARNING, "modelyard.ledger.retention"):
            m.setattr(time, "time", lambda: now + 365 * DAY)  # then the clock reads a year on
            pruner.run_once()
    finally:
        pruner.close()
    # the 40-day-old ones still go (old0003 waits for PostgreSQL), yesterday's stay
    assert ids(path) == ["new0000", "new0001", "new0002", "new0003", "old0003"]
    assert pruner.pruned == 9 and pruner.last_error is None
    assert caplog.text.count("clock stepped 8760.0 h forward") == 1  # said


def test_a_host_opened_with_its_clock_ahead_deletes_nothing_of_the_kept_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, now = tmp_path / "log.db", time.time()
    fill(path, now, old=10, new=4)
    with monkeypatch.context() as m:  # booted with the clock a year ahead, before NTP: the writer opens, a request
        m.setattr(time, "time", lambda: now + 365 * DAY)  # is answered (stamped a year on), a pass runs
        writer = LogWriter(path, keep_days=32)
        try:
            writer.submit(record("ahead", now + 365 * DAY))
            assert writer.flush()
            assert writer.retention is not None
            writer.retention.run_once()
        finally:
            writer.close()
    assert ids(path) == ["ahead", "new0000", "new0001", "new0002", "new0003", "old0003"]


def test_rows_stamped_while_the_clock_was_set_back_are_kept(tmp_path: Path) -> None:
    path, now = tmp_path / "log.db", time.time()
    fill(path, now, old=3, new=2)
    writer = LogWriter(path)  # the clock read 1970 for a while (no RTC, before NTP): these requests carry that time
    for i in range(3):
        writer.submit(record(f"seventies{i}", 3 * DAY + i))
    writer.close()
    pruner = Pruner(path, keep_days=32, first_after=3600)  # the clock right again
    try:
        pruner.run_once()
    finally:
        pruner.close()
    assert ids(path) == ["new0000", "new0001", "seventies0", "seventies1", "seventies2"]
    assert counts(path)["attempts"] == 10  # with their attempts
