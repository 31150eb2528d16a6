"""The local spool and its forwarder to the real PostgreSQL: what arrives, once, repaired, after outages."""

from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from tests.fakes.server import poll
from tests.pg import OwnServer, free_port
from tests.unit.test_ledger import record

from modelyard.gateway.metrics import _ForwardState
from modelyard.ledger import LogWriter, connect, queries
from modelyard.ledger.forward import Forwarder
from modelyard.ledger.pg import PgConnection
from modelyard.ledger.writer import MAX_ERROR_CHARS
from modelyard.outcomes import RequestOutcome


def pg_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM requests ORDER BY id").fetchall()]


def scraped(forwarder: Forwarder) -> str:
    """What ``/metrics`` says of the forwarder: /healthz's counts of rows sent altered are counters there too."""
    registry = CollectorRegistry()
    registry.register(_ForwardState(forwarder))
    return generate_latest(registry).decode()


def write(path: Path, records: list) -> None:
    writer = LogWriter(path, local_models=["local"])
    for r in records:
        writer.submit(r)
    writer.close()


def test_rows_arrive_with_their_attempts_and_the_history_comes_along(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    write(path, [record(i) for i in range(50)])  # before log.url was set: the file's history
    forwarder = Forwarder(path, pg_url)
    try:
        assert forwarder.flush(30)
        assert pg_ids(pg_url) == [f"req{i:06d}" for i in range(50)]
        write(path, [record(i) for i in range(50, 60)])
        assert forwarder.flush(30)
        with closing(PgConnection(pg_url)) as conn, closing(connect(path)) as spool:
            assert conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 60
            assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 60
            row = conn.execute("SELECT * FROM requests WHERE id = 'req000007'").fetchone()
            local = spool.execute("SELECT * FROM requests WHERE id = 'req000007'").fetchone()
        assert dict(row) == dict(local)  # every column, byte for byte
        health = forwarder.health()
        assert health.forwarded == 60 and health.active and health.connected and not health.degraded
        assert poll(lambda: forwarder.health().backlog == 0)
    finally:
        forwarder.close()


def test_ratings_travel_and_a_missing_one_never_erases_one(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(1), record(2)])
        assert forwarder.flush(30)
        with closing(connect(path)) as spool:
            assert queries.rate(spool, "req000001", False) == "req000001"  # Telegram's 👎, in the local file
        with closing(PgConnection(pg_url)) as pg:
            assert queries.rate(pg, "req000002", True) == "req000002"  # `modelyard rate`, on PostgreSQL
            write(path, [record(2)])  # the same request written again locally, without a rating
            assert forwarder.flush(30)
            rated = dict(pg.execute("SELECT id, acceptable FROM requests ORDER BY id").fetchall())
        assert rated == {"req000001": 0, "req000002": 1}
    finally:
        forwarder.close()


