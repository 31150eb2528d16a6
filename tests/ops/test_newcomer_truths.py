"""What a newcomer sees after a few real requests, checked against what happened (helper-75's walk through `ask`,
`log`, `stats`, `plan` on a log made with the embedded model and fakes):

- a billed model without a price answered: the route line, `log` and `stats` showed "$0.0000" — free — where
  `report` says "price unknown" (ledger/cost.py: one rule for all of them);
- a model whose server gave no size: `plan` showed its KV cache as "0.0 GB" and its memory as "~0.0 GB" while
  its source said "unknown"; a small KV cache (the embedded model's 0.025 GB) read "0.0 GB"."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.fakes import AnthropicServer
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()
KEY = "sk-ant-newcomer-0123456789abcdef"


def test_an_unpriced_billed_answer_is_not_shown_as_free(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEWCOMER_ANTHROPIC_KEY", KEY)
    with AnthropicServer(api_key=KEY, reply_text="a short poem about rain") as claude:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "log": {"path": str(tmp_path / "log.sqlite3")},
            "models": {"haiku": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": claude.url,
                                 "api_key_env": "NEWCOMER_ANTHROPIC_KEY"}},
            "agents": {"writer": {"primary": "haiku"}}}))
        asked = runner.invoke(app, ["ask", "--agent", "writer", "a poem", "-c", str(config)], terminal_width=200)
    assert asked.exit_code == 0, asked.output
    route = asked.output.strip().splitlines()[-1]
    assert route.startswith("writer → haiku") and "price unknown" in route and "$0.0000" not in route, route
    log = runner.invoke(app, ["log", "-c", str(config)], terminal_width=200).output
    row = next(line for line in log.splitlines() if "writer" in line)
    assert "price unknown" in row and "$0.0000" not in row, log
    stats = runner.invoke(app, ["stats", "-c", str(config)], terminal_width=200).output
    rows = [line for line in stats.splitlines() if line.startswith(("writer", "haiku"))]
    assert len(rows) == 2 and all("price unknown" in r and "$0.0000" not in r for r in rows), stats


def test_plan_says_unknown_sizes_as_unknown(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"gone": {"provider": "ollama", "model": "q:7b", "endpoint": "http://127.0.0.1:9"}},
        "agents": {"a": {"primary": "gone"}}}))
    out = runner.invoke(app, ["plan", "-c", str(config), "--ram", "16"], terminal_width=200)
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "gone" in line)
    assert "0.0 GB" not in row and "?" in row, out.output
    total = next(line for line in out.output.splitlines() if "Total" in line)
    assert "+ ?" in total, out.output


def _walk_log(tmp_path: Path) -> Path:
    """A few hundred-request walk in small: writer's haiku broke off (billed) or was rate limited before qwen answered;
    engineer's coder could never be reached; a chat request cancelled mid-answer on qwen; 25 of each."""
    from modelyard.errors import Reason
    from modelyard.ledger import LogWriter
    from modelyard.outcomes import AttemptOutcome as O
    from modelyard.outcomes import RequestOutcome as R
    from modelyard.router.records import Attempt, RequestRecord

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "models": {"qwen": {"provider": "ollama", "endpoint": "http://127.0.0.1:9"},
                   "haiku": {"provider": "anthropic", "api_key_env": "NO_KEY", "price": {"input": 1, "output": 5}},
                   "coder": {"provider": "openai", "model": "c", "endpoint": "http://127.0.0.1:9/v1"}},
        "agents": {"writer": {"primary": "haiku", "fallbacks": ["qwen"]},
                   "engineer": {"primary": "coder", "fallbacks": ["qwen"]},
                   "chat": {"primary": "qwen"}}}))
    writer = LogWriter(tmp_path / "log.sqlite3", local_models=["qwen"])
    import time

    now = time.time() - 3600
    for i in range(25):
        qwen = Attempt("qwen", "ollama", O.OK, queue_wait_ms=1.0, ttft_ms=100, duration_ms=900, tokens_in=100,
                       tokens_out=50)
        broke = Attempt("haiku", "anthropic", O.FALLBACK, Reason.SERVER_ERROR, queue_wait_ms=1.0, duration_ms=300,
                        tokens_in=100, tokens_out=20, cost_usd=0.0002)
        writer.submit(RequestRecord(f"w{i:03d}", "writer", ts=now + i, outcome=R.FALLBACK, model="qwen",
                                    attempts=[broke, qwen], total_ms=1200, tokens_in=200, tokens_out=70,
                                    cost_usd=0.0002))
        unreachable = Attempt("coder", "openai", O.FALLBACK, Reason.CONNECT_ERROR, queue_wait_ms=1.0, duration_ms=3)
        writer.submit(RequestRecord(f"e{i:03d}", "engineer", ts=now + i, outcome=R.FALLBACK, model="qwen",
                                    attempts=[unreachable, Attempt("qwen", "ollama", O.OK, queue_wait_ms=1.0,
                                                                   duration_ms=900, tokens_in=100, tokens_out=50)],
                                    total_ms=910, tokens_in=100, tokens_out=50))
    cut = Attempt("qwen", "ollama", O.CANCELLED, Reason.CANCELLED, queue_wait_ms=1.0, duration_ms=400, tokens_in=100,
                  tokens_out=10)
    writer.submit(RequestRecord("c000", "chat", ts=now, outcome=R.CANCELLED, model="qwen", attempts=[cut],
                                total_ms=400, tokens_in=100, tokens_out=10))
    writer.close()
    return config


