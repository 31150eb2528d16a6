"""Two configs sharing one routing log, each with a ``qwen3.5`` on a different server: ``check`` and ``models`` of
one must not blame the other's failures on its own endpoint.

Every config on a machine without ``log.path`` shares the default log; a laptop's Ollama and a team host's both
serve ``qwen3.5:latest`` under the config name ``qwen3.5``. The fake servers speak Ollama's /api/chat; the 404 for
a model not pulled is Ollama's own (ollama/ollama server/routes.go: ``model "x" not found, try pulling it first``,
as tests/fakes/ollama.py sends it).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.fakes import Fault, OllamaServer
from tests.fakes.ollama import model_entry
from tests.pg import LogBackend

from modelyard.cli.inspect import _missing, _recent_trouble
from modelyard.config import Config, load_config
from modelyard.errors import Reason
from modelyard.ledger import queries
from modelyard.ledger.report import build_report, days_period
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

CONFIG = """\
default_agent: chat
models:
  qwen3.5:
    provider: ollama
    model: qwen3.5:latest
    endpoint: {url}
agents:
  chat:
    primary: qwen3.5
defaults:
  retries: {{attempts: 0}}
  timeouts: {{first_token: {first_token}}}
log:
  path: {log}
"""


def run(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True,
                            encoding="utf-8", timeout=60, env=env)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


@pytest.fixture
def two_configs(tmp_path: Path) -> Iterator[tuple[Path, OllamaServer, Path, OllamaServer]]:
    """(the laptop's config, its Ollama without the model; the team host's config, its Ollama with it)."""
    log = tmp_path / "shared.sqlite3"
    with OllamaServer(models=[], reply_text="laptop") as laptop, \
            OllamaServer(models=["qwen3.5:latest"], reply_text="Team answer.") as team:
        laptop_config, team_config = tmp_path / "laptop.yaml", tmp_path / "team.yaml"
        # 1 s only where a hang is meant to time out: the team's answers must not, however loaded the machine
        # (at load ~20 the fake's first token took 0.99 s of a 1 s bound)
        laptop_config.write_text(CONFIG.format(url=laptop.url, log=log, first_token=1))
        team_config.write_text(CONFIG.format(url=team.url, log=log, first_token=60))
        yield laptop_config, laptop, team_config, team


def _model_line(out: str) -> str:
    return next(ln for ln in out.splitlines() if ln.strip("│ ").startswith("qwen3.5"))


def test_check_and_models_do_not_blame_another_configs_missing_model(two_configs) -> None:
    laptop_config, _, team_config, _ = two_configs
    assert run("ask", "hello", config=team_config).stdout.strip() == "Team answer."
    failed = run("ask", "hello", config=laptop_config)  # after the team's answer: the newest row is the 404
    assert failed.returncode == 1 and "model_missing" in failed.stderr

    team_check = run("check", config=team_config)
    assert team_check.returncode == 0, team_check.stdout
    assert "not on its server" not in team_check.stdout
    team_json = json.loads(run("check", "--json", config=team_config).stdout)
    assert not [f for f in team_json["findings"] if f["model"] == "qwen3.5"], team_json
    assert "missing on its server" not in _model_line(run("models", "--no-reach", config=team_config).stdout)

    # the laptop's own failure is still its own
    laptop_check = run("check", config=laptop_config)
    assert laptop_check.returncode == 1 and "model 'qwen3.5' is not on its server" in laptop_check.stdout
    assert "missing on its server" in _model_line(run("models", "--no-reach", config=laptop_config).stdout)


def test_models_does_not_call_a_model_failing_for_another_servers_timeouts(two_configs) -> None:
    laptop_config, laptop, team_config, team = two_configs
    laptop.models = [model_entry("qwen3.5:latest")]
    laptop.faults.push(Fault.hang_before_headers(), times=2)
    for _ in range(2):
        assert run("ask", "hello", config=laptop_config).returncode == 1
    laptop_models = run("models", "--no-reach", "--json", config=laptop_config)
    mine = next(m for m in json.loads(laptop_models.stdout)["models"] if m["model"] == "qwen3.5")
    assert "recent failure" in json.dumps(mine), mine

    team_models = json.loads(run("models", "--no-reach", "--json", config=team_config).stdout)
    theirs = next(m for m in team_models["models"] if m["model"] == "qwen3.5")
    assert "recent failure" not in json.dumps(theirs) and "timeout" not in json.dumps(theirs), theirs


def test_a_row_from_before_servers_were_logged_is_an_unknown_servers_not_this_ones(two_configs) -> None:
    """A log written before ``m012_attempt_backend``: its 404 may have been any config's ``qwen3.5``."""
    _, _, team_config, _ = two_configs
    assert run("ask", "hello", config=team_config).returncode == 0  # creates and migrates the shared log
    conn = sqlite3.connect(team_config.parent / "shared.sqlite3")
    with conn:
        conn.execute("INSERT INTO attempts (request_id, seq, ts, agent, model, provider, outcome, reason, detail) "
                     "VALUES ('old', 0, ?, 'chat', 'qwen3.5', 'ollama', 'fallback', 'model_missing', "
                     "'model \"qwen3.5:latest\" not found, try pulling it first')", (time.time(),))
    conn.close()
    check = run("check", config=team_config)
    assert check.returncode == 0, check.stdout
    assert "not on its server" not in check.stdout and "unknown server" in check.stdout
    findings = json.loads(run("check", "--json", config=team_config).stdout)["findings"]
    assert [f["level"] for f in findings if f["model"] == "qwen3.5"] == ["warning"]
    line = _model_line(run("models", "--no-reach", config=team_config).stdout)
    assert "unknown server" in run("models", "--no-reach", "--json", config=team_config).stdout, line


