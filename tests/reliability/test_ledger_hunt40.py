"""The routing log, round 40: a log file deleted while its write-ahead log stays, routing labels on a full disk, and a
PostgreSQL log whose local spool's disk is full at start — on real SQLite files, a real full tmpfs, real processes and
the real PostgreSQL (tests/pg.py).

``rm log.sqlite3`` alone leaves ``log.sqlite3-wal`` and ``-shm`` behind. SQLite, opening a missing or empty database
file, deletes a write-ahead log it finds beside it (pager.c, ``pagerOpenWalIfPresent``: "If the database file is zero
bytes in size … delete the WAL file"; the same in sqlite/sqlite's src/pager.c at every version since 3.7): the rows a
killed writer had there went without a word, and a process still running on the deleted file shared its ``-shm``
with the next one's new file. Now the log is set aside as a database of its own, said, and the new file takes rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from tests.pg import SpooledWriter, scratch_database, scratch_schema
from tests.reliability.test_ledger_hunt36 import SRC
from tests.reliability.test_ledger_hunt37 import held_written
from tests.reliability.test_ledger_hunt38 import fill, full_tmpfs
from tests.unit.test_log_writer_faults import record, rows

from modelyard.config import load_config
from modelyard.ledger import LogWriter
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.labels import LabelSource, add_label, labels, record_fit
from modelyard.ledger.store import LogStore

#: a writer in a process of its own: ``n`` rows written, then (after a line on stdin) ``more``, then closed — or
#: killed (``os._exit``) right after the first rows, as kill -9 or the OOM killer would
_WRITER = textwrap.dedent("""
    import os, sys
    from modelyard.ledger import LogWriter
    from tests.unit.test_log_writer_faults import record
    import time
    path, n, more, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    writer = LogWriter(path)
    for i in range(n):
        writer.submit(record(i))
    assert writer.flush(10)
    if mode == "checkpoint-kill":  # the rows so far checkpointed into the file (CHECKPOINT_IDLE), then more
        time.sleep(3)
        for i in range(n, n + more):
            writer.submit(record(i))
            assert writer.flush(10)
    if mode.endswith("kill"):
        os._exit(0)
    print("written", flush=True)
    sys.stdin.readline()
    for i in range(n, n + more):
        writer.submit(record(i))
    assert writer.flush(10)
    writer.close()
    print("closed", writer.health().written, flush=True)
""")


def _writer(path: Path, n: int, more: int = 0, mode: str = "run") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{SRC.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(n), str(more), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _killed_then_deleted(path: Path, n: int, more: int = 0, mode: str = "kill") -> None:
    """A writer of ``n`` (then ``more``) rows killed (:data:`_WRITER`'s ``mode``), then ``rm`` of the log file alone."""
    killed = _writer(path, n, more, mode)
    assert killed.wait(60) == 0, killed.stderr.read() if killed.stderr else ""
    assert Path(f"{path}-wal").stat().st_size > 0
    path.unlink()


def _aside(path: Path) -> Path:
    [aside] = [p for p in path.parent.glob(f"{path.name}.orphaned-*") if not p.name.endswith(("-wal", "-shm"))]
    return aside


def _whole(path: Path) -> bool:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


@pytest.mark.parametrize("first", ["writer", "reader"])
def test_a_log_deleted_after_its_writer_was_killed_keeps_the_write_ahead_rows_aside_and_logs_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, first: str) -> None:
    """kill -9 of a writer leaves its write-ahead log (20 rows, nothing checkpointed yet), then ``rm log.sqlite3``;
    the next process to open the path — a writer, or a reader such as ``modelyard log`` — found SQLite deleting that
    log: the 20 rows nowhere. Now they are in ``log.sqlite3.orphaned-<time>``, said, and the new log takes rows."""
    caplog.set_level(logging.ERROR)
    path = tmp_path / "log.sqlite3"
    _killed_then_deleted(path, 20)
    if first == "reader":
        LogStore(path).local(readonly=True).close()
    writer = LogWriter(path)
    for i in range(100, 105):
        writer.submit(record(i))
    assert writer.flush(5)
    writer.close()
    assert sorted(rows(path)) == [f"r{i:05d}" for i in range(100, 105)]
    aside = _aside(path)  # before: none — SQLite had deleted the write-ahead log, its 20 rows with it
    assert sorted(rows(aside)) == [f"r{i:05d}" for i in range(20)] and _whole(aside)
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert f"{path.name}-wal" in said and aside.name in said and "every row it held is kept" in said, said
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(("-wal", "-shm")) and p.name.startswith(aside.name)]