def test_stats_by_model_puts_spend_and_failures_on_the_model_they_happened_on(tmp_path: Path) -> None:
    """`stats` put a request's whole cost on its answering model: haiku's billed attempts that broke off read as spend
    of qwen, a local model (report said haiku); coder, which only failed, was not listed at all."""
    import json

    config = _walk_log(tmp_path)
    out = runner.invoke(app, ["stats", "--json", "-c", str(config)])
    assert out.exit_code == 0, out.output
    models = {g["key"]: g for g in json.loads(out.output)["models"]}
    assert models["qwen"]["spend_usd"] == 0 and abs(models["haiku"]["spend_usd"] - 25 * 0.0002) < 1e-9, models
    assert models["haiku"]["failed_attempts"] == 25 and models["coder"]["failed_attempts"] == 25
    assert models["coder"]["requests"] == 0
    agents = {g["key"]: g for g in json.loads(out.output)["agents"]}
    assert agents["engineer"]["failed_attempts"] == 25 and agents["chat"]["failed_attempts"] == 0
    table = runner.invoke(app, ["stats", "-c", str(config)], terminal_width=200).output
    coder = next(line for line in table.splitlines() if line.startswith("coder"))
    assert coder.split()[1:3] == ["0", "25"], table


def test_the_dashboard_and_report_count_the_same_local_answers(tmp_path: Path) -> None:
    """The dashboard said '51 requests, 51 served locally' where report said 50 of 50 answered locally: a request
    cancelled mid-answer on a local model counted as served."""
    import time

    from modelyard.config import load_config
    from modelyard.gateway.dashboard import _summary
    from modelyard.ledger.store import LogStore

    config = _walk_log(tmp_path)
    cfg = load_config(config)
    conn = LogStore.of(cfg).connect(readonly=True)
    try:
        cost = _summary(conn, cfg, time.time() - 86400)["cost"]
    finally:
        conn.close()
    assert (cost["requests"], cost["local_requests"]) == (51, 50)
    report = runner.invoke(app, ["report", "--days", "1", "-c", str(config)], terminal_width=200).output
    assert "50 of 50 answered locally" in report, report
    # every group with latencies has 25 or more; coder has none at all: not a reason to say samples are few
    assert "fewer than 20 samples" not in report, report


def test_log_for_a_model_that_only_failed_says_it_was_tried(tmp_path: Path) -> None:
    """report counted coder's 25 failed attempts; `log --model coder` then said 'no request matches these filters',
    as if it was never tried (--model is the answering model)."""
    config = _walk_log(tmp_path)
    out = runner.invoke(app, ["log", "--model", "coder", "-c", str(config)], terminal_width=200).output
    out = " ".join(out.split())
    assert "no request coder answered matches these filters" in out, out
    assert "it was tried 25 times in the log, 25 failed" in out and "modelyard log --attempts" in out, out
