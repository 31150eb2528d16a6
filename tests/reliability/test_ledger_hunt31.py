"""The routing log's fault hunt of ledger31 (2026-12-01): what ledger28's round left, then classes from outside in.

Each test runs against the real SQLite file and the real PostgreSQL (a schema per test on 5432) and fails on the code
before its fix; the source of each fault is in its docstring.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import string
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from tests.fakes.server import poll
from tests.integration.test_pg_forward import pg_ids, scraped, write
from tests.integration.test_pg_log_round6 import rebuild_requests
from tests.pg import SpooledWriter
from tests.unit.test_ledger import record

from modelyard.ledger import LogWriter, held
from modelyard.ledger.db import connect
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.labels import LabelSource, add_label
from modelyard.ledger.writer import _INSERT_REQUEST, REQUEST_COLUMNS
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import RequestRecord


@pytest.fixture
def forwarding(tmp_path: Path, pg_url: str) -> Iterator[tuple[Path, Forwarder]]:
    """A spool with one request forwarded, and its forwarder."""
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(0)])
        assert forwarder.flush(15)
        yield path, forwarder
    finally:
        forwarder.close()


def _discarding_trigger(url: str, table: str, when: str) -> None:
    """A DBA's filter on ``table``: a ``BEFORE INSERT`` trigger that returns NULL for the rows ``when`` names — the
    INSERT succeeds and skips them (https://www.postgresql.org/docs/current/trigger-definition.html: "it can return
    NULL to skip the operation for the current row")."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE FUNCTION keep_out_{table}() RETURNS trigger LANGUAGE plpgsql AS "
                      f"$$ BEGIN IF {when} THEN RETURN NULL; END IF; RETURN NEW; END $$")
        admin.execute(f"CREATE TRIGGER keep_out BEFORE INSERT ON {table} FOR EACH ROW "
                      f"EXECUTE FUNCTION keep_out_{table}()")


