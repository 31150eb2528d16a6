"""The routing log's file deleted or replaced while a process writes it (``rm log.sqlite3*`` to start afresh, a
cleanup job, ``mv restored.sqlite3 log.sqlite3``). SQLite keeps writing through its open descriptor: every commit
succeeded into a file nobody could open any more, and vanished when the process exited — no error, ``written``
counting on. Now the writer notices before its next batch, says so (degraded, the reason in ``last_error``) and
writes to the file now at the path; with PostgreSQL, the forwarder follows it too."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tests.fakes.server import poll
from tests.integration.test_pg_forward import pg_ids, write
from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter, connect
from modelyard.ledger.forward import Forwarder


def ids(path: Path) -> list[str]:
    conn = connect(path, readonly=True)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM requests ORDER BY id").fetchall()]
    finally:
        conn.close()


def remove_log(path: Path) -> None:
    for f in path.parent.glob(path.name + "*"):
        if not f.name.endswith("forward-lock"):
            f.unlink()


def test_rows_written_after_the_file_was_deleted_are_in_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        for i in range(5):
            writer.submit(record(i))
        assert writer.flush(5)
        remove_log(path)
        for i in range(5, 10):
            writer.submit(record(i))
        assert writer.flush(5)
        health = writer.health()
        assert health.failures >= 1 and "was deleted while this process had it open" in (health.last_error or "")
    finally:
        writer.close()
    assert ids(path) == [f"req{i:06d}" for i in range(5, 10)]  # the first five went with the deleted file


def test_rows_written_after_the_file_was_replaced_go_into_the_replacement(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    backup = tmp_path / "backup" / "log.sqlite3"
    write(backup, [record(100), record(101)])  # a copy made earlier, restored with mv
    writer = LogWriter(path, local_models=["local"])
    try:
        writer.submit(record(1))
        assert writer.flush(5)
        replacement = tmp_path / "restored.sqlite3"
        shutil.copy(backup, replacement)
        replacement.replace(path)
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"log.sqlite3{suffix}").unlink(missing_ok=True)
        writer.submit(record(2))
        assert writer.flush(5)
        assert "replaced by another file" in (writer.health().last_error or "")
    finally:
        writer.close()
    assert ids(path) == ["req000002", "req000100", "req000101"]
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_with_postgresql_the_forwarder_follows_the_new_file(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    forwarder = Forwarder(path, pg_url)
    writer.on_commit(forwarder.wake)
    try:
        for i in range(3):
            writer.submit(record(i))
        assert writer.flush(5) and forwarder.flush(20)
        remove_log(path)
        for i in range(3, 6):
            writer.submit(record(i))
        assert writer.flush(5)
        # the new file has no outbox triggers until the forwarder takes it over (then it queues what is there)
        poll(lambda: pg_ids(pg_url) == [f"req{i:06d}" for i in range(6)], timeout=20)
        assert forwarder.flush(20), forwarder.health()
        assert "while this process had it open" in (forwarder.health().last_error or "")
    finally:
        writer.close()
        forwarder.close()
