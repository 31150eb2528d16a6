"""One rule for a time window in every command: UTC, and a month is a UTC calendar month (ledger.report).

``report --month`` read UTC calendar months (as the log stores time and the spend caps count); ``replay
--since/--until`` read this machine's local time and a month as 30 days. On a host in Auckland (UTC+13 in March)
``replay --since 2026-03-01`` began 13 hours before ``report --month 2026-03``, and February's per-month spend was
30/28 of the report's. The process runs with TZ=Pacific/Auckland so a local reading shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from modelyard.cli.replay_cmd import _period
from modelyard.ledger.report import calendar_months, days_period, month_period


@pytest.fixture
def auckland(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_replay_since_and_until_are_utc_as_report_months_are(auckland: None) -> None:
    assert time.localtime(utc(2026, 3, 1)).tm_hour == 13  # local midnight is not UTC's here
    window = _period(None, "2026-03-01", "2026-04-01")
    month = month_period("2026-03", now=datetime(2026, 5, 1, tzinfo=UTC))
    assert (window.start, window.end) == (month.start, month.end) == (utc(2026, 3, 1), utc(2026, 4, 1))
    assert window.months == month.months == 1.0  # was 31/30
    assert window.label.endswith("UTC")
    # a request at 2026-02-28 20:00 UTC is the 1st of March on this host's clock: in neither window
    assert not window.start <= utc(2026, 2, 28, 20) < window.end


def test_an_offset_given_is_kept(auckland: None) -> None:
    """guard: a time that carries its own offset means that instant."""
    assert _period(None, "2026-03-01T00:00+13:00", "2026-03-02").start == utc(2026, 2, 28, 11)


def test_a_per_month_figure_over_february_is_februarys(auckland: None) -> None:
    """Replay's per-month spend is the period's spend over its months: February whole is one month, as report
    --month 2026-02 says (it was 28/30 of one)."""
    window = _period(None, "2026-02-01", "2026-03-01")
    assert window.months == month_period("2026-02", now=datetime(2026, 4, 1, tzinfo=UTC)).months == 1.0


def test_calendar_months_share_each_month_it_covers() -> None:
    assert calendar_months(utc(2026, 1, 17), utc(2026, 2, 15)) == pytest.approx(15 / 31 + 14 / 28)
    assert days_period(7, now=utc(2026, 2, 8)).months == pytest.approx(7 / 28)


def test_the_bench_report_cites_is_dated_in_utc(auckland: None, tmp_path) -> None:
    """report's bench advice named the bench's time on this machine's clock, without a zone, beside a UTC month."""
    import yaml

    from modelyard.config import load_config
    from modelyard.ledger import LogWriter, bench_runs, connect
    from modelyard.ledger.report import build_report

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"qwen": {"provider": "ollama"}, "gemma": {"provider": "ollama"}},
        "agents": {"chat": {"primary": "qwen", "fallbacks": ["gemma"]}}}))
    LogWriter(tmp_path / "log.sqlite3").close()  # the log, migrated
    conn = connect(tmp_path / "log.sqlite3")
    for rep, (model, passed) in enumerate([("qwen", 0), ("qwen", 0), ("gemma", 1), ("gemma", 1)]):
        bench_runs.save_run(conn, {"run_id": "r1", "ts": utc(2026, 2, 28, 20, 30), "suite": "s", "agent": "chat",
                                   "task": "t", "model": model, "provider": "ollama", "is_local": 1, "rep": rep,
                                   "k": 1, "concurrency": 1, "passed": passed, "outcome": "ok"})
    conn.commit()
    report = build_report(conn, load_config(path), month_period("2026-03", now=datetime(2026, 4, 1, tzinfo=UTC)))
    [advice] = [r.message for r in report.recommendations if r.kind == "bench"]
    assert "in the bench of 2026-02-28 20:30 UTC" in advice, advice  # was 2026-03-01 09:30, Auckland's clock
