"""The routing log, round 37: faults of its storage that happen while ``serve`` runs, on real SQLite files.

A disk that fills while requests keep coming — the log's own growth, a model download or a core dump beside it
(users of peer systems meet it as SQLite's 'database or disk is full', SQLITE_FULL: pymedusa/Medusa#1055,
duplicati/duplicati#4387, PennyDreadfulMTG/Penny-Dreadful-Tools#819 — 'has failed more than 24 runs in a row'; and
a program that does not notice the space coming back: litedb-org/LiteDB#2286). modelyard held the rows the store
refused and settled them, but every row that came later set off one more try of every row held — a transaction of
them all per request: 2,000 requests one after another on a full disk made 5,997 failed tries in 63 s (28 ms a
request, growing with the rows held); a burst of 20,000 was not settled after 120 s (4,700 held), so answers waited
out LOG_WAIT for their rows and the queue grew towards ``max_queue``, past which every later row is dropped. Now rows
that come while the store refuses every row are held at once and tried with the rest when the pause is up (the same
2,000: 3 tries, 0.8 s), and the log says when rows start to be held and when they are written — before, the only line
was 'write failed (OperationalError: disk I/O error; 4305 failures so far); the writer carries on'.

The disk is a real full filesystem when this user may mount one (a 16 MiB tmpfs, filled: ENOSPC, SQLite's
SQLITE_FULL), else a file-size limit on the process (RLIMIT_FSIZE: EFBIG, SQLite's 'disk I/O error') — both are
writes the kernel refuses, and the writer meets them the same way."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.fakes.openai_compat import OpenAIServer
from tests.pg import free_port
from tests.reliability.test_ledger_hunt36 import SRC, _get, _post, serve_up
from tests.unit.test_log_writer_faults import record, rows

from modelyard.ledger import LogWriter
from modelyard.ledger import writer as writer_module
from modelyard.ledger.writer import WriterHealth

#: one child process: a writer whose disk fills after 20 rows; ``count`` rows then come one after another, each
#: waited for as the gateway waits (flush), then space comes back. It prints its counts as key=value
TRICKLE = textwrap.dedent("""
    import os, resource, signal, sys, time
    from pathlib import Path
    from modelyard.ledger import LogWriter
    from tests.unit.test_log_writer_faults import record

    path, how, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a signal
    writer = LogWriter(path)
    for i in range(20):
        writer.submit(record(i))
    assert writer.flush(5)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    filler = None
    if how == "tmpfs":  # fill the filesystem for real: ENOSPC
        filler = open(path.parent / "filler", "wb", buffering=0)
        for size in (1 << 16, 512):
            try:
                while True:
                    filler.write(b"x" * size)
            except OSError:
                pass
    else:  # the process may grow no file further: EFBIG
        used = sum(p.stat().st_size for p in path.parent.iterdir())
        resource.setrlimit(resource.RLIMIT_FSIZE, (used + 4096, limits[1]))
    unsettled = 0
    for i in range(20, 20 + count):
        writer.submit(record(i, prompt="x" * 2000))
        unsettled += not writer.flush(5)
    full = writer.health()
    if filler is not None:
        filler.close()
        os.unlink(path.parent / "filler")
    else:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    deadline = time.monotonic() + 20
    while writer.held and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.close()
    h = writer.health()
    print(f"tries={full.failures} held={full.held} unsettled={unsettled} written={h.written} lost={h.lost} "
          f"dropped={h.dropped} saved={h.saved}")
""")


def held_written(writer: LogWriter, within: float = 10.0) -> WriterHealth:
    """The writer's health once the rows it held are written (or ``within`` s passed)."""
    deadline = time.monotonic() + within
    while writer.held and time.monotonic() < deadline:
        time.sleep(0.02)
    return writer.health()


def held_settled(port: int, within: float = 20) -> dict:
    """The ``log`` part of a running ``serve``'s /healthz once it holds no row (or ``within`` s passed)."""
    deadline = time.monotonic() + within
    while (log := _get(port, "/healthz")["log"])["held"] and time.monotonic() < deadline:
        time.sleep(0.1)
    return log


@contextlib.contextmanager
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(a folder for the log, how its disk fills): a tmpfs of its own when this user may mount one, else the
    process's file-size limit."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True, timeout=30,
    ).returncode == 0
    try:
        yield folder, "tmpfs" if mounted else "rlimit"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def test_rows_coming_while_the_disk_is_full_are_held_at_once_not_tried_one_by_one(tmp_path: Path) -> None:
    count = 1500
    with full_disk(tmp_path) as (folder, how):
        path = folder / "log.sqlite3"
        done = subprocess.run([sys.executable, "-c", TRICKLE, str(path), how, str(count)], capture_output=True,
                              text=True, timeout=300, cwd=Path(__file__).parents[2])
        assert done.returncode == 0, done.stderr[-3000:]
        got = dict(pair.split("=") for pair in done.stdout.split())
        stored = len(rows(path))
    counts = {key: int(value) for key, value in got.items()}
    assert counts["held"] > 0, f"the disk ({how}) never refused a write: the test tested nothing"
    # one try per pause, not one per request (before: 3 per request — 4,500 here — each of every row held)
    assert counts["tries"] < count // 20, counts
    assert counts["unsettled"] == 0, counts
    assert (counts["written"], counts["lost"], counts["dropped"], stored) == (20 + count, 0, 0, 20 + count), counts
    said = done.stderr
    assert said.count("refuses every row") == 1, said[-3000:]
    assert said.count("takes rows again") == 1 and "nothing was lost" in said, said[-3000:]
    if how == "tmpfs":
        assert "the disk holding it is full" in said, said[-3000:]


