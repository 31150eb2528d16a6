"""A reader left in a read transaction on the live log — a ``sqlite3`` shell after ``BEGIN; SELECT …``, DB Browser for
SQLite browsing the file — pins the snapshot it started with: no checkpoint may copy past it, so the write-ahead log
grows with every row for as long as it stays open (checkpoint starvation: https://www.sqlite.org/wal.html, 'Avoiding
Excessively Large WAL Files'). The writer's folds keep the log near WAL_BOUND otherwise; it grew, unsaid, until the
disk was full — and then every row was refused. Now the growth past WAL_STARVED is said once, with the way to find the
reader, and nothing is lost meanwhile."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.fakes.server import poll
from tests.integration.test_log_restored import ids, write_rows

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module


def test_a_reader_left_in_a_transaction_is_said_once_before_the_write_ahead_log_fills_the_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "WAL_BOUND", 256 * 1024)
    monkeypatch.setattr(writer_module, "WAL_STARVED", 1024 * 1024, raising=False)
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 16)
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    shell = subprocess.Popen(["sqlite3", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        write_rows(writer, range(10))
        assert shell.stdin is not None and shell.stdout is not None
        shell.stdin.write("BEGIN;\nSELECT count(*) FROM requests;\n")
        shell.stdin.flush()
        assert shell.stdout.readline().strip() == "10"  # its snapshot, held from here on
        write_rows(writer, range(10, 400))
        said = poll(lambda: "old read transaction" in (writer.health().last_error or "") and writer.health(),
                    timeout=20)
        assert said, (writer.health(), (tmp_path / "log.sqlite3-wal").stat().st_size)
        assert f"fuser {path}" in (said.last_error or "") and said.degraded
        failures = said.failures
        write_rows(writer, range(400, 500))  # still held: not said again
        assert writer.health().failures == failures, writer.health().last_error
        shell.stdin.write("COMMIT;\n.quit\n")
        shell.communicate(timeout=30)
        write_rows(writer, range(500, 520))
        assert writer.health().lost == 0
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.communicate(timeout=10)
        writer.close()
    assert ids(path) == [f"req{i:06d}" for i in range(520)]
