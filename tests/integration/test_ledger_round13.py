"""The routing log and the state shared across hosts, round 13: each case against the real PostgreSQL and Redis.

Cases (each names its source where it came from outside):

- a model name served by a cloud API and by a local relay (two configs sharing one log): "price unknown" is the
  cloud server's, not the name's;
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from tests.pg import LogBackend
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config import load_config
from modelyard.ledger.cost import log_costs
from modelyard.ledger.probes import backends_of
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

runner = CliRunner()
QWEN = "qwen"


def _write_config(path: Path, log_backend: LogBackend, endpoint: str) -> Path:
    path.write_text(yaml.safe_dump({
        "log": log_backend.log_config(),
        "models": {QWEN: {"provider": "openai", "model": "qwen/qwen3-32b", "endpoint": endpoint,
                          "api_key_env": "NO_KEY_HERE"}},
        "agents": {"chat": {"primary": QWEN}}}))
    return path


def test_price_unknown_is_the_cloud_servers_not_the_local_relays_of_the_same_name(
        tmp_path: Path, log_backend: LogBackend) -> None:
    """One name, two servers, one log: host A's ``qwen`` is OpenRouter's (billed per token, no ``price`` in its
    config), host B's ``qwen`` a llama-server relay on its own box (free). LiteLLM users met the same split as spend
    put on the wrong deployment of one model name (its spend logs key on ``model`` and ``model_group``;
    BerriAI/litellm#3373 asks for per-deployment figures). "price unknown" went by the name in the reading config:
    under B's config A's 2 unpriced cloud answers were counted free (spend shown as an exact $0.00), and `stats` and
    `report` said "price unknown" on both servers' rows of the name. Per server (``attempts.backend``) now."""
    cloud = _write_config(tmp_path / "a.yaml", log_backend, "https://openrouter.ai/api/v1")
    relay = _write_config(tmp_path / "b.yaml", log_backend, "http://127.0.0.1:8080/v1")
    configs = {"a": load_config(cloud), "b": load_config(relay)}
    assert configs["a"].models[QWEN].billed and not configs["b"].models[QWEN].billed
    now = time.time() - 60
    for host, n in (("a", 2), ("b", 3)):
        writer = log_backend.writer(local_models=[] if host == "a" else [QWEN], backends=backends_of(configs[host]))
        for i in range(n):
            writer.submit(RequestRecord(
                f"{host}{i}", "chat", ts=now + i, outcome=RequestOutcome.OK, model=QWEN, total_ms=300,
                tokens_in=1000, tokens_out=500,
                attempts=[Attempt(QWEN, "openai", Outcome.OK, started_at=now + i, tokens_in=1000, tokens_out=500)]))
        writer.close()
    conn = log_backend.connect()
    for host in ("a", "b"):
        costs = log_costs(conn, configs[host], 0.0, time.time() + 60, 0.0)
        assert costs.unpriced == {QWEN: [2, 2000, 1000]}, (host, costs.unpriced)  # the cloud's two, either config
        assert costs.spend_text() == "$0.00+?"
    for path in (cloud, relay):  # `stats`: a row per server, 'price unknown' on the cloud's only
        out = runner.invoke(app, ["stats", "--config", str(path)], env={"COLUMNS": "200"})
        assert out.exit_code == 0, out.output
        lines = {line.split()[2]: line for line in out.output.splitlines() if line.startswith(f"{QWEN} @ ")}
        assert set(lines) == {"openrouter.ai", "127.0.0.1:8080"}, out.output
        assert "price unknown" in lines["openrouter.ai"], out.output
        assert "price unknown" not in lines["127.0.0.1:8080"] and "$0.00" in lines["127.0.0.1:8080"], out.output
        said = runner.invoke(app, ["report", "--config", str(path), "--days", "1"], env={"COLUMNS": "220"})
        assert said.exit_code == 0, said.output
        rows = [line for line in said.output.splitlines() if line.lstrip("│ ").startswith(f"{QWEN} @ ")]
        assert len(rows) == 2, said.output
        assert ["price unknown" in row for row in rows].count(True) == 1, said.output
        assert "price unknown" in next(row for row in rows if "openrouter" in row), said.output
