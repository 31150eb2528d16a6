"""The routing log's fault hunt of ledger31 (2026-12-01): what ledger28's round left, then classes from outside in.

Each test runs against the real SQLite file and the real PostgreSQL (a schema per test on 5432) and fails on the code
before its fix; the source of each fault is in its docstring.
"""

from __future__ import annotations

import logging
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from tests.integration.test_pg_forward import scraped, write
from tests.unit.test_ledger import record

from modelyard.ledger.db import connect
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.labels import LabelSource, add_label
from modelyard.outcomes import RequestOutcome


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
        tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """ledger28 read back requests only: a trigger on ``attempts`` (one that keeps skipped attempts out of a shared
    table) left requests in the shared log without the models they tried — `report`'s per-model figures short — while
    the forwarder counted the batch whole and said nothing."""
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(0)])
        assert forwarder.flush(15)
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
    finally:
        forwarder.close()


def test_routing_labels_a_trigger_discards_are_counted_and_said(tmp_path: Path, pg_url: str) -> None:
    """The same for routing labels (corrections): a trigger on ``routing_labels`` that drops a source it does not
    want made ``routing learn`` learn without them while the forwarder said nothing; one label sent twice (already
    there: the INSERT also says 0) is not counted."""
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(0)])
        assert forwarder.flush(15)
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
    finally:
        forwarder.close()
