"""One cost policy (ledger/cost.py) for `report`, the gateway dashboard and `replay`: each answered request asked
once for all-cloud, a billed model without a price is 'price unknown' ($0.00+?, savings 'at most'), never free.

The dashboard priced every attempt's tokens for all-cloud and said nothing of a missing price; replay's all-cloud
priced every simulated attempt too. These tests hold the three to the report's figures on the same log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from tests.ops.test_report import served
from tests.pg import LogBackend

from modelyard.config import load_config
from modelyard.errors import Reason
from modelyard.gateway.dashboard import _summary, month_start
from modelyard.ledger.report import Period, build_report, month_period
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.replay.collect import Collector
from modelyard.replay.run import _side
from modelyard.router.records import Attempt, RequestRecord


def config_file(tmp_path: Path, log: dict[str, str]) -> Path:
    """haiku is billed (Anthropic) and has no price: its attempts are logged at $0."""
    data = {"log": log, "report": {"counterfactual": {"sonnet": {"input": 3, "output": 15}}},
            "models": {"qwen": {"provider": "ollama"},
                       "haiku": {"provider": "anthropic", "api_key_env": "NO_SUCH_KEY"}},
            "agents": {"writer": {"primary": "haiku", "fallbacks": ["qwen"]}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def records(ts: float) -> list[RequestRecord]:
    """One request whose cloud attempt broke off after 1,000 tokens in and 100 out, then answered locally
    (1,000/500; the request logs 2,000/600), and one answered by the unpriced cloud model (2,000/300)."""
    broke = Attempt("haiku", "anthropic", Outcome.INTERRUPTED, Reason.SERVER_ERROR, queue_wait_ms=0.0)
    broke.tokens_in, broke.tokens_out = 1000, 100
    first = served("writer", ts, [broke, Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 1000, 500, 4000)
    first.tokens_in, first.tokens_out = 2000, 600  # the router's sum over attempts
    second = served("writer", ts + 1, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)], 2000, 300, 900)
    for r in (first, second):
        for a in r.attempts:
            a.cost_usd = 0.0  # as the router prices a model without `price:`
        r.cost_usd = 0.0
    return [first, second]


#: all-cloud on sonnet as the report counts it: the answering attempts' tokens, 3,000 in and 800 out
ONCE = (3000 * 3 + 800 * 15) / 1e6


def test_dashboard_counts_cost_as_the_report_does(tmp_path: Path, log_backend: LogBackend) -> None:
    now = time.time()
    writer = log_backend.writer(local_models=["qwen"])
    for r in records(now - 5):
        writer.submit(r)
    writer.close()
    config = load_config(config_file(tmp_path, log_backend.log_config()))
    report = build_report(log_backend.connect(), config, month_period())
    assert report.counterfactuals[0].cost_usd == pytest.approx(ONCE)

    cost = _summary(log_backend.connect(), config, month_start())["cost"]
    [sonnet] = cost["counterfactual"]
    # was (4000 * 3 + 900 * 15) / 1e6: every attempt's tokens, the broken one priced as if all-cloud made it too
    assert sonnet["usd"] == pytest.approx(ONCE)
    assert sonnet["savings_pct"] == pytest.approx(report.counterfactuals[0].savings_pct)
    assert cost["text"]["spend"] == "$0.00+?"  # was '$0.00': the unpriced cloud model shown as free
    assert sonnet["savings_text"].startswith("at most ")
    warnings = " ".join(cost["text"]["warnings"])
    assert "price unknown: haiku (2 attempts, 3,000/400 tokens)" in warnings, warnings
    assert "local cost not set" in warnings, warnings
    assert cost["unpriced"] == report.to_dict()["cost"]["unpriced"]


def test_replay_counts_cost_as_the_report_does(tmp_path: Path) -> None:
    """The replay's simulated records go through the same tally: all-cloud once per answered request."""
    config = load_config(config_file(tmp_path, {"path": str(tmp_path / "log.sqlite3")}))
    period = Period(0.0, 30 * 86400.0, "30 days", 1.0)
    collector = Collector(frozenset({"qwen"}))
    for r in records(100.0):
        collector(r)
    side = _side(collector, {}, config, period)
    # was (4000 * 3 + 900 * 15) / 1e6 per month
    assert side.all_cloud_per_month_usd["sonnet"] == pytest.approx(ONCE)
    assert side.costs is not None and side.costs.spend_text(side.per_month) == "$0.00+?"
    assert side.costs.unpriced == {"haiku": [2, 3000, 400]}

