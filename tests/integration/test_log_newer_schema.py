"""The log's table changed under a running modelyard so that it refuses every row this modelyard writes: a newer
modelyard's migration (or a person) added a column that must be filled — the usual second step of a migration, which
backfills the old rows with a default and then drops it — or a ``CHECK`` constraint. Others met this very thing: a
legacy ``NOT NULL`` column that no insert fills blocked every later insert (tina4stack/tina4-python#93;
gorkem-bwl/atlas#3, 'null value in column "account_id" violates not-null constraint').

Before: each row was refused as if its own values were bad — counted as lost by the SQLite writer (not even kept in
the file it keeps rows in at close), refused and taken out of the forward queue on PostgreSQL — and every row after
it went the same way, even once the table was put right. Now the rows wait (held by the writer, in the spool for the
forwarder) with a sentence that says what changed and what to do, and arrive once the table takes them
(ledger/drift.py). The tables are changed for real: by the ``sqlite3`` shell, and on the real PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
from tests.fakes.server import poll
from tests.integration.test_log_file_replaced import ids
from tests.integration.test_pg_forward import pg_ids, write
from tests.unit.test_ledger import record

from modelyard.agents import decision_log
from modelyard.errors import Reason
from modelyard.ledger import LogWriter
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.writer import Row
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord


def rebuild_requests(path: Path, tenant: str, model: str = "TEXT") -> None:
    """What a migration does in SQLite to change a column's constraint (https://www.sqlite.org/lang_altertable.html,
    'Making Other Kinds Of Table Schema Changes'): a new table, the rows copied, the old one dropped — run by the
    ``sqlite3`` shell while modelyard writes the file. ``tenant``: the added column's declaration; ``model``: the
    model column's."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        create = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'requests'").fetchone()[0]
        indexes = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'requests' AND "
                                              "type = 'index' AND sql IS NOT NULL")]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(requests)") if r[1] != "tenant"]
    finally:
        conn.close()
    body = create.rstrip().removesuffix(")")
    if "tenant" in body:
        body = body[:body.index(", tenant")]
    body = re.sub(r"\bmodel TEXT( NOT NULL)?,", f"model {model},", body)
    listed = ", ".join(columns)
    script = "\n".join([
        ".bail on", ".timeout 10000", "BEGIN IMMEDIATE;",
        re.sub(r'^CREATE TABLE "?requests"?', "CREATE TABLE requests_new", body) + f", tenant {tenant});",
        f"INSERT INTO requests_new ({listed}, tenant) SELECT {listed}, 'team' FROM requests;",
        "DROP TABLE requests;", "ALTER TABLE requests_new RENAME TO requests;",
        *(f"{sql};" for sql in indexes), "COMMIT;", ""])
    done = subprocess.run(["sqlite3", str(path)], input=script, text=True, capture_output=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done.stderr


def test_a_column_a_newer_modelyard_requires_holds_the_rows_until_the_table_takes_them(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        for i in range(3):
            writer.submit(record(i))
        assert writer.flush()
        rebuild_requests(path, "TEXT NOT NULL")  # the newer migration's second step: no default any more
        for i in range(3, 8):
            writer.submit(record(i))
        assert writer.flush(5)  # nobody waits on held rows
        health = writer.health()
        assert health.lost == 0 and health.held == 5 and health.degraded, health
        said = health.last_error or ""
        assert "requests has a column tenant" in said and "newer modelyard" in said, said
        rebuild_requests(path, "TEXT DEFAULT 'team'")  # the newer modelyard runs here too / the column gets a default
        assert poll(lambda: writer.health().written == 8, timeout=15), writer.health()
        assert ids(path) == [f"req{i:06d}" for i in range(8)]
        assert writer.health().lost == 0 and writer.health().held == 0
    finally:
        writer.close()


def test_rows_still_refused_at_close_are_kept_for_the_next_writer(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    writer.submit(record(0))
    assert writer.flush()
    rebuild_requests(path, "TEXT NOT NULL")
    for i in range(1, 4):
        writer.submit(record(i))
    writer.close()
    health = writer.health()
    assert health.lost == 0 and health.saved == 3, health
    rebuild_requests(path, "TEXT DEFAULT 'team'")
    again = LogWriter(path, local_models=["local"])
    try:
        assert again.recovered == 6  # three requests and their attempts
        assert ids(path) == [f"req{i:06d}" for i in range(4)]
    finally:
        again.close()


def test_a_row_leaving_a_column_of_this_modelyard_empty_is_still_its_own(tmp_path: Path) -> None:
    """guard: the telling apart does not hold a row whose own value is missing (agent is NOT NULL since the first
    schema) — that row alone is counted, the ones after it are written."""
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        for i in range(5):
            writer.submit(record(i, agent=None) if i == 2 else record(i))  # type: ignore[arg-type]
        assert writer.flush()
        assert writer.health().lost == 1 and writer.health().held == 0
        assert len(ids(path)) == 4
    finally:
        writer.close()


@pytest.mark.parametrize("change, undo", [
    (("ALTER TABLE requests ADD COLUMN tenant text NOT NULL DEFAULT 'team'",
      "ALTER TABLE requests ALTER COLUMN tenant DROP DEFAULT"),
     ("ALTER TABLE requests ALTER COLUMN tenant SET DEFAULT 'team'",)),
    (("ALTER TABLE attempts ADD CONSTRAINT attempts_backend_named CHECK (backend IS NOT NULL) NOT VALID",),
     ("ALTER TABLE attempts DROP CONSTRAINT attempts_backend_named",)),
], ids=["not-null-column", "check-constraint"])
def test_postgresql_refusing_every_row_for_its_schema_keeps_them_in_the_spool(
        tmp_path: Path, pg_url: str, change: tuple[str, ...], undo: tuple[str, ...]) -> None:
    path = tmp_path / "log.sqlite3"
    write(path, [record(0)])
    forwarder = Forwarder(path, pg_url)
    try:
        assert forwarder.flush(30)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            for sql in change:
                admin.execute(sql)
        write(path, [record(i) for i in range(1, 6)])
        forwarder.wake()
        health = poll(lambda: (h := forwarder.health()).failures >= 1 and h.backlog == 5 and h, timeout=15)
        assert health, forwarder.health()
        assert health.refused == 0 and health.degraded
        assert "newer modelyard" in (health.last_error or ""), health.last_error
        with psycopg.connect(pg_url, autocommit=True) as admin:
            for sql in undo:
                admin.execute(sql)
        assert poll(lambda: len(pg_ids(pg_url)) == 6, timeout=40), forwarder.health()  # within one backoff
        assert pg_ids(pg_url) == [f"req{i:06d}" for i in range(6)] and forwarder.health().refused == 0
    finally:
        forwarder.close()


DECISION = decision_log._INSERT


def decision(i: int) -> Row:
    """The routing decision the orchestrator logs beside request ``i`` (agents/decision_log.py's row)."""
    return Row(DECISION, (f"req{i:06d}", 1_700_000_000.0 + i, "hello", "chat", "fast", 0.9, 1.0))


def shell(path: Path, *sql: str) -> None:
    """Statements run by the ``sqlite3`` shell on the live log."""
    script = "\n".join([".bail on", ".timeout 10000", *sql, ""])
    done = subprocess.run(["sqlite3", str(path)], input=script, text=True, capture_output=True, timeout=30)
    assert done.returncode == 0 and not done.stderr, done.stderr


def decisions(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM routing_decisions").fetchone()[0])
    finally:
        conn.close()


def test_a_dropped_side_table_holds_its_own_rows_and_the_requests_go_on(tmp_path: Path) -> None:
    """``DROP TABLE routing_decisions`` (its rows hold the prompts' text: dropped to be rid of them; or renamed by a
    newer modelyard). Every batch with a decision row in it failed as the store's refusal, so the requests batched
    with it — and, held first in every later batch, every request after — were held too: none written while the
    table was missing, and with it gone for good, every later request in the end dropped past max_queue. Now only
    the decisions wait; the requests are written."""
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        writer.submit(record(0))
        writer.submit_row(decision(0))
        assert writer.flush()
        create = sqlite3.connect(path).execute(
            "SELECT sql FROM sqlite_master WHERE name = 'routing_decisions'").fetchone()[0]
        shell(path, "DROP TABLE routing_decisions;")
        for i in range(1, 6):
            writer.submit_row(decision(i))
            writer.submit(record(i))
        assert writer.flush(5)
        assert poll(lambda: len(ids(path)) == 6, timeout=10), writer.health()  # the requests are written
        health = writer.health()
        assert health.lost == 0 and health.held == 5 and health.degraded, health
        assert "routing_decisions is gone" in (health.last_error or ""), health.last_error
        shell(path, f"{create};")  # restored
        assert poll(lambda: writer.health().held == 0, timeout=15), writer.health()
        assert decisions(path) == 5 and writer.health().lost == 0
    finally:
        writer.close()


def test_decisions_still_refused_at_close_never_hold_back_the_requests_kept_with_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows still held at close go to a file the next writer commits whole or leaves: requests held for a lock and
    decisions held for their missing table, kept in one file, left the requests unwritten for as long as the table
    was missing. Kept one file per table, the requests are written at the next start."""
    monkeypatch.setattr("modelyard.ledger.writer.BUSY_TIMEOUT", 0.1)
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    writer.submit(record(0))
    assert writer.flush()
    shell(path, "DROP TABLE routing_decisions;")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock: the requests are held too
    try:
        writer.submit_row(decision(1))
        writer.submit(record(1))
        assert poll(lambda: writer.held == 2, timeout=10), writer.health()
        writer.close()
        assert writer.health().saved == 2 and writer.health().lost == 0, writer.health()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(list(tmp_path.glob("log.sqlite3.held-*"))) == 2
    again = LogWriter(path, local_models=["local"])  # the table is still gone: the requests go in all the same
    try:
        assert again.recovered == 2  # the request and its attempt
        assert ids(path) == ["req000000", "req000001"]
        assert len(list(tmp_path.glob("log.sqlite3.held-*"))) == 1  # the decision's, for a later start
    finally:
        again.close()


def test_a_column_renamed_under_the_writer_holds_the_rows_and_says_why(tmp_path: Path) -> None:
    """A newer modelyard (or a person) renames a column this one writes: every row is refused ('table requests has
    no column named tokens_per_s'), held — said as SQLite's words alone, with nothing of why or what to do."""
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        writer.submit(record(0))
        assert writer.flush()
        shell(path, "ALTER TABLE requests RENAME COLUMN tokens_per_s TO tokens_per_second;")
        for i in range(1, 4):
            writer.submit(record(i))
        assert writer.flush(5)
        health = writer.health()
        assert health.lost == 0 and health.held == 3, health
        said = health.last_error or ""
        assert "requests has no column tokens_per_s" in said and "newer modelyard" in said, said
        shell(path, "ALTER TABLE requests RENAME COLUMN tokens_per_second TO tokens_per_s;")
        assert poll(lambda: writer.health().written == 4, timeout=15), writer.health()
        assert ids(path) == [f"req{i:06d}" for i in range(4)]
    finally:
        writer.close()


def test_postgresql_with_a_column_renamed_keeps_the_rows_in_the_spool_and_says_why(tmp_path: Path,
                                                                                    pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    write(path, [record(0)])
    forwarder = Forwarder(path, pg_url)
    try:
        assert forwarder.flush(30)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE attempts RENAME COLUMN backend TO server")
        write(path, [record(i) for i in range(1, 4)])
        forwarder.wake()
        health = poll(lambda: (h := forwarder.health()).failures >= 1 and h.backlog == 3 and h, timeout=15)
        assert health and health.refused == 0, forwarder.health()
        assert "newer modelyard" in (health.last_error or ""), health.last_error
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("ALTER TABLE attempts RENAME COLUMN server TO backend")
        assert poll(lambda: len(pg_ids(pg_url)) == 4, timeout=40), forwarder.health()
    finally:
        forwarder.close()


def test_a_column_a_newer_modelyard_made_required_holds_the_failed_requests_instead_of_losing_them(
        tmp_path: Path) -> None:
    """A newer schema makes ``model`` NOT NULL; a failed request (no model answered) leaves it empty. A column this
    modelyard writes, so its refusal read as the row's own: every failed request from then on was lost. This
    modelyard's own schema leaves the column nullable, so the table changed: held, said."""
    path = tmp_path / "log.sqlite3"
    writer = LogWriter(path, local_models=["local"])
    try:
        writer.submit(record(0))
        assert writer.flush()
        rebuild_requests(path, "TEXT DEFAULT 'team'", model="TEXT NOT NULL")
        for i in range(1, 4):
            writer.submit(RequestRecord(f"req{i:06d}", "chat", outcome=RequestOutcome.FAILED, error="all failed",
                                        attempts=[Attempt("local", "llamacpp", Outcome.FALLBACK,
                                                          Reason.SERVER_ERROR, "HTTP 500")]))
        assert writer.flush(5)
        health = writer.health()
        assert health.lost == 0 and health.held == 3, health
        assert "column model that must be filled" in (health.last_error or ""), health.last_error
        rebuild_requests(path, "TEXT DEFAULT 'team'")  # model nullable again
        assert poll(lambda: writer.health().written == 4, timeout=15), writer.health()
        assert ids(path) == [f"req{i:06d}" for i in range(4)]
    finally:
        writer.close()