def test_attempt_rows_a_trigger_discards_are_counted_and_said(
        forwarding: tuple[Path, Forwarder], pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """ledger28 read back requests only: a trigger on ``attempts`` (one that keeps skipped attempts out of a shared
    table) left requests in the shared log without the models they tried — `report`'s per-model figures short — while
    the forwarder counted the batch whole and said nothing."""
    path, forwarder = forwarding
    _discarding_trigger(pg_url, "attempts", "NEW.model = 'cloud'")
    with caplog.at_level(logging.ERROR, logger="modelyard.ledger.forward"):
        write(path, [record(1, outcome=RequestOutcome.FALLBACK), record(2)])  # a FALLBACK tried 'cloud' first
        assert forwarder.flush(15), forwarder.health()
    health = forwarder.health()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE model = 'cloud'").fetchone()[0] == 0
    # before: discarded 0, not degraded, nothing said
    assert health.discarded == 1 and health.degraded, health
    assert "1 attempt row(s)" in (health.last_error or "") and "attempts" in caplog.text, health
    assert health.forwarded == 3  # the requests themselves are all there
    assert "modelyard_log_forward_discarded_rows_total 1.0" in scraped(forwarder)


def test_routing_labels_a_trigger_discards_are_counted_and_said(
        forwarding: tuple[Path, Forwarder], pg_url: str) -> None:
    """The same for routing labels (corrections): a trigger on ``routing_labels`` that drops a source it does not
    want made ``routing learn`` learn without them while the forwarder said nothing; one label sent twice (already
    there: the INSERT also says 0) is not counted."""
    path, forwarder = forwarding
    with closing(connect(path)) as conn:
        add_label(conn, "sort these files", "sorter", LabelSource.CLI)
    assert forwarder.flush(15)
    _discarding_trigger(pg_url, "routing_labels", "NEW.agent = 'coder'")
    with closing(connect(path)) as conn:
        add_label(conn, "write a parser", "coder", LabelSource.CLI)
        add_label(conn, "tidy the folder", "sorter", LabelSource.CLI)
        conn.execute("INSERT INTO _label_outbox (label_id) SELECT MIN(id) FROM routing_labels")  # sent again
    assert forwarder.flush(15), forwarder.health()
    health = forwarder.health()
    with psycopg.connect(pg_url) as conn:
        kept = [r[0] for r in conn.execute("SELECT agent FROM routing_labels ORDER BY id")]
    assert kept == ["sorter", "sorter"]
    # before: discarded 0, not degraded
    assert health.discarded == 1 and health.degraded, health
    assert "routing label" in (health.last_error or "") and "routing_labels" in (health.last_error or "")


def _old(i: int) -> RequestRecord:
    """A request of the history: one every two hours, up to two days ago."""
    r = record(i)
    r.ts = time.time() - 2 * 86400 - (100 - i) * 7200
    return r


def _refusing(url: str) -> None:
    """PostgreSQL refuses every request row from now on (a trigger that raises, as PostgreSQL's partitioning example
    does for a date no partition takes) until ``DROP TRIGGER no_rows ON requests``."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE FUNCTION no_rows() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN RAISE EXCEPTION 'Date out of range'; END $$")
        admin.execute("CREATE TRIGGER no_rows BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION no_rows()")


def _history(spooled: SpooledWriter, n: int) -> int:
    """``n`` old requests written and forwarded; how many the forwarder has sent."""
    for i in range(n):
        spooled.submit(_old(i))
    assert spooled.flush(15)
    return spooled.forwarder.forwarded


def _anchored_at(forwarder: Forwarder, request_id: str, timeout: float) -> None:
    """Wait for the forwarder's look (every MEND_EVERY s) to find the spool whole and standing at ``request_id``."""
    assert poll(lambda: (a := forwarder._anchor) is not None and a.request is not None
                and a.request[0] == request_id, timeout=timeout), forwarder._anchor


def test_a_spool_part_put_back_queues_what_came_since_not_the_history(
        tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """ledger28 put back the triggers a rebuilt table took along (sqlite-utils ``transform``, simonw/sqlite-utils#611)
    and queued the whole file again: every rebuild re-sent the log's history to PostgreSQL (a year's log: millions of
    upserts, the backlog and /healthz degraded for as long). Now where the spool stood at the last look bounds it."""
    path = tmp_path / "log.sqlite3"
    spooled = SpooledWriter(path, pg_url, ["local"])
    try:
        sent_before = _history(spooled, 40)
        _anchored_at(spooled.forwarder, "req000039", 5)  # nothing waits: the newest request is where it stands
        rebuild_requests(path)
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            for i in range(40, 43):
                spooled.submit(record(i))
            assert poll(lambda: len(pg_ids(pg_url)) == 43, timeout=20), spooled.forwarder.health()
            assert spooled.flush(15), spooled.forwarder.health()
        assert "were gone" in caplog.text
        # before: 43 sent again (the whole file); now the 3 written since and the row the look stood on
        assert spooled.forwarder.forwarded - sent_before <= 4, spooled.forwarder.forwarded - sent_before
    finally:
        spooled.close()


def test_rows_waiting_when_the_outbox_is_dropped_are_queued_again(tmp_path: Path, pg_url: str) -> None:
    """The same bound must not lose what was still waiting: PostgreSQL refusing every row (a trigger that raises, as
    PostgreSQL's partitioning example does for a date no partition takes), five requests wait in ``_outbox``, and the
    table is dropped by hand. Every one of them — and a rating of an older request waiting behind them — reaches
    PostgreSQL once it takes rows again, and the history forwarded before is not sent again."""
    path = tmp_path / "log.sqlite3"
    spooled = SpooledWriter(path, pg_url, ["local"])
    try:
        sent_before = _history(spooled, 20)
        _refusing(pg_url)
        for i in range(20, 25):
            spooled.submit(_old(i))
        assert spooled.log.flush(15)
        assert poll(lambda: spooled.forwarder.failures >= 1, timeout=10)
        with closing(sqlite3.connect(path)) as conn:  # and a 👍 on a request of the history, waiting behind them
            conn.execute("UPDATE requests SET acceptable = 1, rated_at = ? WHERE id = 'req000005'", (time.time(),))
            conn.commit()
        _anchored_at(spooled.forwarder, "req000020", 10)  # the oldest one waiting
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("DROP TABLE _outbox")
            conn.commit()

        def mended() -> bool:
            with closing(sqlite3.connect(path)) as conn:
                return conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = '_outbox'").fetchone()[0] == 1

        assert poll(mended, timeout=40)  # put back while PostgreSQL still refuses: nothing went meanwhile
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP TRIGGER no_rows ON requests")
        spooled.submit(record(25))
        assert poll(lambda: len(pg_ids(pg_url)) == 26, timeout=40), spooled.forwarder.health()
        assert spooled.flush(15)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT acceptable FROM requests WHERE id = 'req000005'").fetchone()[0] == 1
        # before: the 20 of the history sent again too
        assert spooled.forwarder.forwarded - sent_before == 7, spooled.forwarder.forwarded - sent_before
        assert spooled.log.health().lost == 0
    finally:
        spooled.close()


_FULL_DISK = r'''
import json, os, shutil, sys, time
from collections.abc import Iterator
from pathlib import Path
from modelyard.ledger import LogWriter
from tests.unit.test_ledger import record

log_dir, tmp = Path(sys.argv[1]), Path(sys.argv[2])
path = log_dir / "log.sqlite3"
writer = LogWriter(path)
writer.submit(record(0))
assert writer.flush(5)
filler = log_dir / "filler"
fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill the disk the log is on
try:
    while True:
        os.write(fd, b"\0" * 4096)
except OSError:
    os.close(fd)
for i in range(1, 21):
    r = record(i)
    r.response = "x" * 2000
    writer.submit(r)
deadline = time.monotonic() + 10
while writer.held < 20 and time.monotonic() < deadline:
    time.sleep(0.05)
held = writer.held
writer.close()  # a restart during the full disk
shutil.rmtree(tmp, ignore_errors=True)  # then a reboot: /tmp is a tmpfs (or the service's PrivateTmp= went at stop)
filler.unlink()  # space freed
again = LogWriter(path)
n = again._conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
again.close()
print(json.dumps({"held": held, "rows": n, "saved": writer.saved}))
'''


def test_rows_held_through_a_full_disk_outlive_a_reboot(tmp_path: Path) -> None:
    """ledger9/ledger28 left it: rows still refused at close because the log's disk is full went to
    ``$TMPDIR/modelyard-held-<uid>/`` — the full disk refuses both places beside the log — and a boot (a tmpfs /tmp) or
    a service's stop under systemd's ``PrivateTmp=yes`` ("All temporary data created by service will be removed after
    service is stopped", systemd.exec(5)) took them. Now this user's state directory (``$STATE_DIRECTORY``, else
    ``$XDG_STATE_HOME``: kept across reboots) is tried before the temp directory. Made with a real full disk: a
    4 MiB tmpfs mounted on the log's directory in a mount namespace of the test's own (``unshare -m``)."""
    log_dir, tmp, state = tmp_path / "data", tmp_path / "tmp", tmp_path / "state"
    for d in (log_dir, tmp, state):
        d.mkdir()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TMPDIR": str(tmp), "XDG_STATE_HOME": str(state),
           "PYTHONPATH": f"{root / 'src'}:{root}"}
    env.pop("STATE_DIRECTORY", None)
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=4m,mode=0700 tmpfs "$1" && shift && exec "$@"', "sh", str(log_dir),
         sys.executable, "-c", _FULL_DISK, str(log_dir), str(tmp)],
        capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["held"] == 20 and found["saved"] == 20, (found, done.stderr[-2000:])
    # before: 1 — the 20 were in the temp directory the reboot emptied
    assert found["rows"] == 21, (found, done.stderr[-2000:])


