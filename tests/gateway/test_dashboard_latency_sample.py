"""The dashboard's latency timeline draws the month's latest answers (dashboard.LATENCY_POINTS), not all of them:
its title said "over time, max N ms" under "month to date" — the max of the latest 300 read as the month's."""

from __future__ import annotations

import json
import time
from pathlib import Path

from modelyard.config import load_config
from modelyard.gateway.dashboard import LATENCY_POINTS, _summary, month_start
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.router.records import Attempt
from tests.gateway.test_dashboard_layout import CHROMIUM, PAGE, log_rows, pytestmark, summary  # noqa: F401
from tests.ops.test_report import config_file, served
from tests.pg import LogBackend


def test_the_summary_says_how_many_answers_the_timeline_leaves_out(tmp_path: Path, log_backend: LogBackend) -> None:
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    now = max(time.time() - 60, month_start())
    for i in range(LATENCY_POINTS + 1):
        writer.submit(served("chat", now + i / 1000, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)],
                             10, 5, 100.0 + i))
    writer.close()
    s = _summary(log_backend.connect(), load_config(config_file(tmp_path, log_backend)), month_start())
    assert len(s["latency"]) == LATENCY_POINTS and s["latency_answered"] == LATENCY_POINTS + 1
    assert s["latency"][0]["total_ms"] == 101.0, "the latest answers, oldest first"


def test_the_timeline_title_says_its_points_are_the_latest() -> None:
    from playwright.sync_api import sync_playwright

    data = {**summary(), "latency_answered": 5000}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("http://dashboard.test/", lambda r: r.fulfill(body=PAGE.read_text(), content_type="text/html"))
            page.route("http://dashboard.test/api/summary*",
                       lambda r: r.fulfill(body=json.dumps(data), content_type="application/json"))
            page.route("http://dashboard.test/api/log*",
                       lambda r: r.fulfill(body=json.dumps(log_rows()), content_type="application/json"))
            page.goto("http://dashboard.test/")
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            points = len(data["latency"])
            assert f"latest {points} of 5000 answers, max" in page.text_content("#latency-timeline")
        finally:
            browser.close()


def test_failed_attempts_by_reason_count_the_months_requests(tmp_path: Path, log_backend: LogBackend) -> None:
    """A request begun at 23:59:58 UTC on the last day of February whose cloud attempt failed after midnight: its
    attempt was in March's 'failed attempts by reason' (by the attempt's own ts) while the request was February's —
    as `report` and `stats` count it — so March's chat showed a server_error beside requests that had none."""
    from datetime import UTC, datetime

    from modelyard.errors import Reason

    march = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    late = served("chat", march - 2, [Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.SERVER_ERROR,
                                              queue_wait_ms=0.0),
                                      Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 10, 5, 4000.0)
    late.attempts[0].started_at = march + 1  # its attempt began after midnight (a queue wait, a slow connect)
    writer.submit(late)
    writer.submit(served("chat", march + 60, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 10, 5, 100))
    writer.close()
    s = _summary(log_backend.connect(), load_config(config_file(tmp_path, log_backend)), march)
    (chat,) = s["agents"]
    assert (chat["requests"], chat["fallbacks"], chat["reasons"]) == (1, 0, {})
