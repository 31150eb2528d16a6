"""The routing log, round 36: faults of its storage found from the outside in, on real SQLite files and PostgreSQL.

A SQLite file damaged when modelyard starts — after a power cut or a disk fault, a file synced by a cloud folder, a
copy taken mid-write (https://www.sqlite.org/howtocorrupt.html): SQLite refuses it at open with SQLITE_NOTADB ('file
is not a database': the header) or SQLITE_CORRUPT ('database disk image is malformed': the schema page, a file cut
short). Users of programs that stop there meet a crash loop: seakee/CPA-Manager-Plus#523 ('Manager server exits(1) in
an infinite restart loop on `open sqlite: database disk image is malformed (11)`; HTTP port never binds',
RestartCount 634), sysadminsmedia/homebox#160 (the same FTL line every few seconds), slskd/slskd#634 ('the container
starts but stops after a "database disk image is malformed" error'). modelyard's ``serve`` did the same: exit 1, every
restart, no request answered because of the log. Now the file is set aside whole (for ``sqlite3 … .recover``), a new
one made, and it is said (ERROR line, /healthz degraded)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.fakes.openai_compat import OpenAIServer
from tests.pg import free_port
from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter
from modelyard.ledger.store import LogUnavailable

SRC = Path(__file__).resolve().parents[2] / "src"


def _written(path: Path, n: int = 300) -> Path:
    writer = LogWriter(path)
    for i in range(n):
        writer.submit(record(i))
    writer.close()
    return path


def _random_bytes(path: Path) -> None:
    """Every byte replaced (a file restored from a broken backup, an encrypted volume's garbage): 'not a database'."""
    path.write_bytes(os.urandom(path.stat().st_size))


def _cut_short(path: Path) -> None:
    """A copy or sync stopped a third of the way (the pages the schema points at are missing): 'malformed'."""
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 3)


def _schema_page(path: Path) -> None:
    """The first page's b-tree header overwritten (sqlite_master: https://www.sqlite.org/fileformat.html, 1.6): SQLite
    cannot read the schema at all: 'malformed'."""
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 200)


def _sizes(path: Path) -> None:
    """The header's page size made invalid (bytes 16-17): 'file is not a database'."""
    with open(path, "r+b") as f:
        f.seek(16)
        f.write(b"\x00\x03")


def _aside(folder: Path, name: str) -> list[Path]:
    return [k for k in folder.glob(f"{name}.damaged-*") if not k.name.endswith(("-wal", "-shm"))]


@pytest.mark.parametrize("damage", [_random_bytes, _cut_short, _schema_page, _sizes], ids=lambda d: d.__name__)
def test_a_log_damaged_before_the_start_is_set_aside_and_the_start_goes_on(tmp_path: Path,
                                                                           damage: Callable[[Path], None]) -> None:
    """Regression guard: each of these refused the start (LogUnavailable: 'is damaged … move it aside')."""
    path = _written(tmp_path / "routing.sqlite3")
    damage(path)
    before = path.read_bytes()
    writer = LogWriter(path)
    try:
        writer.submit(record(1000))
        assert writer.flush(30)
        health = writer.health()
        assert health.written == 1 and health.held == 0 and health.lost == 0 and health.degraded, health
        said = health.last_error or ""
        assert "is damaged" in said and "moved aside as routing.sqlite3.damaged-" in said and ".recover" in said
    finally:
        writer.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM requests")] == ["req001000"]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = _aside(tmp_path, "routing.sqlite3")
    assert len(kept) == 1 and kept[0].read_bytes() == before  # whole, byte for byte


def test_another_programs_file_named_as_the_log_is_left_as_it_is(tmp_path: Path) -> None:
    """``log.path`` naming the config by mistake: SQLite says 'file is not a database' of it too. It is no damaged
    log — it is never moved aside; the start is refused naming the key to change."""
    path = tmp_path / "team.yaml"
    path.write_text("models:\n  m: {provider: openai}\n")
    with pytest.raises(LogUnavailable) as refused:
        LogWriter(path)
    assert "not a SQLite file" in str(refused.value) and "left as it is" in str(refused.value), refused.value
    assert path.read_text() == "models:\n  m: {provider: openai}\n" and not _aside(tmp_path, "team.yaml")