def test_a_refusal_that_ends_says_so_with_the_rows_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Another process holding the write lock past the busy timeout (a ``sqlite3`` shell left in a transaction),
    then letting go: the rows held meanwhile are written, and both ends of it are said once."""
    caplog.set_level("WARNING", logger="modelyard.ledger.episode")
    monkeypatch.setattr(writer_module, "BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(writer_module, "RETRY_PAUSE", (0.25,))
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        writer.submit(record(0))
        assert writer.flush(3)
        other.execute("BEGIN IMMEDIATE")
        for i in range(1, 51):
            writer.submit(record(i))
            assert writer.flush(3)
        assert writer.held == 50
        other.execute("ROLLBACK")
        health = held_written(writer)
    finally:
        other.close()
        writer.close()
    assert health.written == 51 and health.lost == 0 and health.held == 0, health
    said = [r.getMessage() for r in caplog.records if r.name == "modelyard.ledger.episode"]
    assert len(said) == 2, said
    assert "refuses every row" in said[0] and "database is locked" in said[0]
    assert "the 50 row(s) held since it refused them were written" in said[1] and "nothing was lost" in said[1]


def test_another_programs_file_moved_over_the_log_holds_the_rows_says_so_and_they_go_once_it_is_moved_away(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``mv notes.txt routing.sqlite3`` (or a sync tool putting another file there) while the log is open: the writer
    takes over what is now at the path, cannot open it, and said 'writing to the file now at that path from now on'
    while every row was refused ('file is not a database'). Now it says the file there cannot be opened as the log
    and to move it away; the rows wait, and go into a new log once it is moved — the other file left as it was."""
    caplog.set_level("WARNING")
    path = tmp_path / "routing.sqlite3"
    writer = LogWriter(path)
    try:
        for i in range(3):
            writer.submit(record(i))
        assert writer.flush(5)
        notes = tmp_path / "notes.txt"
        notes.write_text("not a log\n" * 100)
        os.replace(notes, path)
        for i in range(3, 6):
            writer.submit(record(i))
            assert writer.flush(5)
        said = writer.health().last_error or ""
        assert "cannot be opened as the log" in said and "move that file away" in said, said
        assert "writing to the file now at that path" not in " ".join(r.getMessage() for r in caplog.records)
        assert writer.held == 3
        os.replace(path, notes)
        health = held_written(writer)
    finally:
        writer.close()
    assert health.lost == 0 and health.held == 0, health
    assert sorted(rows(path)) == ["r00003", "r00004", "r00005"]  # the first three went with the replaced file
    kept = list(tmp_path.glob("routing.sqlite3.replaced-*"))  # copied whole once (ledger38), not at each try
    assert len(kept) == 1 and sorted(rows(kept[0])) == ["r00000", "r00001", "r00002"], kept
    assert notes.read_text() == "not a log\n" * 100


def test_serve_answers_while_its_disk_is_full_and_logs_every_answer_once_there_is_room(tmp_path: Path) -> None:
    """The whole gateway: its log's disk fills while it serves (guard — the writer's part is tested above). Every
    request is answered, none waits for its row, /healthz says the rows are held, and once there is room every answer
    is in the log, once; the start and the end of it are said."""
    server = OpenAIServer(models=["x"]).start()
    config = tmp_path / "c.yaml"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HOME": str(tmp_path)}
    try:
        with full_disk(tmp_path) as (folder, how):
            path = folder / "log.sqlite3"
            config.write_text(yaml.safe_dump({
                "models": {"m": {"provider": "openai", "endpoint": f"http://127.0.0.1:{server.port}/v1",
                                 "model": "x"}},
                "agents": {"chat": {"primary": "m"}}, "log": {"path": str(path)}}))
            port = free_port()
            proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "serve", "--port",
                                     str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            filler = None
            try:
                serve_up(proc, port)
                ask = {"model": "chat", "messages": [{"role": "user", "content": "x" * 4000}]}
                assert _post(port, ask)[0] == 200
                if how == "tmpfs":
                    filler = open(folder / "filler", "wb", buffering=0)  # noqa: SIM115 — closed below, to free it
                    for size in (1 << 16, 512):
                        with contextlib.suppress(OSError):
                            while True:
                                filler.write(b"x" * size)
                else:
                    used = max(p.stat().st_size for p in folder.iterdir())
                    subprocess.run(["prlimit", f"--pid={proc.pid}", f"--fsize={used + 4096}:"], check=True, timeout=30)
                waits = []
                for _ in range(40):
                    start = time.monotonic()
                    status, answer = _post(port, ask)
                    waits.append(time.monotonic() - start)
                    assert status == 200 and answer["choices"][0]["message"]["content"], answer
                full = _get(port, "/healthz")["log"]
                assert full["held"] > 0 and full["errors"] == 0 and full["dropped"] == 0, full
                assert max(waits) < 2.0, waits  # LOG_WAIT is 5 s: no answer waited it out for its row
                if filler is not None:
                    filler.close()
                    os.unlink(folder / "filler")
                else:
                    subprocess.run(["prlimit", f"--pid={proc.pid}", "--fsize=unlimited:"], check=True, timeout=30)
                after = held_settled(port)
                assert after["held"] == 0 and after["errors"] == 0 and after["written"] == 41, after
            finally:
                if filler is not None and not filler.closed:
                    filler.close()
                proc.terminate()
                _, stderr = proc.communicate(timeout=60)
            with contextlib.closing(sqlite3.connect(path)) as conn:
                stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM requests").fetchone()
    finally:
        server.stop()
    assert stored == (41, 41), stored
    assert stderr.count("refuses every row") == 1 and stderr.count("takes rows again") == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
