"""A routing log file SQLite finds damaged ('database disk image is malformed'). Users of SQLite-backed logs meet it
after a disk or power fault, a file synced by a cloud folder, a bad copy — and then every later write fails:
pocketbase/pocketbase#7727 ('Failed to write log … database disk image is malformed (11)' on every request),
ntop/ntopng#3681 (the error every minute until the file was deleted), TechnitiumSoftware/DnsServer#427 ('create a new
file and delete the old one'). Before, the writer held each row in memory and tried the same damaged file again every
few seconds for ever: past ``max_queue`` every new row was dropped, and the rows kept at close were tried against the
same file at the next start. Now the damaged file is moved aside (kept whole, with its write-ahead log, for
``sqlite3 … .recover``) and the rows go into a new file at the path; /healthz says so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter


def damage_the_requests_table(path: Path) -> None:
    """Overwrite the first byte of the ``requests`` table's root page (its page type) with 0: what a torn or
    zeroed block does. Its indexes stay whole, so the log still opens and the damage is met at the first write."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'requests'").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\x00")


def test_a_damaged_log_is_moved_aside_and_rows_go_to_a_new_file(tmp_path: Path) -> None:
    """In a folder with a long path (a clean-clone CI's /tmp/pytest-of-root/…, a macOS Application Support folder):
    /healthz keeps 500 characters of the message, which named the path four times and lost its recovery command."""
    folder = tmp_path / "Library" / "Application Support" / ("modelyard-" + "x" * 120)
    folder.mkdir(parents=True)
    path = folder / "log.sqlite3"
    writer = LogWriter(path)
    for i in range(300):
        writer.submit(record(i))
    writer.close()
    damage_the_requests_table(path)
    writer = LogWriter(path)
    try:
        for i in range(300, 310):
            writer.submit(record(i))
        assert writer.flush(30)
        health = writer.health()
        assert health.written == 10 and health.held == 0 and health.lost == 0, health
        said = health.last_error or ""
        assert "damaged" in said and ".recover" in said and "database disk image is malformed" in said, said
    finally:
        writer.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r[0] for r in conn.execute("SELECT id FROM requests ORDER BY id")] == \
            [f"req{i:06d}" for i in range(300, 310)]
    finally:
        conn.close()
    kept = list(folder.glob("log.sqlite3.damaged-*"))
    assert len([k for k in kept if not k.name.endswith(("-wal", "-shm"))]) == 1  # the old rows, for .recover


def test_a_log_damaged_where_it_opens_is_moved_aside_at_start(tmp_path: Path) -> None:
    """Damaged in its header (a zeroed block at the start): SQLite says 'file is not a database' at open. Regression
    guard: the start refused (LogUnavailable) — ``serve`` exited 1 at every restart under systemd or Docker, no request
    answered because of the log (seakee/CPA-Manager-Plus#523). Now the file is kept aside whole and a new one made."""
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path)
    writer.submit(record(1))
    writer.close()
    with open(path, "r+b") as f:
        f.write(b"\x00" * 100)
    kept = path.read_bytes()
    writer = LogWriter(path)
    try:
        writer.submit(record(2))
        assert writer.flush(30)
        health = writer.health()
        assert health.written == 1 and health.degraded, health
        said = health.last_error or ""
        assert "is damaged" in said and "file is not a database" in said and ".recover" in said, said
        assert "check that this user can write" not in said
    finally:
        writer.close()
    aside = [k for k in tmp_path.glob("log.sqlite3.damaged-*") if not k.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == kept  # the old rows, byte for byte, for .recover