def test_two_processes_starting_at_once_on_a_damaged_log_set_it_aside_once(tmp_path: Path) -> None:
    """``serve`` and the bot (or two ``ask``s) started together after the fault: the second must not set aside the new
    file the first just made (its rows would go with it)."""
    path = _written(tmp_path / "log.sqlite3", 50)
    _random_bytes(path)
    writers: list[LogWriter] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def open_one() -> None:
        start.wait()
        try:
            writers.append(LogWriter(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(writers) == 2, errors
    for n, writer in enumerate(writers):
        writer.submit(record(2000 + n))
        assert writer.flush(30)
    for writer in writers:
        writer.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT id FROM requests")) == ["req002000", "req002001"]
    assert len(_aside(tmp_path, "log.sqlite3")) == 1


def _post(port: int, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def serve_up(proc: subprocess.Popen, port: int, within: float = 90) -> dict:
    """/healthz of a ``serve`` just started, once it answers (fails when it exits or takes longer than ``within``)."""
    deadline = time.monotonic() + within
    while True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "serve did not start"
        try:
            return _get(port, "/healthz")
        except OSError:
            time.sleep(0.2)


def test_serve_on_a_damaged_log_answers_and_says_so(tmp_path: Path) -> None:
    """The whole gateway, as a service restarts it: before, ``serve`` exited 1 with 'is damaged … move it aside' at
    every start and never bound its port. Now it answers, /healthz says degraded with the file set aside, and the
    answer's row is in the new file; a second start finds a healthy log (no loop of set-asides)."""
    path = _written(tmp_path / "log.sqlite3")
    _random_bytes(path)
    server = OpenAIServer(models=["x"]).start()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": f"http://127.0.0.1:{server.port}/v1", "model": "x"}},
        "agents": {"chat": {"primary": "m"}}, "log": {"path": str(path)}}))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HOME": str(tmp_path)}
    try:
        for round_ in range(2):
            port = free_port()
            proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "serve", "--port",
                                     str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            try:
                health = serve_up(proc, port)
                status, answer = _post(port, {"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
                assert status == 200 and answer["choices"][0]["message"]["content"], answer
                if round_ == 0:
                    assert health["status"] == "degraded", health
                    assert "moved aside as log.sqlite3.damaged-" in (health["log"]["last_error"] or ""), health
                else:
                    assert health["log"]["failures"] == 0, health
            finally:
                proc.terminate()
                _, stderr = proc.communicate(timeout=60)
            if round_ == 0:
                assert "is damaged" in stderr and ".recover" in stderr and "Traceback" not in stderr, stderr
    finally:
        server.stop()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 2
    assert len(_aside(tmp_path, "log.sqlite3")) == 1


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 shell is not installed")
def test_a_sqlite3_shell_left_in_a_write_transaction_holds_no_answer_back(tmp_path: Path) -> None:
    """A user's ``sqlite3`` shell on the log, left after ``BEGIN; UPDATE …`` (SQLite: 'the RESERVED lock … is held
    until the transaction ends'; https://www.sqlite.org/lockingv3.html, https://www.sqlite.org/rescode.html#busy).
    Regression guard: the writer waited 10 s for the lock per try, and tried again at once for each new row — then
    row by row and on a new connection, 10 s each — so every answer of ``serve`` waited its whole bound (LOG_WAIT, 5 s)
    for as long as the shell stayed open (measured through ``serve``: 6 of 6 answers in 30 s took 5.0 s, before). Now
    the first try waits BUSY_TIMEOUT (2 s), and while the lock stays held each new row is held with the others within
    RETRY_BUSY; every row is written once the shell lets go, once, and the reason names the way to find the holder."""
    path = _written(tmp_path / "log.sqlite3", 1)
    shell = subprocess.Popen(["sqlite3", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert shell.stdin is not None and shell.stdout is not None
    shell.stdin.write("BEGIN;\nUPDATE requests SET agent = agent;\nSELECT 'held';\n")
    shell.stdin.flush()
    assert shell.stdout.readline().strip() == "held"
    writer = LogWriter(path)
    try:
        async def answers() -> list[float]:
            waits = []
            for i in range(1, 7):  # one request after the other, each waiting for its row as the gateway does
                writer.submit(record(i))
                start = time.monotonic()
                await writer.wait_written(5.0)
                waits.append(time.monotonic() - start)
            return waits

        waits = asyncio.run(answers())
        assert max(waits) < 3.0 and max(waits[1:]) < 0.6, waits
        health = writer.health()
        assert health.held == 6 and health.lost == 0, health
        said = health.last_error or ""
        assert "another process holds the log's write lock" in said and f"fuser {path}" in said, said
    finally:
        shell.stdin.write("ROLLBACK;\n.quit\n")
        shell.stdin.close()
        shell.wait(10)
        shell.stdout.close()
    try:
        assert writer.flush(15)
        deadline = time.monotonic() + 15
        while writer.held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.health().held == 0
    finally:
        writer.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM requests")]
    assert sorted(ids) == [f"req{i:06d}" for i in range(7)], ids  # each once: 0 before the shell, 1-6 during


def _cli(tmp_path: Path, log: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``modelyard COMMAND`` on a config whose log is ``log`` (its one model never asked)."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "model": "x"}},
        "agents": {"chat": {"primary": "m"}}, "log": {"path": str(log)}}))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HOME": str(tmp_path),
           "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), command], capture_output=True,
                          text=True, env=env, timeout=120)


def test_check_names_a_damaged_log_set_aside_until_it_is_dealt_with(tmp_path: Path) -> None:
    """The ERROR line and /healthz said it once, in a ``serve`` that may have restarted since (its /healthz forgets
    after 5 minutes): ``modelyard check`` names the file set aside, and how to recover its rows, while it is there."""
    path = _written(tmp_path / "log.sqlite3", 3)
    _random_bytes(path)
    LogWriter(path).close()
    done = _cli(tmp_path, path, "check")
    aside = _aside(tmp_path, "log.sqlite3")
    assert len(aside) == 1
    out = " ".join(done.stdout.split())
    assert f"{aside[0].name} was set aside beside it when SQLite found the log damaged" in out, done.stdout
    assert "it holds pages SQLite cannot read as tables (file is not a database)" in out, done.stdout
    assert f"sqlite3 {aside[0]} .recover" in out, done.stdout
    aside[0].unlink()
    again = _cli(tmp_path, path, "check")
    assert "was set aside" not in again.stdout, again.stdout


def test_a_column_altered_by_hand_on_postgresql_keeps_the_rows_until_it_is_restored(tmp_path: Path,
                                                                                   pg_url: str) -> None:
    """A DBA's ``ALTER TABLE requests ALTER COLUMN agent TYPE varchar(3)`` (a 'tidy-up' of a text column; PostgreSQL
    docs, ALTER TABLE … SET DATA TYPE): every request then refused with SQLSTATE 22001 'value too long for type
    character varying(3)' (PostgreSQL docs, Appendix A). Regression guard: a data error was taken for the row's own —
    each row counted ``refused`` and taken out of the forward queue, so after the column was put back none of the rows
    refused meanwhile reached PostgreSQL (0 of 4). Now, with such a column there, the refusal is the table's: the rows
    wait in the spool, the reason names the column and the ALTER that restores it, and all arrive once it is."""
    from psycopg import connect as pg_connect
    from tests.pg import SpooledWriter

    writer = SpooledWriter(tmp_path / "spool.sqlite3", pg_url, [])
    try:
        writer.submit(record(0, agent="qa"))  # fits: the ALTER converts the rows there
        assert writer.flush(30)
        with pg_connect(pg_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE requests ALTER COLUMN agent TYPE varchar(3)")
        for i in range(1, 5):
            writer.submit(record(i))
        assert writer.log.flush(30)
        deadline = time.monotonic() + 20
        while writer.forwarder.health().failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        health = writer.forwarder.health()
        assert health.refused == 0 and health.backlog > 0 and health.degraded, health
        said = health.last_error or ""
        assert "requests.agent is character varying(3)" in said and "ALTER COLUMN agent TYPE text" in said, said
        with pg_connect(pg_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE requests ALTER COLUMN agent TYPE text")
        assert writer.forwarder.flush(60), writer.forwarder.health()
    finally:
        writer.close()
    with pg_connect(pg_url, autocommit=True) as admin:
        ids = [r[0] for r in admin.execute("SELECT id FROM requests ORDER BY id").fetchall()]
        attempts = admin.execute("SELECT COUNT(*) FROM attempts").fetchone()
    assert ids == [f"req{i:06d}" for i in range(5)], ids  # each once
    assert attempts is not None and attempts[0] == 5


def test_log_on_a_damaged_file_says_it_is_damaged_and_what_comes_next(tmp_path: Path) -> None:
    """``modelyard log`` / ``report`` before any writer ran: they said 'cannot be opened (file is not a database); it
    must be a SQLite file … that this user can read and write' — a damaged log, not a permission. They leave the
    file as it is (a reader never moves it) and say what the next writer does with it."""
    path = _written(tmp_path / "log.sqlite3", 3)
    _random_bytes(path)
    before = path.read_bytes()
    done = _cli(tmp_path, path, "log")
    said = " ".join(done.stderr.split())
    assert done.returncode == 1 and "is damaged (SQLite: file is not a database)" in said, done.stderr
    assert "sets it aside whole and starts a new one" in said and ".recover" in said and "Traceback" not in said
    assert path.read_bytes() == before and not _aside(tmp_path, "log.sqlite3")