def test_a_deleted_log_whose_older_rows_were_checkpointed_keeps_what_its_write_ahead_log_held(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Rows checkpointed into the deleted file are gone with it; the 20 written after the checkpoint were only in the
    write-ahead log, which SQLite deleted. Now its pages are kept in the file set aside, said as incomplete — the
    schema's pages went with the deleted file here, so it is said that no table of it can be read."""
    caplog.set_level(logging.ERROR)
    path = tmp_path / "log.sqlite3"
    _killed_then_deleted(path, 300, 20, "checkpoint-kill")
    LogWriter(path).close()
    aside = _aside(path)
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "pages were only in the deleted file" in said and aside.name in said, said
    assert "every row it held" not in said, said  # not claimed: the checkpointed rows went with the file
    kept = aside.read_bytes()
    assert all(f"r{i:05d}".encode() in kept for i in range(300, 320))  # before: no such file, the bytes deleted
    LogWriter(path).close()  # the new log opens again, nothing more set aside
    assert [aside] == [p for p in tmp_path.glob("log.sqlite3.orphaned-*")]


def test_a_log_deleted_while_a_writer_runs_keeps_both_processes_rows(tmp_path: Path) -> None:
    """``rm log.sqlite3`` while a process writes it, and another process started before that one writes again: the
    new one opened a new file beside the old one's write-ahead log and ``-shm`` (SQLite deleted the log, the index
    stayed shared between two files). Now the old log is set aside whole (its 20 rows), the new file takes the new
    process's rows, and the old process, finding its file deleted, writes into the new one (8 of 8)."""
    path = tmp_path / "log.sqlite3"
    running = _writer(path, 20, 3)
    assert running.stdout is not None and running.stdin is not None
    assert running.stdout.readline().strip() == "written"
    path.unlink()
    writer = LogWriter(path)
    for i in range(100, 105):
        writer.submit(record(i))
    assert writer.flush(5)
    running.stdin.write("go\n")
    running.stdin.flush()
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0 and "closed 23" in out, err[-3000:]
    writer.close()
    assert sorted(rows(path)) == [f"r{i:05d}" for i in range(20, 23)] + [f"r{i:05d}" for i in range(100, 105)]
    assert _whole(path)
    aside = _aside(path)
    assert sorted(rows(aside)) == [f"r{i:05d}" for i in range(20)] and _whole(aside)


def _labelled_log(path: Path, n: int = 3) -> None:
    """A log with ``n`` routing labels, all trusted by a ``routing learn``, closed cleanly (no write-ahead log)."""
    writer = LogWriter(path)
    writer.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for i in range(n):
            add_label(conn, f"total up my receipts number {i}", "sorter", LabelSource.CLI)
        record_fit(conn, n, True, 0.5, 0.9, n, "kept")
    assert not Path(f"{path}-wal").exists()


def _config(tmp_path: Path, path: Path) -> Path:
    agents = {name: {"primary": "m", "role": "none", "examples": [f"{name} example {i}" for i in range(3)]}
              for name in ("talker", "sorter")}
    agents["router"] = {"primary": "m", "consumers": ["talker", "sorter"], "role": "none"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, "agents": agents,
        "default_agent": "talker", "orchestration": {"agent": "router", "threshold": 0.0},
        "log": {"path": str(path)}}))
    return config


