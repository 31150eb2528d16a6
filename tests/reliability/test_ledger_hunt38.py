"""The routing log, round 38: its store refusing at *start* — the disk holding it full, another process holding its
lock — on real SQLite files, a real full tmpfs and a whole ``serve``.

While ``serve`` ran, a full disk or a held lock already held the rows and wrote them once there was room (round 37).
At start the same states stopped it: ``serve``, ``ask``, ``chat`` and the bot exited 1 ('the disk holding it is
full … free some space there'). Under systemd's ``Restart=`` or Docker's ``restart:`` that is a crash loop with no
model answering anybody until someone frees the disk — what users of other SQLite-backed services meet:
strongloop/strong-pm#368 (``SQLITE_FULL`` at start, systemd restarting it every 2 s), juanfont/headscale#2363 ('fails
to start on full disk … disk I/O error (4874)', SQLITE_IOERR_SHMSIZE: the ``-shm`` cannot be made, as here; 'it would
be nice if it started regardless'), ZerosAndOnesLLC/AiFw#616 ('crash-loops when the database is busy at startup').
And a restart during a full disk (a deploy, ``systemctl restart``) turned a gateway that answered, its rows held, into
none. Now such a state at start is the same episode as while running: the process starts and answers, the rows are
held in memory (bounded by ``log.max_queue``), said once, tried every few seconds, written once the log opens; rows
still held at a stop go to a file the next start writes. Lost: what is held when the process is killed (kill -9, the
OOM killer, a power cut). A place somebody must change (a read-only directory, permissions, a file that is not a log)
is still refused at start: it would never take the rows by itself (tests/integration/test_log_read_only.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.fakes.openai_compat import OpenAIServer
from tests.pg import free_port
from tests.reliability.test_ledger_hunt36 import SRC, _get, _post, serve_up
from tests.reliability.test_ledger_hunt37 import held_settled, held_written
from tests.unit.test_log_writer_faults import record, rows

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module


@contextlib.contextmanager
def full_tmpfs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a folder on a 4 MiB tmpfs of its own, a file filling it: unlink it to free the disk). Needs the right to
    mount (root in CI); a file-size limit (RLIMIT_FSIZE) is not a full disk at open — the file is then refused as any
    unwritable place is."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                                           capture_output=True, timeout=30).returncode != 0:
        pytest.skip("a full disk needs a tmpfs of its own: root (mount) only")
    filler = folder / "filler"
    try:
        yield folder, filler
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def fill(filler: Path) -> None:
    with open(filler, "ab", buffering=0) as f:
        for size in (1 << 16, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"x" * size)


def modelyard(tmp_path: Path, log: dict, *args: str) -> subprocess.CompletedProcess[str]:
    """``modelyard ARGS`` on a config of one model on a closed port and ``log``, its home under ``tmp_path``."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"alpha": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "model": "x"}},
        "agents": {"chat": {"primary": "alpha"}}, "log": log}))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HOME": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=120, env=env)


def a_log_with_rows(path: Path, n: int = 5) -> None:
    writer = LogWriter(path)
    for i in range(n):
        writer.submit(record(i))
    assert writer.flush(5)
    writer.close()


def test_a_full_disk_at_start_holds_the_rows_and_writes_them_once_there_is_room(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="modelyard.ledger.episode")
    with full_tmpfs(tmp_path) as (folder, filler):
        path = folder / "log.sqlite3"
        a_log_with_rows(path)
        fill(filler)
        writer = LogWriter(path)  # before: LogUnavailable('… the disk holding it is full …'), the start ended
        try:
            health = writer.health()
            assert health.degraded and "the disk holding it is full" in (health.last_error or ""), health
            waits = []
            for i in range(5, 35):
                writer.submit(record(i))
                start = time.monotonic()
                assert writer.flush(5)
                waits.append(time.monotonic() - start)
            assert writer.held == 30 and writer.written == 0, writer.health()
            assert max(waits) < 1.0, waits  # nobody waits out LOG_WAIT (5 s) for a row the log cannot take
            filler.unlink()
            health = held_written(writer)
        finally:
            writer.close()
        assert (health.written, health.held, health.lost, health.dropped) == (30, 0, 0, 0), health
        assert sorted(rows(path)) == [f"r{i:05d}" for i in range(35)]
    said = [r.getMessage() for r in caplog.records if r.name == "modelyard.ledger.episode"]
    assert len(said) == 2, said
    assert "the disk holding it is full" in said[0] and "starts all the same" in said[0] and "kill -9" in said[0]
    assert "takes rows again: the 30 row(s) held" in said[1] and "nothing was lost" in said[1], said[1]


