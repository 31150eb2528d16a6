"""The PostgreSQL log under what its DBAs add to its tables (ledger28's hunt).

A ``BEFORE INSERT`` trigger that returns NULL makes PostgreSQL skip the row without an error: the INSERT succeeds and
says it inserted fewer rows (https://www.postgresql.org/docs/current/trigger-definition.html: "it can return NULL to
skip the operation for the current row"). DBAs add such triggers to filter a table (one agent's rows kept out of a
shared log) and the pre-10 partitioning recipe — still the way to partition by a trigger
(https://www.postgresql.org/docs/current/ddl-partitioning.html, "Partitioning Using Inheritance") — returns NULL
after moving the row to a child table, and a variant whose ``ELSE`` drops what no partition takes loses it. The
forwarder counted every such row forwarded and deleted it from the spool's outbox: the shared log lacked it and
nothing said so. Now the rows the database did not say it kept are looked for; those that cannot be read back are
counted ``discarded`` (``/healthz``, ``/metrics``), said, and the forwarder degraded."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from tests.integration.test_pg_forward import pg_ids, scraped, write
from tests.unit.test_ledger import record

from modelyard.ledger.forward import Forwarder


def test_rows_a_trigger_discards_are_counted_and_said_not_counted_forwarded(
        tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(0)])
        assert forwarder.flush(15)
        with psycopg.connect(pg_url, autocommit=True) as admin:  # a DBA keeps one agent's rows out of the shared log
            admin.execute("CREATE FUNCTION keep_out() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN IF NEW.agent = 'noisy' THEN RETURN NULL; END IF; RETURN NEW; END $$")
            admin.execute("CREATE TRIGGER keep_out BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION keep_out()")
        with caplog.at_level(logging.ERROR, logger="modelyard.ledger.forward"):
            write(path, [record(1), record(2, agent="noisy"), record(3, agent="noisy"), record(4)])
            assert forwarder.flush(15), forwarder.health()
        health = forwarder.health()
        assert pg_ids(pg_url) == ["req000000", "req000001", "req000004"]
        # before: forwarded 5, discarded unknown, not degraded, nothing said
        assert health.forwarded == 3 and health.discarded == 2 and health.degraded, health
        assert "did not keep them" in (health.last_error or "") and "BEFORE INSERT trigger" in caplog.text
        assert "modelyard_log_forward_discarded_rows_total 2.0" in scraped(forwarder)
    finally:
        forwarder.close()


def test_rows_a_partitioning_trigger_moves_to_a_child_table_are_kept(tmp_path: Path, pg_url: str) -> None:
    """guard (its rows arrived before too; only the ``discarded`` count is new): the inheritance partitioning
    recipe's trigger (PostgreSQL's documentation, 5.12.3) also returns NULL — the INSERT says 0 rows — but the rows
    are in a child table, read through the parent: nothing is discarded, nothing is said."""
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(0)])
        assert forwarder.flush(15)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("CREATE TABLE requests_recent () INHERITS (requests)")
            admin.execute("CREATE FUNCTION requests_insert() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN INSERT INTO requests_recent VALUES (NEW.*); RETURN NULL; END $$")
            admin.execute("CREATE TRIGGER requests_insert BEFORE INSERT ON requests FOR EACH ROW "
                          "EXECUTE FUNCTION requests_insert()")
        write(path, [record(i) for i in range(1, 4)])
        assert forwarder.flush(15), forwarder.health()
        health = forwarder.health()
        assert pg_ids(pg_url) == [f"req{i:06d}" for i in range(4)]
        assert health.discarded == 0 and health.forwarded == 4 and not health.degraded, health
    finally:
        forwarder.close()
