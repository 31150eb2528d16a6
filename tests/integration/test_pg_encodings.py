"""A PostgreSQL log in a database whose encoding is not UTF8 — made so by the cluster's locale when it was created,
not by anyone's choice at the time: ``initdb`` or Debian's ``pg_createcluster`` under the C locale (a container without
LANG) makes SQL_ASCII databases ("the template database were set to encoding SQL_ASCII from the installation",
psycopg/psycopg#276; ansible-collections/community.postgresql#584), an older European install LATIN1.

SQL_ASCII: libpq's client encoding followed the database's, so psycopg gave every text back as bytes — the forwarder
failed on its first step and forwarded nothing, ever ('TypeError: sequence item 0: expected str instance, bytes
found'). LATIN1: psycopg encoded the rows itself, and the first row holding a character LATIN1 lacks (Cyrillic, an
emoji) raised UnicodeEncodeError, which was no row's refusal: that row and every row after it waited in the spool for
good. Now connections speak UTF-8; SQL_ASCII stores it as it is, and for LATIN1 (PostgreSQL would say 'character with
byte sequence … in encoding "UTF8" has no equivalent in encoding "LATIN1"', hasura/graphql-engine#7607) the characters
it lacks are replaced by '?' before the row is sent — kept, counted and said, the local file keeping the original."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.fakes.server import poll
from tests.integration.test_pg_forward import scraped, write
from tests.pg import scratch_database
from tests.unit.test_ledger import record

from modelyard.ledger import pg_watch
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.pg import PgConnection

TEXT = "Привет, мир 😀"
LATIN = "café, naïve"


@pytest.fixture(params=["SQL_ASCII", "LATIN1"])
def encoded_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    with scratch_database(request.param) as url:
        yield request.param, url


def stored(url: str) -> list[tuple]:
    """What ``log`` reads there (modelyard's own connection)."""
    conn = PgConnection(url, migrate_schema=False)
    try:
        return [tuple(r) for r in conn.execute("SELECT id, prompt, response FROM requests ORDER BY id").fetchall()]
    finally:
        conn.close()


def test_rows_reach_a_database_of_another_encoding_and_none_blocks_the_rest(
        tmp_path: Path, encoded_url: tuple[str, str], caplog: pytest.LogCaptureFixture) -> None:
    encoding, url = encoded_url
    path = tmp_path / "log.sqlite3"
    rows = [record(i) for i in range(6)]
    rows[1].prompt = TEXT
    rows[2].response = LATIN
    write(path, rows)
    forwarder = Forwarder(path, url)
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            assert forwarder.flush(30), forwarder.health()
            write(path, [record(i) for i in range(6, 9)])  # the rows after flow on
            assert poll(lambda: len(stored(url)) == 9, timeout=15), forwarder.health()
        health = forwarder.health()
        assert health.refused == 0 and health.failures == 0, health
        metrics = scraped(forwarder)
    finally:
        forwarder.close()
    got = {i: (prompt, response) for i, prompt, response in stored(url)}
    assert got["req000002"] == ("prompt 2", LATIN)  # what LATIN1 holds is kept as it is
    if encoding == "SQL_ASCII":
        assert got["req000001"] == (TEXT, "answer") and health.narrowed == 0
        assert "modelyard_log_forward_narrowed_rows_total 0.0" in metrics
    else:
        assert got["req000001"] == ("??????, ??? ?", "answer") and health.narrowed == 1
        assert "modelyard_log_forward_narrowed_rows_total 1.0" in metrics
        assert "encoding (LATIN1) cannot store" in caplog.text and "ENCODING 'UTF8'" in caplog.text


def test_a_spool_text_another_program_wrote_in_latin1_is_forwarded_with_the_rest(
        tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite keeps any bytes as TEXT (https://www.sqlite.org/invalidutf.html) and other programs write Latin-1 there
    (blacklanternsecurity/bbot#1071, thawn/ttmp32gme#122): here the ``sqlite3`` shell, as a script fixing a prompt
    by hand would. Python's sqlite3 refused the whole read ('Could not decode to UTF-8 column'), so that row and
    every row after it were never forwarded."""
    path = tmp_path / "log.sqlite3"
    write(path, [record(0)])
    done = subprocess.run(["sqlite3", str(path), "UPDATE requests SET prompt = CAST(x'436166e9' AS TEXT)"],
                          capture_output=True, text=True, timeout=30)  # 'Café' in Latin-1
    assert done.returncode == 0, done.stderr
    write(path, [record(i) for i in range(1, 4)])
    forwarder = Forwarder(path, pg_url)
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            assert forwarder.flush(30), forwarder.health()
        health = forwarder.health()
        assert health.failures == 0 and health.refused == 0 and health.undecodable == 1, health
        assert "not UTF-8" in caplog.text
        metrics = scraped(forwarder)
        assert "modelyard_log_forward_undecodable_texts_total 1.0" in metrics
        assert "modelyard_log_forward_nul_replaced_rows_total 0.0" in metrics
    finally:
        forwarder.close()
    got = {i: prompt for i, prompt, _ in stored(pg_url)}
    assert got == {"req000000": "Caf\ufffd", **{f"req{i:06d}": f"prompt {i}" for i in range(1, 4)}}


def test_a_slow_read_in_a_sql_ascii_database_is_seen_running(encoded_url: tuple[str, str]) -> None:
    """The watch that tells a slow read from a lost one asks the server over a connection of its own: in a SQL_ASCII
    database it read the session's state as bytes (b'active' is not 'active'), took a running query for one that
    had finished, and cut a slow ``report`` as 'the answer is lost on the way' at its first bound. (LATIN1: guard.)"""
    _, url = encoded_url
    mark = pg_watch.tag("feedc0de", 1)
    with psycopg.connect(url, autocommit=True) as slow:
        pid = slow.info.backend_pid
        running = threading.Thread(target=lambda: slow.execute(f"{mark}SELECT pg_sleep(3)"))
        running.start()
        try:
            found = poll(lambda: (f := pg_watch.probe(url, pid, mark)).verdict is not pg_watch.Verdict.GONE and f,
                         timeout=5)
            assert found and found.verdict is pg_watch.Verdict.WORKING, found
        finally:
            running.join(10)