def test_a_row_too_big_for_a_dbas_index_is_refused_alone_not_blocking_every_later_row(
        forwarding: tuple[Path, Forwarder], pg_url: str) -> None:
    """A DBA indexes a text column of the shared log to search it (``CREATE INDEX ON requests (prompt)``); a prompt
    of 9,000 characters that do not compress is more than an index entry holds — 'index row requires 9016 bytes,
    maximum size is 8191' (a btree's 'index row size 3056 exceeds btree version 4 maximum 2704' likewise; SQLSTATE
    54000, concourse/concourse#1618, icoretech/airbroke#6). psycopg files it under OperationalError, which the log took
    for a database that refuses everything: the batch waited, and every row written after it with it, for good
    (reproduced on 5432: 1 of 4 rows there after 8 s, the backlog 3). Now it is the row's own refusal: that row is
    counted ``refused`` and kept in the local file, the others go, and the reason says what to index instead."""
    path, forwarder = forwarding
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE INDEX requests_prompt ON requests (prompt)")
    big = record(1)
    rng = random.Random(31)
    big.prompt = "".join(rng.choice(string.ascii_letters) for _ in range(9000))  # does not compress
    write(path, [big, record(2), record(3)])
    write(path, [record(4)])  # and a later batch
    forwarder.flush(15)
    # before: ["req000000"] for good
    assert pg_ids(pg_url) == ["req000000", "req000002", "req000003", "req000004"], forwarder.health()
    health = forwarder.health()
    assert health.refused == 1 and health.backlog == 0, health
    assert "index md5" in (health.last_error or ""), health.last_error
    with closing(connect(path)) as conn:  # kept where it was written
        assert conn.execute("SELECT COUNT(*) FROM requests WHERE id = 'req000001'").fetchone()[0] == 1


