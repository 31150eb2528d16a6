"""What `modelyard report` tells a user to act on, checked against what the log really holds: a billed model
without a price is not free, all-cloud asks each request once, and a handful of requests is not a percentage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.ops.test_report import MARCH, served
from tests.pg import LogBackend
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.errors import Reason
from modelyard.ledger.queries import stats
from modelyard.ledger.report import build_report, month_period
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt


def config_file(tmp_path: Path, backend: LogBackend, haiku_price: dict[str, float] | None) -> Path:
    haiku: dict[str, object] = {"provider": "anthropic", "api_key_env": "NO_SUCH_KEY"}
    if haiku_price:
        haiku["price"] = haiku_price
    data = {"log": backend.log_config(), "report": {"counterfactual": {"sonnet": {"input": 3, "output": 15}}},
            "models": {"qwen": {"provider": "ollama"}, "haiku": haiku},
            "agents": {"writer": {"primary": "haiku", "fallbacks": ["qwen"]}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_billed_model_without_a_price_is_price_unknown_not_free(tmp_path: Path, log_backend: LogBackend) -> None:
    """Claude configured without `price:` logs its attempts at $0: the report said 'cloud API spend $0.00' and
    counted the whole all-cloud figure as savings."""
    writer = log_backend.writer(local_models=["qwen"])
    for i in range(3):
        record = served("writer", MARCH + i, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)],
                        1000, 500, 2000)
        record.attempts[0].cost_usd = record.cost_usd = 0.0  # as the router prices it: no price configured
        writer.submit(record)
    writer.close()
    config = config_file(tmp_path, log_backend, None)
    r = build_report(log_backend.connect(), load_config(config), month_period("2025-03"))
    assert r.unpriced == {"haiku": [3, 3000, 1500]} and r.unpriced_agents == {"writer"}
    assert r.to_dict()["cost"]["unpriced"] == {"haiku": {"attempts": 3, "tokens_in": 3000, "tokens_out": 1500}}

    out = " ".join(CliRunner().invoke(app, ["report", "--config", str(config), "--month", "2025-03"],
                                      terminal_width=200).output.split())
    assert "price unknown: haiku (3 attempts, 3,000/1,500 tokens)" in out, out
    assert "$0.00+?" in out and "at most" in out, out


def test_a_paid_api_through_the_openai_protocol_without_a_price_is_price_unknown(tmp_path: Path,
                                                                                 log_backend: LogBackend) -> None:
    """OpenRouter configured as ``provider: openai`` without a price: its answers counted as local and free, so the
    report's local share and savings were overstated (config/billed.py)."""
    data = {"log": log_backend.log_config(), "report": {"counterfactual": {"sonnet": {"input": 3, "output": 15}}},
            "models": {"qwen": {"provider": "ollama"},
                       "router": {"provider": "openai", "endpoint": "https://openrouter.ai/api/v1"}},
            "agents": {"writer": {"primary": "router", "fallbacks": ["qwen"]}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    writer = log_backend.writer(local_models=[n for n, m in config.models.items() if m.is_local])
    for i in range(2):
        writer.submit(served("writer", MARCH + i, [Attempt("router", "openai", Outcome.OK, queue_wait_ms=0.0)],
                             1000, 500, 2000))
    writer.close()
    r = build_report(log_backend.connect(), config, month_period("2025-03"))
    assert r.unpriced == {"router": [2, 2000, 1000]}, r.unpriced
    assert r.to_dict()["cost"]["unpriced"] == {"router": {"attempts": 2, "tokens_in": 2000, "tokens_out": 1000}}
    assert r.totals.local == 0 and r.totals.served == 2, "OpenRouter's answers are not local ones"
    out = " ".join(CliRunner().invoke(app, ["report", "--config", str(path), "--month", "2025-03"],
                                      terminal_width=200).output.split())
    assert "price unknown: router (2 attempts, 2,000/1,000 tokens)" in out and "$0.00+?" in out, out


def test_all_cloud_asks_each_answered_request_once(tmp_path: Path, log_backend: LogBackend) -> None:
    """A request whose cloud attempt broke off after 1,000 tokens in and 100 out, then answered locally
    (1,000 in, 500 out), logs 2,000/600 tokens; an all-cloud setup would have asked once: 1,000/500."""
    writer = log_backend.writer(local_models=["qwen"])
    broke = Attempt("haiku", "anthropic", Outcome.INTERRUPTED, Reason.SERVER_ERROR, queue_wait_ms=0.0)
    broke.tokens_in, broke.tokens_out, broke.cost_usd = 1000, 100, (1000 * 1 + 100 * 5) / 1e6
    record = served("writer", MARCH, [broke, Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)],
                    1000, 500, 4000)
    record.tokens_in, record.tokens_out = 2000, 600  # the router's sum over attempts
    writer.submit(record)
    writer.close()
    r = build_report(log_backend.connect(), load_config(config_file(tmp_path, log_backend, {"input": 1, "output": 5})),
                     month_period("2025-03"))
    assert r.totals.tokens_in == 2000  # what was processed, all attempts
    [sonnet] = r.counterfactuals
    assert sonnet.cost_usd == pytest.approx((1000 * 3 + 500 * 15) / 1e6)  # it was (2000 * 3 + 600 * 15) / 1e6
    assert (sonnet.requests, sonnet.tokens_in, sonnet.tokens_out) == (1, 1000, 500)
    assert r.spend_usd == pytest.approx(0.0015)  # the broken attempt was billed: it is spend, not all-cloud


def test_a_few_requests_show_counts_not_percentages(tmp_path: Path, log_backend: LogBackend) -> None:
    """3 requests, 1 fallback: the report said 'fallback 33%' and a p95 that is just the slowest of 3."""
    writer = log_backend.writer(local_models=["qwen"])
    for i, ms in enumerate((1000, 1200)):
        writer.submit(served("writer", MARCH + i, [Attempt("haiku", "anthropic", Outcome.OK, queue_wait_ms=0.0)],
                             100, 50, ms))
    writer.submit(served("writer", MARCH + 5, [
        Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.OVERLOADED, queue_wait_ms=0.0),
        Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 9000))
    writer.close()
    config = str(config_file(tmp_path, log_backend, {"input": 1, "output": 5}))
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--config", config, "--month", "2025-03"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.output
    flat = " ".join(out.split())
    assert "1 of 3 answered locally" in flat and "fallback on 1 of 3" in flat, flat
    # a local model answered and the config sets no electricity or hardware cost: not a local cost of $0.00
    assert "local cost not set" in flat and "at most" in flat, flat
    assert "%" not in flat.split("cost")[0], out  # no rate of 3 requests as a percentage above the cost table
    writer_row = next(line.split() for line in out.splitlines() if line.startswith("writer"))
    assert "1/3" in writer_row and "9000ms" not in writer_row and "9.0s" not in writer_row, writer_row
    assert "fewer than 20 samples" in flat
    stats = runner.invoke(app, ["stats", "--config", config], terminal_width=200)
    assert stats.exit_code == 0, stats.output
    row = next(line.split() for line in stats.output.splitlines() if line.startswith("writer"))
    assert "1/3" in row and "33%" not in row and "9000ms" not in row, stats.output
    # JSON keeps the exact figures for scripts
    d = json.loads(runner.invoke(app, ["report", "--config", config, "--month", "2025-03", "--json"]).stdout)
    assert d["totals"]["fallbacks"] == 1 and d["totals"]["requests"] == 3
    assert d["cost"]["local_cost_set"] is False


def test_models_says_a_billed_model_has_no_price(tmp_path: Path, log_backend: LogBackend) -> None:
    """`models` showed '0/0' for Claude without a price: as free as the local model beside it."""
    config = str(config_file(tmp_path, log_backend, None))
    runner = CliRunner()
    text = runner.invoke(app, ["models", "--no-reach", "--config", config], terminal_width=200)
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    assert "haiku: no price: a billed model, its requests are logged at $0" in flat, flat
    haiku = next(line for line in text.output.splitlines() if line.startswith("haiku"))
    assert "unknown" in haiku and "0/0" not in haiku, text.output
    found = {m["model"]: m for m in json.loads(runner.invoke(app, ["models", "--no-reach", "--json", "--config",
                                                                   config]).stdout)["models"]}
    assert found["haiku"]["price_known"] is False and found["qwen"]["price_known"] is True


def test_a_model_that_only_failed_shows_its_failures_not_a_quiet_row(tmp_path: Path, log_backend: LogBackend) -> None:
    """haiku timed out on every request and qwen answered them all: the by-model table listed haiku with 0 requests,
    '–' everywhere and $0.00, like a model nobody asked — its failures were in the log and nowhere on the page."""
    writer = log_backend.writer(local_models=["qwen"])
    for i in range(4):
        timed_out = Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.FIRST_TOKEN_TIMEOUT, queue_wait_ms=0.0)
        writer.submit(served("writer", MARCH + i, [timed_out, Attempt("qwen", "ollama", Outcome.OK,
                                                                      queue_wait_ms=0.0)], 100, 50, 900))
    writer.close()
    config = config_file(tmp_path, log_backend, {"input": 1, "output": 5})
    r = build_report(log_backend.connect(), load_config(config), month_period("2025-03"))
    models = {g["key"]: g for g in r.to_dict()["models"]}
    assert models["haiku"]["requests"] == 0 and models["haiku"]["failed_attempts"] == 4
    assert models["qwen"]["requests"] == 4 and models["qwen"]["failed_attempts"] == 0
    # the same count per agent and in all (it read 0 there while the models' said 4)
    assert r.to_dict()["totals"]["failed_attempts"] == 4 and r.to_dict()["agents"][0]["failed_attempts"] == 4
    out = CliRunner().invoke(app, ["report", "--config", str(config), "--month", "2025-03"], terminal_width=220).output
    lines = out.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("by model"))
    assert "its failed attempts" in lines[title], out
    header, row = lines[title + 1], next(line for line in lines[title:] if line.strip().startswith("haiku"))
    assert header.split()[:2] == ["requests", "failed"], header
    assert row.split()[1:3] == ["0", "4"], (header, row)  # requests it answered, its attempts that failed


