"""A host whose clock went back (no RTC before NTP, a VM restored from a snapshot, a hand-set date) logs its requests
at that time: `log` lists them under older ones and `report` counts them on other days. With ``log.url`` the
forwarder compares with the database's clock; a host on the SQLite log alone was told nothing (ledger/writer.py)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from tests.unit.test_log_writer_faults import record

from modelyard.ledger import LogWriter

DAY = 86400.0


def test_a_request_stamped_well_before_the_newest_in_the_log_says_the_clock_went_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, now = tmp_path / "log.db", time.time()
    writer = LogWriter(path)
    writer.submit(record(0, ts=now))
    writer.close()
    writer = LogWriter(path)  # the next start, with the clock two days back
    try:
        with caplog.at_level(logging.WARNING, "modelyard.ledger.writer"):
            for i in range(1, 4):
                writer.submit(record(i, ts=now - 2 * DAY + i))
                assert writer.flush()
        assert caplog.text.count("stamped 2.0 days before the newest one already in the log") == 1, caplog.text
        assert "set the clock" in caplog.text
        assert writer.health().written == 3 and writer.health().lost == 0  # written all the same
    finally:
        writer.close()


def test_requests_that_end_out_of_order_within_the_bound_say_nothing(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    path, now = tmp_path / "log.db", time.time()
    writer = LogWriter(path)
    try:
        with caplog.at_level(logging.WARNING, "modelyard.ledger.writer"):
            writer.submit(record(0, ts=now))
            assert writer.flush()
            writer.submit(record(1, ts=now - 600))  # started ten minutes earlier, a long answer
            assert writer.flush()
        assert "clock" not in caplog.text
    finally:
        writer.close()