LAPTOP = "ollama http://127.0.0.1:11434 qwen3.5:latest"
TEAM = "ollama http://team-gpu:11434 qwen3.5:latest"


def test_the_readers_keep_servers_apart_on_each_backend(log_backend: LogBackend) -> None:
    """What ``models`` reads with ``log.url`` (PostgreSQL, the rows forwarded from each host's spool) and without."""
    now = time.time()
    for backends, rid, attempt in (
            ({"qwen3.5": TEAM}, "team1", Attempt("qwen3.5", "ollama", Outcome.OK, started_at=now - 30)),
            ({"qwen3.5": LAPTOP}, "lap1", Attempt("qwen3.5", "ollama", Outcome.FALLBACK, Reason.FIRST_TOKEN_TIMEOUT,
                                                  "no first token within 1s", started_at=now - 20)),
            ({"qwen3.5": LAPTOP}, "lap2", Attempt("qwen3.5", "ollama", Outcome.FALLBACK, Reason.MODEL_MISSING,
                                                  'model "qwen3.5:latest" not found, try pulling it first',
                                                  started_at=now - 10))):
        writer = log_backend.writer(backends=backends)
        writer.submit(RequestRecord(rid, "chat", ts=attempt.started_at, outcome=RequestOutcome.FAILED,
                                    attempts=[attempt]))
        writer.close()
    conn = log_backend.connect()
    assert queries.last_attempt(conn, "qwen3.5", TEAM)["outcome"] == "ok"
    assert queries.last_attempt(conn, "qwen3.5", LAPTOP)["reason"] == "model_missing"
    assert _recent_trouble(conn, "qwen3.5", TEAM, 3600) == ""
    assert _recent_trouble(conn, "qwen3.5", LAPTOP, 3600).startswith("2 recent failure(s), last model_missing")
    assert _missing(conn, "qwen3.5", TEAM) == ""
    assert _missing(conn, "qwen3.5", LAPTOP).startswith('model "qwen3.5:latest" not found')


def _report_config(tmp_path: Path, log_backend: LogBackend, endpoint: str, name: str) -> Config:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "log": log_backend.log_config(),
        "models": {"qwen3.5": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": endpoint},
                   "cloud": {"provider": "openai", "api_key_env": "NO_KEY_HERE", "price": {"input": 1, "output": 2}}},
        "agents": {"chat": {"primary": "qwen3.5", "fallbacks": ["cloud"]}},
        "defaults": {"timeouts": {"queue": 10}}}))
    return load_config(path)


def test_report_advice_is_about_this_configs_server(tmp_path: Path, log_backend: LogBackend) -> None:
    """``report``'s fallback blame and its queue-wait (cascade risk) advice name a model: only its own server's
    attempts may make it. The laptop's qwen3.5 refuses connections and queues near its bound; the team's answers."""
    now = time.time()
    laptop = log_backend.writer(local_models=["qwen3.5"], backends={"qwen3.5": LAPTOP})
    for i in range(12):
        ts = now - 600 + i
        laptop.submit(RequestRecord(f"lap{i}", "chat", ts=ts, outcome=RequestOutcome.FALLBACK, model="cloud",
                                    attempts=[Attempt("qwen3.5", "ollama", Outcome.FALLBACK, Reason.CONNECT_ERROR,
                                                      "connection refused", started_at=ts, queue_wait_ms=9500.0),
                                              Attempt("cloud", "openai", Outcome.OK, started_at=ts)]))
    laptop.close()
    team = log_backend.writer(local_models=["qwen3.5"], backends={"qwen3.5": TEAM})
    for i in range(12):
        ts = now - 300 + i
        team.submit(RequestRecord(f"team{i}", "chat", ts=ts, outcome=RequestOutcome.OK, model="qwen3.5",
                                  attempts=[Attempt("qwen3.5", "ollama", Outcome.OK, started_at=ts,
                                                    queue_wait_ms=5.0)]))
    team.close()

    def advice(endpoint: str, name: str) -> dict[str, dict]:
        report = build_report(log_backend.connect(), _report_config(tmp_path, log_backend, endpoint, name),
                              days_period(1))
        return {r.kind: r.numbers for r in report.recommendations}

    laptops = advice("http://127.0.0.1:11434", "laptop")
    assert laptops["fallback_rate"]["blamed"] == "qwen3.5" and "cascade_risk" in laptops
    teams = advice("http://team-gpu:11434", "team")
    assert teams["fallback_rate"]["blamed"] is None and teams["fallback_rate"]["failed_models"] == {}
    assert "cascade_risk" not in teams


def test_an_endpoints_password_is_not_kept_with_its_attempts(tmp_path: Path) -> None:
    """A server behind basic auth named as ``http://user:password@host`` (httpx sends it as an Authorization
    header): the server each attempt went to is logged, its password never."""
    with OllamaServer(models=["qwen3.5:latest"], reply_text="Team answer.") as team:
        config = tmp_path / "team.yaml"
        url = team.url.replace("http://", "http://team:s3cret-pass@")
        config.write_text(CONFIG.format(url=url, log=tmp_path / "shared.sqlite3", first_token=60))
        assert run("ask", "hello", config=config).stdout.strip() == "Team answer."
    conn = sqlite3.connect(tmp_path / "shared.sqlite3")
    try:
        backends = [row[0] for row in conn.execute("SELECT backend FROM attempts")]
    finally:
        conn.close()
    assert len(backends) == 1 and "team:***@" in backends[0] and "s3cret" not in backends[0], backends