def test_a_log_partitioned_by_time_by_its_dba_still_takes_rows(
        forwarding: tuple[Path, Forwarder], pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """"How big the log gets": a DBA partitions the shared log's ``requests`` by ``ts`` (declarative partitioning, or
    pg_partman, which manages it) — and PostgreSQL requires every unique key of a partitioned table to hold the
    partition column (https://www.postgresql.org/docs/current/ddl-partitioning.html, 5.12.2.3 Limitations), so the
    primary key becomes ``(id, ts)``. Every upsert naming ``ON CONFLICT (id)`` was then refused ('there is no unique or
    exclusion constraint matching the ON CONFLICT specification', 42P10): nothing reached the log again, the reason
    bare (reproduced on 5432: 1 of 3 rows, for good). Now the keys the tables have are found and used; a rating sent
    again still lands on its one row."""
    path, forwarder = forwarding
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("ALTER TABLE requests RENAME TO requests_old")
        admin.execute("CREATE TABLE requests (LIKE requests_old INCLUDING DEFAULTS) PARTITION BY RANGE (ts)")
        admin.execute("ALTER TABLE requests ADD PRIMARY KEY (id, ts)")
        admin.execute("CREATE TABLE requests_rest PARTITION OF requests DEFAULT")
        admin.execute("INSERT INTO requests SELECT * FROM requests_old")
        admin.execute("DROP TABLE requests_old")
    with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
        write(path, [record(1), record(2)])
        assert forwarder.flush(15), forwarder.health()  # before: False, the rows waiting for good
    assert pg_ids(pg_url) == ["req000000", "req000001", "req000002"]
    assert "(id, ts)" in caplog.text
    with closing(connect(path)) as conn:  # Telegram's 👍 on a request already sent: it travels again
        conn.execute("UPDATE requests SET acceptable = 1, rated_at = 1 WHERE id = 'req000001'")
    assert forwarder.flush(15), forwarder.health()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, acceptable FROM requests ORDER BY id").fetchall()
    assert rows == [("req000000", None), ("req000001", 1), ("req000002", None)]
    assert forwarder.health().failures == 0


def test_a_held_file_cut_short_has_its_whole_rows_written(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Rows kept at close (``ledger/held.py``) are fsynced once all are written: a writer killed while it wrote them
    (a second ``systemctl stop`` escalating to SIGKILL, the OOM killer) or the power lost leaves a file that ends in
    the middle of a row. The next start read it as a whole — 'cannot be read … left there' — at every start, for
    good, and none of its rows reached the log. Now the whole rows are written and the cut one is said."""
    path = tmp_path / "log.db"
    connect(path).close()
    kept = held.save(path, [held_row(f"r{i}") for i in range(5)])
    assert kept is not None
    whole = kept.read_bytes()
    kept.write_bytes(whole[:len(whole) - 40])  # the fifth row cut 40 bytes short
    with caplog.at_level(logging.WARNING, logger="modelyard.ledger.held"), closing(connect(path)) as conn:
        assert held.load(conn, path) == 4  # before: 0, and the file left for the next start to fail on again
    with closing(sqlite3.connect(path)) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT id FROM requests")) == ["r0", "r1", "r2", "r3"]
    assert "ended in the middle of a row" in caplog.text and not kept.exists()


def held_row(rid: str) -> tuple[str, tuple]:
    values = dict.fromkeys(REQUEST_COLUMNS)
    values.update(id=rid, ts=1.0, agent="chat", outcome="ok", n_attempts=0, prompt="p")
    return _INSERT_REQUEST, tuple(values.values())


def test_a_backlog_of_giant_rows_is_sent_in_batches_bounded_by_their_size(
        forwarding: tuple[Path, Forwarder], pg_url: str) -> None:
    """``log.max_text_chars: none`` keeps every text whole — an IDE agent's prompts are whole files, megabytes each —
    and the forwarder read 500 requests a batch whatever their size: a backlog (PostgreSQL down for an hour) of such
    rows was read into memory 500 at a time, gigabytes in one step, the gateway's process killed by the OOM killer
    with its answers (and the spool then read again the same way by the next process). Now a batch also ends once its
    texts reach ``BATCH_CHARS`` (8 MiB): 40 requests of 1 MB each waiting here, the forwarder's peak memory
    (tracemalloc, its thread included) was 40 MiB — the whole backlog — and is 10.6 MiB."""
    path, forwarder = forwarding
    _refusing(pg_url)  # meanwhile: a backlog builds
    writer = LogWriter(path, max_text=None)
    for i in range(1, 41):
        r = record(i)
        r.prompt = f"{i:06d}" + "x" * 1_000_000
        writer.submit(r)
    writer.close()
    tracemalloc.start()
    try:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP TRIGGER no_rows ON requests")
        forwarder.wake()
        deadline = time.monotonic() + 60
        while len(pg_ids(pg_url)) < 41 and time.monotonic() < deadline:
            time.sleep(0.2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pg_ids(pg_url)) == 41
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB for a 40 MB backlog"  # before: 40 rows in one batch


def test_a_label_too_big_for_a_dbas_index_does_not_hold_back_the_others(
        forwarding: tuple[Path, Forwarder], pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The same index on ``routing_labels (text)``: a correction of a prompt that pasted a file (a label's text is the
    request's prompt) is more than an index entry holds, and the labels went in one transaction — that one and every
    label after it waited, for good (``routing learn`` never saw them). Now it is left out and said."""
    path, forwarder = forwarding
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE INDEX routing_labels_text ON routing_labels (text)")
    rng = random.Random(31)
    with closing(connect(path)) as conn:
        add_label(conn, "".join(rng.choice(string.ascii_letters) for _ in range(9000)), "coder", LabelSource.CLI)
        add_label(conn, "tidy the folder", "sorter", LabelSource.CLI)
    with caplog.at_level(logging.ERROR, logger="modelyard.ledger.forward"):
        assert forwarder.flush(15), forwarder.health()  # before: False, both waiting
    with psycopg.connect(pg_url) as conn:
        assert [r[0] for r in conn.execute("SELECT text FROM routing_labels")] == ["tidy the folder"]
    assert "refused by PostgreSQL" in caplog.text and "index md5" in caplog.text