def test_learned_labels_are_read_at_a_start_on_a_full_disk(tmp_path: Path) -> None:
    """On a full disk SQLite cannot make the log's ``-shm``: the fast path started without its learned labels
    ('routing: learned labels unavailable'). A file with no write-ahead log beside it holds every label: read as it
    lies on disk, they are all there."""
    from modelyard.agents.learning import learned_labels

    with full_tmpfs(tmp_path) as (folder, filler):
        path = folder / "log.sqlite3"
        _labelled_log(path)
        fill(filler)
        found = learned_labels(load_config(_config(tmp_path, path)))
    assert [lab.text for lab in found] == [f"total up my receipts number {i}" for i in range(3)]


async def test_a_look_for_new_labels_that_cannot_read_the_log_keeps_the_labels_in_use(tmp_path: Path) -> None:
    """A running front-end looks for newly trusted labels every 30 s: a look that could not read the file was taken
    for 'no labels', and the fast path was retrained without any ('now trains on 0 learned labels (was 3)')."""
    from modelyard.agents import turn
    from modelyard.runtime import open_runtime

    path = tmp_path / "log.sqlite3"
    _labelled_log(path)
    runtime = open_runtime(_config(tmp_path, path))
    try:
        before = await turn.prepare_routing(runtime)
        assert before is not None and len(before.labels) == 3
        moved = tmp_path / "moved.sqlite3"
        path.rename(moved)
        path.mkdir()  # the path cannot be opened as a database now (a stand-in for any read that fails)
        try:
            assert await turn.refresh_routing(runtime) is False
            assert await turn.prepare_routing(runtime) is before  # before: retrained on no labels
        finally:
            path.rmdir()
            moved.rename(path)
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("restart", [False, True])
async def test_a_correction_made_while_the_disk_is_full_is_held_and_written_once_there_is_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool) -> None:
    """``/agent X`` after a 👎 (or the question asked again) on a full disk: the decision was held by the writer, not
    in the file, and the label's own connection failed — 'could not record a correction', the label gone. Now the
    decision is found among the held rows and the label goes through the writer, held with them and written — or,
    stopped while the disk is still full (``restart``), kept in the held file and written by the next start."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    from tests.agents.conftest import agent_of, fake_config
    from tests.fakes import OpenAIServer

    from modelyard.agents.learning import correct_routing
    from modelyard.agents.turn import handle_turn
    from modelyard.runtime import open_runtime
    from modelyard.types import Message

    with OpenAIServer(reply_text=lambda body: f"<{agent_of(body)}> done") as server, \
            full_tmpfs(tmp_path) as (folder, filler):
        config = fake_config(server.url, folder)
        runtime = open_runtime(tmp_path / "config.yaml", config=config)
        try:
            result = await handle_turn(runtime, [Message("user", "warm up")])  # the log made and opened
            fill(filler)
            result = await handle_turn(runtime, [Message("user", "sort these names: Zoe, Adam, Mia")])
            assert result.decision is not None and runtime.log.flush(5)
            assert runtime.log.held >= 2, runtime.log.health()  # the request and its decision, held
            assert correct_routing(runtime, result.request_id, "engineer", LabelSource.CHAT)  # before: False
            if restart:
                await runtime.aclose()
                assert runtime.log.saved >= 3, runtime.log.health()  # request, decision, label: in the held file
                filler.unlink()
                LogWriter(folder / "log.sqlite3").close()  # the next start writes them
            else:
                filler.unlink()
                assert held_written(runtime.log).held == 0
        finally:
            await runtime.aclose()
        with contextlib.closing(sqlite3.connect(folder / "log.sqlite3")) as conn:
            found = [(lab.text, lab.agent, lab.source) for lab in labels(conn)]
    assert found == [("sort these names: Zoe, Adam, Mia", "engineer", "chat")]


def test_with_log_url_a_full_local_disk_at_start_holds_the_rows_and_forwards_them_once_there_is_room(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With ``log.url`` the file is the spool the forwarder reads; a full disk there at start refused to start
    (LogUnavailable, 'the disk holding it is full'), PostgreSQL reachable or not. Now the writer holds the rows in
    memory (bounded, said), the forwarder opens the spool once it can, and every row reaches PostgreSQL."""
    caplog.set_level(logging.WARNING)
    with scratch_database() as database, scratch_schema(database) as url, full_tmpfs(tmp_path) as (folder, filler):
        path = folder / "log.sqlite3"
        first = SpooledWriter(path, url, ())
        first.submit(record(0))
        assert first.flush()
        first.close()
        fill(filler)
        writer = LogWriter(path, url=url)  # as the runtime makes them; before: LogUnavailable, the start ended
        forwarder = Forwarder(path, url)
        writer.on_commit(forwarder.wake)
        try:
            assert writer.health().degraded
            for i in range(1, 11):
                writer.submit(record(i))
            assert writer.flush(5) and writer.held == 10
            filler.unlink()
            assert held_written(writer).held == 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not forwarder.flush(1):
                time.sleep(0.1)
        finally:
            writer.close()
            forwarder.close()
        with psycopg.connect(url) as pg:
            found = sorted(r[0] for r in pg.execute("SELECT id FROM requests").fetchall())
    assert found == [f"r{i:05d}" for i in range(11)]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "starts all the same" in said and "it is the spool of" in said, said


