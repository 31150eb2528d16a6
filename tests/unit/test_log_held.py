"""Rows kept at close for the next writer (ledger/held.py): where they go when the log's directory is not private,
and which files are never read back (they hold the statements the writer runs)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from modelyard.ledger import connect, held
from modelyard.ledger.writer import _INSERT_REQUEST, REQUEST_COLUMNS


def request(rid: str) -> tuple[str, tuple]:
    values = dict.fromkeys(REQUEST_COLUMNS)
    values.update(id=rid, ts=1.0, agent="chat", outcome="ok", n_attempts=0, prompt=b"\x00raw".decode("latin-1"))
    return _INSERT_REQUEST, tuple(values.values())


def ids(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT id FROM requests"))
    finally:
        conn.close()


def test_a_log_directory_others_may_write_keeps_them_in_a_private_one(tmp_path: Path) -> None:
    shared = tmp_path / "team"
    shared.mkdir()
    shared.chmod(0o777)  # a team's shared directory: a file there could be anybody's, so none is put or read there
    path = shared / "log.db"
    connect(path).close()
    kept = held.save(path, [request("a"), request("b")])
    assert kept is not None and kept.parent != shared and kept.stat().st_mode & 0o077 == 0
    conn = connect(path)
    try:
        assert held.load(conn, path) == 2
    finally:
        conn.close()
    assert ids(path) == ["a", "b"] and not kept.exists()


def test_a_file_anybody_could_have_written_is_never_run(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    connect(path).close()
    planted = tmp_path / "log.db.held-1-x"
    planted.write_text(json.dumps({"sql": "INSERT INTO requests (id, ts, agent, outcome, n_attempts) "
                                          "VALUES (?, 1, 'x', 'ok', 0)", "v": ["planted"]}) + "\n")
    planted.chmod(0o666)
    bad = tmp_path / "log.db.held-2-x"
    bad.write_text(json.dumps({"sql": "DELETE FROM requests", "v": []}) + "\n")
    bad.chmod(0o600)
    conn = connect(path)
    try:
        assert held.load(conn, path) == 0
    finally:
        conn.close()
    assert ids(path) == [] and planted.exists() and bad.exists()  # left where they are, said in the log


def test_a_file_another_process_is_writing_is_left_to_it(tmp_path: Path) -> None:
    """Two processes opening the log at once (a serve restarted while an ask starts) wrote a file's rows twice: a
    routing decision has no key, so it was there twice."""
    path = tmp_path / "log.db"
    connect(path).close()
    kept = held.save(path, [request("a")])
    assert kept is not None
    other = os.open(kept, os.O_RDONLY)  # what the other process holds while it writes them
    fcntl.flock(other, fcntl.LOCK_EX)
    conn = connect(path)
    try:
        assert held.load(conn, path) == 0 and kept.exists()
        os.close(other)  # it failed, say, and left the file: the next start takes it
        assert held.load(conn, path) == 1
    finally:
        conn.close()
    assert ids(path) == ["a"] and not kept.exists()


def test_a_log_directory_others_may_write_keeps_them_beside_it_past_a_private_tmp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log directory made under umask 002 (Debian's and Ubuntu's default for people: user-private groups) is
    group-writable, so held rows went to the temp directory — which systemd's ``PrivateTmp=yes`` gives a service of
    its own and removes at stop (systemd.exec(5), since systemd commit c17ec25e: "All temporary data created by service
    will be removed after service is stopped"), and a boot empties:
    the rows kept for the next start were gone by then. Now they go to a directory of this user's own beside the
    log, nobody else may write."""
    shared = tmp_path / "data"
    shared.mkdir()
    shared.chmod(0o775)  # umask 002
    path = shared / "log.db"
    connect(path).close()
    service_tmp = tmp_path / "private-tmp-1"
    service_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(service_tmp))
    kept = held.save(path, [request("a"), request("b")])
    assert kept is not None and kept.stat().st_mode & 0o077 == 0
    shutil.rmtree(service_tmp)  # the service stopped: its /tmp goes
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the next start has another
    conn = connect(path)
    try:
        assert held.load(conn, path) == 2  # before: 0 — they were in the removed /tmp
    finally:
        conn.close()
    assert ids(path) == ["a", "b"]
    assert kept.parent == shared / f".modelyard-held-{os.getuid()}" and kept.parent.stat().st_mode & 0o777 == 0o700