def test_one_forwarder_per_spool_and_the_next_takes_over(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "log.sqlite3"
    first, second = Forwarder(path, pg_url), Forwarder(path, pg_url)
    try:
        write(path, [record(i) for i in range(20)])
        assert first.flush(30) and second.flush(30)
        active = [f for f in (first, second) if f.health().active]
        assert len(active) == 1
        assert first.health().forwarded + second.health().forwarded == 20
        active[0].close()
        standby = second if active[0] is first else first
        write(path, [record(i) for i in range(20, 30)])
        assert standby.flush(30)
        assert standby.health().active and len(pg_ids(pg_url)) == 30
    finally:
        first.close()
        second.close()


def test_a_nul_character_is_replaced_before_sending_without_a_failure(tmp_path: Path, pg_url: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL's text refuses NUL ('invalid byte sequence for encoding "UTF8": 0x00', SQLSTATE 22021: users of
    log sinks hit it, e.g. b00ted/serilog-sinks-postgresql#24, apache/devlake#3564, dssg/ohio#26); SQLite stores it.
    The row is stored with U+FFFD and the log says so — before, the batch failed first and /healthz said degraded
    for 5 minutes over a row that was then stored."""
    path = tmp_path / "log.sqlite3"
    bad = record(1)
    bad.prompt = "before\x00after"  # SQLite stores a NUL; PostgreSQL text cannot
    bad.attempts[0].detail = "nul\x00here"
    forwarder = Forwarder(path, pg_url)
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            write(path, [record(0), bad, record(2)])
            assert forwarder.flush(30)
        assert pg_ids(pg_url) == ["req000000", "req000001", "req000002"]
        with closing(PgConnection(pg_url)) as pg:
            assert pg.execute("SELECT prompt FROM requests WHERE id = 'req000001'").fetchone()[0] == "before\ufffdafter"
            assert pg.execute("SELECT detail FROM attempts WHERE request_id = 'req000001'").fetchone()[0] == \
                "nul\ufffdhere"
        with closing(connect(path, readonly=True)) as spool:  # the local file keeps the original
            kept = spool.execute("SELECT prompt FROM requests WHERE id = 'req000001'").fetchone()[0]
        assert kept == "before\x00after"
        health = forwarder.health()
        assert health.refused == 0 and health.failures == 0 and health.last_error is None
        assert health.nul_replaced == 2 and not health.degraded  # the request row and its attempt's
        assert "modelyard_log_forward_nul_replaced_rows_total 2.0" in scraped(forwarder)
        assert "held a NUL character" in caplog.text and "U+FFFD" in caplog.text
    finally:
        forwarder.close()


def test_an_error_text_of_megabytes_is_kept_as_its_head_and_what_was_cut(tmp_path: Path, pg_url: str) -> None:
    """A server's error page or a relay's traceback reached the log whole wherever a provider path did not cut it,
    and an exhausted chain's error lists every attempt's words: a 5 MB text made a 5 MB row in the file, the spool's
    outbox and PostgreSQL (and in every ``log`` and ``report`` read of it). Now the log keeps the first
    MAX_ERROR_CHARS characters of a request's error and an attempt's detail, says how much it cut, and the reason
    stays whole in its own column."""
    page = "HTTP 502 bad_gateway: <html><body>" + "upstream connect error " * 230_000 + "</body></html>"  # ~5 MB
    path = tmp_path / "log.sqlite3"
    big = record(1, outcome=RequestOutcome.FALLBACK)
    big.error, big.attempts[0].detail = page, page
    forwarder = Forwarder(path, pg_url)
    try:
        write(path, [record(0), big, record(2)])
        assert forwarder.flush(30), forwarder.health()
        with closing(connect(path, readonly=True)) as spool:
            local = spool.execute("SELECT r.error, a.detail, a.reason FROM requests r JOIN attempts a "
                                  "ON a.request_id = r.id AND a.seq = 0 WHERE r.id = 'req000001'").fetchone()
        with closing(PgConnection(pg_url)) as pg:
            shared = tuple(pg.execute("SELECT r.error, a.detail, a.reason FROM requests r JOIN attempts a "
                                      "ON a.request_id = r.id AND a.seq = 0 WHERE r.id = 'req000001'").fetchone())
    finally:
        forwarder.close()
    for error, detail, reason in (tuple(local), shared):
        for text in (error, detail):
            assert len(text) < MAX_ERROR_CHARS + 200, len(text)  # was 5,060,048 characters
            assert text.startswith(page[:MAX_ERROR_CHARS])  # the head, which names the status
            assert f"[… cut: {len(page) - MAX_ERROR_CHARS:,} more characters not kept" in text
        assert reason == "missing_credentials"
    assert pg_ids(pg_url) == ["req000000", "req000001", "req000002"]


def test_database_down_answers_go_on_and_the_backlog_drains_when_it_is_back(tmp_path: Path) -> None:
    server = OwnServer()
    path = tmp_path / "log.sqlite3"
    try:
        forwarder = Forwarder(path, server.url)
        writer = LogWriter(path)
        writer.submit(record(0))
        assert writer.flush(10) and forwarder.flush(30)
        server.stop()
        t0 = time.monotonic()
        for i in range(1, 101):
            writer.submit(record(i))
        assert writer.flush(10)  # committed locally: nothing waits on the database
        local_s = time.monotonic() - t0
        assert not forwarder.flush(2)  # cannot reach it: says so rather than hanging
        health = poll(lambda: (h := forwarder.health()).backlog == 100 and not h.connected and h)
        assert health.degraded and health.failures >= 1 and health.oldest_backlog_s is not None
        server.start()
        assert forwarder.flush(60), forwarder.health()
        assert len(pg_ids(server.url)) == 101
        assert poll(lambda: forwarder.health().backlog == 0 and forwarder.health().connected)
        print(f"\n100 rows committed locally in {local_s * 1000:.0f} ms while PostgreSQL was down")
        writer.close()
        forwarder.close()
    finally:
        server.close()


def test_the_backlog_shows_as_soon_as_forwarding_fails(tmp_path: Path) -> None:
    """/healthz reads the backlog the forwarder counted last; it used to count once a second whatever
    happened, so a health check just after PostgreSQL went away could say "backlog 0" (seen in the
    suite under load). A failed step counts it at once."""
    path = tmp_path / "log.sqlite3"
    forwarder = Forwarder(path, f"postgresql://postgres@127.0.0.1:{free_port()}/test")  # nothing listens
    try:
        time.sleep(0.2)  # its first count (0) is behind it: the next periodic one is ~0.8 s away
        writer = LogWriter(path)
        for i in range(5):
            writer.submit(record(i))
        assert writer.flush(10)
        forwarder.wake()
        poll(lambda: forwarder.health().failures >= 1, timeout=5)
        health = poll(lambda: (h := forwarder.health()).backlog == 5 and h, timeout=0.4)
        assert health.degraded and not health.connected
        writer.close()
    finally:
        forwarder.close(timeout=0.5)


def test_the_password_is_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{free_port()}/x"
    path = tmp_path / "log.sqlite3"
    write(path, [record(1)])
    with caplog.at_level(logging.ERROR):
        forwarder = Forwarder(path, url)
        try:
            health = poll(lambda: (h := forwarder.health()).failures and h)
            assert "hunter2" not in repr(health) and "***" in health.target
            assert "127.0.0.1" in (health.last_error or "")
        finally:
            forwarder.close(timeout=0.5)
    assert "hunter2" not in caplog.text and "cannot forward" in caplog.text