def test_a_stop_while_the_disk_is_still_full_keeps_the_rows_for_the_start_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart that never found the log open: its rows go to this user's state directory (another disk here) and
    the first start that opens the log writes them."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    with full_tmpfs(tmp_path) as (folder, filler):
        path = folder / "log.sqlite3"
        fill(filler)  # a new log: not even the file can be made
        writer = LogWriter(path)
        for i in range(3):
            writer.submit(record(i))
        assert writer.flush(5)
        writer.close()
        assert (writer.saved, writer.errors) == (3, 0), writer.health()
        again = LogWriter(path)  # the disk still full: a second start, as systemd's restart would make
        again.submit(record(3))
        assert again.flush(5)
        again.close()
        filler.unlink()
        opened = LogWriter(path)
        opened.close()
        assert sorted(rows(path)) == [f"r{i:05d}" for i in range(4)]
        assert not list((tmp_path / "state").rglob("*-*-*")), "a held file left after its rows were written"


def test_another_process_holding_the_lock_at_start_holds_the_rows_until_it_lets_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``sqlite3`` shell in ``locking_mode=EXCLUSIVE`` (or a tool holding the file) at start: the writer waited its
    busy timeout and the start ended ('another process held it locked'). Now it starts, holds, and each try waits
    RETRY_BUSY for the lock, not 10 s — the answers whose rows come meanwhile do not wait that."""
    monkeypatch.setattr(writer_module, "START_BUSY", 0.2, raising=False)  # (the code before: 10 s)
    monkeypatch.setattr(writer_module, "RETRY_PAUSE", (0.25,))
    path = tmp_path / "log.sqlite3"
    a_log_with_rows(path, 1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        writer = LogWriter(path)
        try:
            assert "another process held it locked" in (writer.health().last_error or "")
            for i in range(1, 21):
                writer.submit(record(i))
                start = time.monotonic()
                assert writer.flush(5)
                assert time.monotonic() - start < 1.0
            assert writer.held == 20
            other.execute("COMMIT")
            other.close()
            health = held_written(writer)
        finally:
            writer.close()
    finally:
        other.close()
    assert (health.written, health.held, health.lost) == (20, 0, 0), health
    assert len(rows(path)) == 21


def serve_started(config: Path, model_port: int, log: dict, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """``serve`` on a config of one model at ``model_port`` (a fake OpenAI server) and ``log``, once it answers /healthz
    (it exited 1 when its log's disk was full at start): (the process, its port)."""
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": f"http://127.0.0.1:{model_port}/v1", "model": "x"}},
        "agents": {"chat": {"primary": "m"}}, "log": log}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    serve_up(proc, port)
    return proc, port


def answered(port: int, n: int) -> None:
    """``n`` questions to a running ``serve``, each answered (200, with text)."""
    ask = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(n):
        status, answer = _post(port, ask)
        assert status == 200 and answer["choices"][0]["message"]["content"], answer


def test_serve_started_on_a_full_disk_answers_says_so_and_logs_every_answer_once_there_is_room(
        tmp_path: Path) -> None:
    """The whole gateway, started while its log's disk is full: before, it exited 1 and answered nobody."""
    server = OpenAIServer(models=["x"]).start()
    config = tmp_path / "c.yaml"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HOME": str(tmp_path)}
    try:
        with full_tmpfs(tmp_path) as (folder, filler):
            path = folder / "log.sqlite3"
            a_log_with_rows(path, 2)
            fill(filler)
            proc, port = serve_started(config, server.port, {"path": str(path)}, env)
            try:
                answered(port, 10)
                health = _get(port, "/healthz")
                assert health["status"] == "degraded", health
                assert health["log"]["held"] == 10 and "the disk holding it is full" in health["log"]["last_error"]
                filler.unlink()
                after = held_settled(port)
                assert (after["held"], after["written"], after["errors"], after["dropped"]) == (0, 10, 0, 0), after
            finally:
                proc.terminate()
                _, stderr = proc.communicate(timeout=60)
            with contextlib.closing(sqlite3.connect(path)) as conn:
                stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM requests").fetchone()
    finally:
        server.stop()
    assert stored == (12, 12), stored
    assert stderr.count("starts all the same") == 1 and stderr.count("takes rows again") == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


def test_models_on_a_full_disk_lists_the_models_and_says_why_the_log_was_not_read(tmp_path: Path) -> None:
    """``models`` needs the log only for each model's recent failures and spend: on a full disk it exited 1 listing
    none ('the disk holding it is full'), while the gateway beside it answered. Now it lists them, says the log could
    not be read and why, and exits 1 (its help: 'listed, but … could not be read')."""
    with full_tmpfs(tmp_path) as (folder, filler):
        path = folder / "log.sqlite3"
        a_log_with_rows(path, 1)
        fill(filler)
        done = modelyard(tmp_path, {"path": str(path)}, "models", "--no-reach")
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert "alpha" in done.stdout, said  # before: no model listed
    assert (f"the routing log could not be read: routing log {path}: the disk holding it is full" in said
            and "without the log's recent failures and spend" in said), said


