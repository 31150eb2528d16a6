"""Figures of `modelyard report` and `modelyard stats` recomputed from the routing log with plain SQL (SQLite and
PostgreSQL): what a table says a model did is what the log holds of that model's own attempts."""

from __future__ import annotations

from pathlib import Path

from tests.ops.test_report import MARCH, config_file
from tests.pg import LogBackend

from modelyard.config import load_config
from modelyard.errors import Reason
from modelyard.ledger import queries
from modelyard.ledger.report import build_report, month_period
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord, new_request_id


def _broke_off_then_local(ts: float) -> RequestRecord:
    """Claude read a 1,200-token prompt, sent 40 tokens and broke off (billed: $0.0014); qwen answered it all again
    (1,000 in / 300 out, as its tokenizer counts). The request's tokens are both attempts', as the router sums them."""
    cloud = Attempt("haiku", "anthropic", Outcome.INTERRUPTED, Reason.CONNECTION_DROPPED, started_at=ts,
                    queue_wait_ms=0.0, tokens_in=1200, tokens_out=40, cost_usd=(1200 * 1 + 40 * 5) / 1e6)
    local = Attempt("qwen", "ollama", Outcome.OK, started_at=ts, queue_wait_ms=0.0, tokens_in=1000, tokens_out=300)
    return RequestRecord(new_request_id(), "writer", ts=ts, outcome=RequestOutcome.FALLBACK, model="qwen",
                         attempts=[cloud, local], queue_wait_ms=0.0,
                         total_ms=2000.0, tokens_in=2200, tokens_out=340, cost_usd=cloud.cost_usd)


def test_a_models_tokens_are_its_own_attempts_not_the_requests_it_answered(tmp_path: Path,
                                                                          log_backend: LogBackend) -> None:
    """The by-model table put a request's tokens (all its attempts') on its answering model: a local model that
    answered after a cloud attempt broke off was shown with the cloud's 1,200-token prompt, and the cloud model that
    read it (and billed it: its spend was right) with none — the sum over models counted them twice."""
    writer = log_backend.writer(local_models=["qwen", "gemma"])
    for i in range(3):
        writer.submit(_broke_off_then_local(MARCH + i))
    writer.close()
    config = load_config(config_file(tmp_path, log_backend))
    conn = log_backend.connect()
    expected = {m: (int(i), int(o)) for m, i, o in conn.execute(
        "SELECT a.model, SUM(a.tokens_in), SUM(a.tokens_out) FROM attempts a JOIN requests r ON r.id = a.request_id "
        "WHERE r.ts >= ? AND r.ts < ? GROUP BY a.model", (month_period("2025-03").start, month_period("2025-03").end))}
    assert expected == {"haiku": (3600, 120), "qwen": (3000, 900)}

    report = build_report(conn, config, month_period("2025-03"))
    assert {g.key: (g.tokens_in, g.tokens_out) for g in report.models} == expected
    assert (report.totals.tokens_in, report.totals.tokens_out) == (6600, 1020), "the totals: all attempts, as before"
    stats = queries.stats(conn, month_period("2025-03").start, by="model")
    assert {g.key: (g.tokens_in, g.tokens_out) for g in stats} == expected
    # an agent's tokens stay its requests' (all their attempts)
    assert {g.key: (g.tokens_in, g.tokens_out) for g in report.agents} == {"writer": (6600, 1020)}


def test_move_local_says_its_saving_is_a_bound(tmp_path: Path) -> None:
    """'would have saved $0.0140' was the agent's whole cloud spend, said as what the move saves: the requests the
    local model would then fail still go to the cloud (its fallback), so it is the most the move saves."""
    from tests.ops.test_report import write_log

    from modelyard.ledger import connect

    config = config_file(tmp_path)
    write_log(LogBackend("sqlite", tmp_path / "log.sqlite3"))
    report = build_report(connect(tmp_path / "log.sqlite3"), load_config(config), month_period("2025-03"))
    (move,) = [r for r in report.recommendations if r.kind == "move_local"]
    assert "would have saved at most $0.0140 of cloud spend this period" in move.message, move.message


def test_a_sum_that_rounds_to_a_dollar_reads_as_dollars() -> None:
    """250,000 answers at $0.000004 are $0.99999…: it read "$1.0000", four decimals on a dollar amount."""
    from modelyard.ledger.cost import money

    total = sum([0.000004] * 249_999)  # as the report sums them, float by float
    assert money(total) == "$1.00" and money(-total) == "-$1.00"
    assert money(0.9999) == "$0.9999" and money(0.1) == "$0.1000"


def test_a_models_latency_says_it_includes_the_attempts_before_it(tmp_path: Path) -> None:
    """qwen answered in its own second after Claude's broken-off attempt, and its p50 read the request's 2 s as
    qwen's: the report now says a model's p50/p95 is its requests' whole time when some came to it as fallback."""
    from typer.testing import CliRunner

    from modelyard.cli import app

    backend = LogBackend("sqlite", tmp_path / "log.sqlite3")
    writer = backend.writer(local_models=["qwen", "gemma"])
    for i in range(3):
        writer.submit(_broke_off_then_local(MARCH + i))
    writer.close()
    out = CliRunner().invoke(app, ["report", "--config", str(config_file(tmp_path)), "--month", "2025-03"],
                             terminal_width=200).output
    assert ("a model's p50/p95 is the whole time of the requests it answered: for the 3 it answered as fallback, "
            "the failed attempts on other models before it are included") in " ".join(out.split()), out
