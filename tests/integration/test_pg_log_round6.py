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
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from tests.fakes.server import poll
from tests.integration.test_pg_forward import pg_ids, scraped, write
from tests.pg import OwnServer, SpooledWriter
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


def rebuild_requests(path: Path) -> None:
    """What sqlite-utils ``transform`` and DB Browser's Modify Table do to change a table SQLite's ALTER TABLE cannot
    (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"): a new table, the rows
    copied, the old one dropped — its triggers with it ("it does not automatically upgrade indexes, views or
    triggers", simonw/sqlite-utils#611) — and the new one renamed. From another process, the ``sqlite3`` shell."""
    with closing(sqlite3.connect(path)) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'requests'").fetchone()[0]
    script = ("BEGIN; " + sql.replace("CREATE TABLE requests", "CREATE TABLE requests_new", 1) + "; INSERT INTO "
              "requests_new SELECT * FROM requests; DROP TABLE requests; ALTER TABLE requests_new RENAME TO requests; "
              "COMMIT;")
    done = subprocess.run(["sqlite3", str(path), script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("fault", ["requests rebuilt", "outbox dropped"])
def test_the_spools_own_triggers_and_outbox_are_put_back_and_nothing_is_left_behind(
        tmp_path: Path, pg_url: str, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    """The forwarder's outbox is filled by triggers on ``requests``: a tool that rebuilt the table took them along,
    and from then on no request entered the outbox — none reached PostgreSQL until a restart, while the backlog read
    0, ``flush`` said True and nothing was said. An outbox dropped by hand (it looks like a queue of leftovers) made
    the writer refuse every request, the trigger writing there: each was held, and past ``max_queue`` dropped."""
    path = tmp_path / "log.sqlite3"
    spooled = SpooledWriter(path, pg_url, ["local"])
    try:
        for i in range(3):
            spooled.submit(record(i))
        assert spooled.flush(15)
        if fault == "requests rebuilt":
            rebuild_requests(path)
        else:
            done = subprocess.run(["sqlite3", str(path), "DROP TABLE _outbox"], capture_output=True, text=True,
                                  timeout=30)
            assert done.returncode == 0, done.stderr
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            for i in range(3, 6):
                spooled.submit(record(i))
            # before: stayed at the first three (rebuilt); the three held by the writer for good (dropped)
            assert poll(lambda: pg_ids(pg_url) == [f"req{i:06d}" for i in range(6)], timeout=20), \
                (spooled.log.health(), spooled.forwarder.health())
            assert spooled.flush(15), spooled.forwarder.health()
        assert "were gone" in caplog.text and "queued again" in caplog.text
        health = spooled.log.health()
        assert health.lost == 0 and health.held == 0 and health.dropped == 0, health
    finally:
        spooled.close()


def test_a_commit_held_for_synchronous_replication_is_said_as_that(tmp_path: Path) -> None:
    """``synchronous_standby_names`` naming a standby that is down or gone (a failed replica, a setting left after
    one was retired) holds every commit until it confirms — for ever (https://www.postgresql.org/docs/current/
    warm-standby.html#SYNCHRONOUS-REPLICATION: "If the standby crashes, the primary … waits"). The forwarder's watchdog
    cut the step and said 'no answer … for 21s', then 'the connection is closed': a network fault, with nothing about
    the setting. Now it asks the server what the session waits on and says it; the rows go once the setting is
    emptied. A throwaway server of the test's own (the setting is the cluster's)."""
    server = OwnServer()
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, server.url, lock_timeout=2.0, stuck_after=3.0)
    try:
        write(path, [record(0)])
        assert forwarder.flush(15)
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'replica1'")
            admin.execute("SELECT pg_reload_conf()")
        write(path, [record(1)])
        health = poll(lambda: (h := forwarder.health()).failures >= 1 and h, timeout=30)
        assert health and health.degraded, forwarder.health()
        # before: "LogUnavailable: … the connection is closed"
        assert "waits for synchronous replication" in (health.last_error or ""), health
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            admin.execute("SELECT pg_reload_conf()")
        assert forwarder.flush(30), forwarder.health()
        assert pg_ids(server.url) == ["req000000", "req000001"]
    finally:
        forwarder.close()
        server.close()