def test_with_log_url_a_spool_that_cannot_be_opened_at_start_starts_all_the_same_and_says_so(tmp_path: Path) -> None:
    """With ``log.url`` the file is the spool PostgreSQL's forwarder reads (ledger/forward.py): a full disk there
    ended the start until round 40 (this test pinned that). Now it starts as without ``log.url`` — said once, naming
    the spool's database — and the forwarder waits for the spool without a traceback or a line blaming PostgreSQL
    (tests/reliability/test_ledger_hunt40.py forwards the held rows once there is room)."""
    with full_tmpfs(tmp_path) as (folder, filler):
        path = folder / "log.sqlite3"
        a_log_with_rows(path, 1)
        fill(filler)
        done = modelyard(tmp_path, {"path": str(path), "url": "postgresql://modelyard@127.0.0.1:9/modelyard"}, "ask",
                         "hi")
    said = " ".join(done.stderr.split())
    assert "Traceback" not in said and "cannot forward to" not in said, said
    assert f"routing log {path}: the disk holding it is full" in said and "starts all the same" in said, said
    assert "it is the spool of postgresql://modelyard@127.0.0.1:9/modelyard" in said, said
    assert "no model could answer" in said and "kept in" in said, said  # the model's port is closed; its row kept


def _shrunk_and_moved_over(tmp_path: Path, caplog: pytest.LogCaptureFixture, keep_old_as: str | None) -> Path:
    """The shrink recipe done while a writer runs: ``VACUUM INTO 'small.sqlite3'``, 20 more answers, then ``mv
    small.sqlite3 log.sqlite3`` (the old file first moved to ``keep_old_as``, or not), then 10 more; the log's path."""
    caplog.set_level(logging.WARNING)
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path)
    try:
        for i in range(100):
            writer.submit(record(i))
        assert writer.flush(5)
        with contextlib.closing(sqlite3.connect(path)) as shell:
            shell.execute(f"VACUUM INTO '{tmp_path / 'small.sqlite3'}'")
        for i in range(100, 120):  # in the old file only: after the copy, before the mv
            writer.submit(record(i))
            assert writer.flush(5)
        if keep_old_as is not None:
            os.replace(path, tmp_path / keep_old_as)
        os.replace(tmp_path / "small.sqlite3", path)
        for i in range(120, 130):
            writer.submit(record(i))
            assert writer.flush(5)
    finally:
        writer.close()
    assert sorted(rows(path)) == [f"r{i:05d}" for i in (*range(100), *range(120, 130))]
    return path


def _requests_in(file: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return sorted(r[0] for r in conn.execute("SELECT id FROM requests"))


def test_a_file_moved_over_the_log_keeps_the_old_ones_rows_in_a_database_that_can_be_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``mv small.sqlite3 log.sqlite3`` over a running writer's log: the old file has no name left. Before, its
    write-ahead log alone was set aside ('the old file's last rows … are kept in log.sqlite3-wal.replaced-…'), page
    images nobody can read without the file they belong to: the 20 answers written between the copy and the mv were
    gone (310 of 330 anywhere). Now the old file is copied whole, its write-ahead log included, to a database of its
    own, named in the warning; no write-ahead log is left lying beside the log."""
    path = _shrunk_and_moved_over(tmp_path, caplog, None)
    kept = list(tmp_path.glob("log.sqlite3.replaced-*"))
    assert len(kept) == 1, sorted(p.name for p in tmp_path.iterdir())
    assert _requests_in(kept[0]) == [f"r{i:05d}" for i in range(120)]
    assert not list(tmp_path.glob("log.sqlite3-wal.replaced-*"))
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"every row it had is kept in {kept[0]}" in said, said
    with contextlib.closing(sqlite3.connect(path)) as conn:  # what the warning says to do, done: nothing missing
        conn.execute(f"ATTACH '{kept[0]}' AS old")
        conn.execute("INSERT OR IGNORE INTO requests SELECT * FROM old.requests")
        conn.commit()
        assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 130


def test_a_log_moved_away_and_replaced_keeps_every_row_where_it_was_moved(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``mv log.sqlite3 old.sqlite3; mv small.sqlite3 log.sqlite3``: the old file keeps its name elsewhere, but its
    write-ahead log stays at the old path. Before, that was set aside and the moved file was read without it — here
    every row was still in the write-ahead log (a young log is checkpointed after 256 rows): old.sqlite3 said 'no
    such table: requests'. Now the write-ahead log is copied into the old file before the writer moves on."""
    _shrunk_and_moved_over(tmp_path, caplog, "old.sqlite3")
    assert _requests_in(tmp_path / "old.sqlite3") == [f"r{i:05d}" for i in range(120)]
    assert not list(tmp_path.glob("log.sqlite3-wal.replaced-*"))