def test_report_and_stats_count_a_request_cancelled_mid_answer_alike(tmp_path: Path, log_backend: LogBackend) -> None:
    """A caller gone while qwen was answering logs a cancelled request under qwen. `stats --by model` counted it
    (2 requests, 1 cancelled), `report`'s model table did not (1 request): the same log, two answers. Now both say
    2 requests, 1 served, 1 cancelled, none failed."""
    writer = log_backend.writer(local_models=["qwen"])
    writer.submit(served("writer", MARCH, [Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 900))
    cut = served("writer", MARCH + 1, [Attempt("qwen", "ollama", Outcome.CANCELLED, Reason.CANCELLED,
                                               queue_wait_ms=0.0)], 100, 20, 400)
    cut.outcome = RequestOutcome.CANCELLED
    writer.submit(cut)
    writer.close()
    r = build_report(log_backend.connect(), load_config(config_file(tmp_path, log_backend, None)),
                     month_period("2025-03"))
    [by_stats] = [g for g in stats(log_backend.connect(), by="model") if g.key == "qwen"]
    [by_report] = [g for g in r.models if g.key == "qwen"]
    counts = [(g.requests, g.served, g.cancelled, g.failed) for g in (by_stats, by_report)]
    assert counts == [(2, 1, 1, 0)] * 2, counts


def test_a_first_report_of_one_request_says_one_request(tmp_path: Path, log_backend: LogBackend) -> None:
    """After a newcomer's first `ask`, the report read '1 requests' and 'the 1 answered requests asked once'."""
    writer = log_backend.writer(local_models=["qwen"])
    writer.submit(served("writer", MARCH, [
        Attempt("haiku", "anthropic", Outcome.FALLBACK, Reason.OVERLOADED, queue_wait_ms=0.0),
        Attempt("qwen", "ollama", Outcome.OK, queue_wait_ms=0.0)], 100, 50, 900))
    writer.close()
    config = str(config_file(tmp_path, log_backend, {"input": 1, "output": 5}))
    result = CliRunner().invoke(app, ["report", "--config", config, "--month", "2025-03"], terminal_width=200)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "2025-03 UTC: 1 request," in flat and "of 1 request" in flat and "the 1 answered request asked once" in flat
    assert "1 requests" not in flat, flat