def test_serve_with_log_url_started_on_a_full_spool_disk_answers_and_every_answer_reaches_postgresql(
        tmp_path: Path) -> None:
    """The whole gateway with ``log.url``, started while its spool's disk is full: before, it exited 1 and answered
    nobody; now it answers, /healthz says the rows are held, and once there is room every answer reaches PostgreSQL."""
    from tests.fakes.openai_compat import OpenAIServer
    from tests.reliability.test_ledger_hunt36 import _get
    from tests.reliability.test_ledger_hunt38 import answered, serve_started

    server = OpenAIServer(models=["x"]).start()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HOME": str(tmp_path)}
    try:
        with scratch_database() as database, scratch_schema(database) as url, \
                full_tmpfs(tmp_path) as (folder, filler):
            path = folder / "log.sqlite3"
            LogWriter(path).close()  # the spool made, then the disk fills
            fill(filler)
            proc, port = serve_started(tmp_path / "c.yaml", server.port, {"path": str(path), "url": url}, env)
            try:
                answered(port, 5)
                health = _get(port, "/healthz")
                assert health["status"] == "degraded" and health["log"]["held"] == 5, health
                filler.unlink()
                deadline = time.monotonic() + 60
                with psycopg.connect(url, autocommit=True) as pg:
                    while time.monotonic() < deadline:
                        with contextlib.suppress(psycopg.Error):
                            if pg.execute("SELECT COUNT(*) FROM requests").fetchone() == (5,):
                                break
                        time.sleep(0.2)
                    stored = pg.execute("SELECT COUNT(*) FROM requests").fetchone()
            finally:
                proc.terminate()
                _, stderr = proc.communicate(timeout=60)
    finally:
        server.stop()
    assert stored == (5,), (stored, stderr[-3000:])
    assert "Traceback" not in stderr and "cannot forward to" not in stderr, stderr[-3000:]
    assert stderr.count("starts all the same") == 1 and "the spool opened" in stderr, stderr[-3000:]


def test_a_held_label_replaces_an_earlier_label_of_the_same_request_as_add_label_does(tmp_path: Path) -> None:
    """A correction written through the writer (held on a full disk) cannot delete the request's earlier label as
    ``add_label`` does: both stayed, and ``routing learn`` trained on two agents for one question.
    The newest is read."""
    from modelyard.ledger.labels import label_row

    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        add_label(conn, "sort these names", "coder", LabelSource.CHAT, request_id="q1")
        add_label(conn, "hello there", "talker", LabelSource.CHAT)
    writer.submit_row(label_row("sort these names", "sorter", LabelSource.CHAT, request_id="q1", previous="coder"))
    assert writer.flush(5)
    writer.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert [(lab.text, lab.agent) for lab in labels(conn)] == [("hello there", "talker"),
                                                                  ("sort these names", "sorter")]
