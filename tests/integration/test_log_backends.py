"""`log`, `stats`, `rate`, `models` and the dashboard read the same answers from SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from tests.pg import LogBackend, free_port
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.cli.inspect import _recent_trouble
from modelyard.config import load_config
from modelyard.errors import ConfigError, Reason
from modelyard.gateway import dashboard
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestKind, RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

runner = CliRunner()


def config(tmp_path: Path, log: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "log": log,
        "models": {"local": {"provider": "ollama"}, "cloud": {"provider": "openai", "api_key_env": "NO_KEY_HERE",
                                                               "price": {"input": 1, "output": 2}}},
        "agents": {"chat": {"primary": "local"}, "writer": {"primary": "cloud", "fallbacks": ["local"]}},
    }))
    return path


def fill(backend: LogBackend) -> list[RequestRecord]:
    now = time.time()
    records = [
        RequestRecord("aaa111", "chat", ts=now - 30, outcome=RequestOutcome.OK, model="local", total_ms=100,
                      tokens_in=10, tokens_out=20, tokens_per_s=40.0, prompt="50% off?", response="yes",
                      attempts=[Attempt("local", "ollama", Outcome.OK, queue_wait_ms=1.0, duration_ms=100,
                                        tokens_in=10, tokens_out=20, started_at=now - 30)]),
        RequestRecord("bbb222", "writer", ts=now - 20, outcome=RequestOutcome.FALLBACK, model="local", total_ms=300,
                      tokens_in=5, tokens_out=7, prompt="it's \"quoted\" ? and %s", response="ok",
                      attempts=[Attempt("cloud", "openai", Outcome.SKIPPED, Reason.MISSING_CREDENTIALS,
                                        "env NO_KEY_HERE not set", started_at=now - 20),
                                Attempt("local", "ollama", Outcome.OK, duration_ms=290, started_at=now - 20)]),
        RequestRecord("ccc333", "writer", ts=now - 10, outcome=RequestOutcome.FAILED, total_ms=50, error="all failed",
                      attempts=[Attempt("cloud", "openai", Outcome.FALLBACK, Reason.SERVER_ERROR, "HTTP 500",
                                        started_at=now - 10, cost_usd=0.25)], cost_usd=0.25),
    ]
    writer = backend.writer(local_models=["local"])
    for r in records:
        writer.submit(r)
    writer.close()
    return records


def test_log_stats_rate_and_models_commands(tmp_path: Path, log_backend: LogBackend) -> None:
    fill(log_backend)
    cfg = str(config(tmp_path, log_backend.log_config()))
    shown = runner.invoke(app, ["log", "--config", cfg, "--attempts"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.index("ccc333") < shown.output.index("bbb222") < shown.output.index("aaa111")  # newest first
    assert "missing_credentials" in shown.output and "50% off?" in shown.output
    assert ("postgresql://" in shown.output) == (log_backend.url is not None)
    only = runner.invoke(app, ["log", "--config", cfg, "--outcome", "fallback"])
    assert "bbb222" in only.output and "aaa111" not in only.output

    stats = runner.invoke(app, ["stats", "--config", cfg, "--days", "1"])
    assert stats.exit_code == 0, stats.output
    writer_row = next(line for line in stats.output.splitlines() if line.strip("│ ").startswith("writer"))
    assert "1/2" in writer_row and "50%" not in writer_row  # one fallback in two requests: a count

    assert runner.invoke(app, ["rate", "bbb", "good", "--config", cfg]).exit_code == 0
    assert runner.invoke(app, ["rate", "zzz", "bad", "--config", cfg]).exit_code == 2
    row = log_backend.connect().execute("SELECT acceptable, rated_at FROM requests WHERE id = 'bbb222'").fetchone()
    assert row["acceptable"] == 1 and abs(row["rated_at"] - time.time()) < 60

    models = runner.invoke(app, ["models", "--config", cfg])
    assert models.exit_code == 3, models.output  # its one model is unreachable: none can answer
    # written without servers: each config's model of that name may have been these rows'
    assert _recent_trouble(log_backend.connect(), "cloud", "openai x", 3600).startswith(
        "1 recent failure(s), last server_error on an unknown server")
    assert _recent_trouble(log_backend.connect(), "local", "ollama x", 3600) == ""


def test_models_counts_an_embeddings_timeout_as_the_router_does(tmp_path: Path, log_backend: LogBackend) -> None:
    """A batch that outlived its bound cools nothing (errors.says_health): the model serves its chats. ``models`` read
    the same row as "1 recent failure(s), last first_token_timeout" — a model said failing that the router keeps in
    service; a chat's timeout still counts."""
    now = time.time()
    writer = log_backend.writer(local_models=["local"])
    writer.submit(RequestRecord("emb111", "chat", ts=now - 20, outcome=RequestOutcome.FAILED, total_ms=700,
                                kind=RequestKind.EMBEDDINGS,
                                attempts=[Attempt("local", "ollama", Outcome.FALLBACK, Reason.FIRST_TOKEN_TIMEOUT,
                                                  "no first token within 0.6s", started_at=now - 20)]))
    writer.close()
    assert _recent_trouble(log_backend.connect(), "local", "ollama x", 3600) == ""
    writer = log_backend.writer(local_models=["local"])
    writer.submit(RequestRecord("chat111", "chat", ts=now - 10, outcome=RequestOutcome.FAILED, total_ms=700,
                                attempts=[Attempt("local", "ollama", Outcome.FALLBACK, Reason.FIRST_TOKEN_TIMEOUT,
                                                  "no first token within 30s", started_at=now - 10)]))
    writer.close()
    assert _recent_trouble(log_backend.connect(), "local", "ollama x", 3600).startswith(
        "1 recent failure(s), last first_token_timeout")


def test_dashboard_data(log_backend: LogBackend, tmp_path: Path) -> None:
    fill(log_backend)
    cfg = load_config(config(tmp_path, log_backend.log_config()))
    rows = dashboard._log(log_backend.connect(), 10, None, None, None)
    assert [r["id"] for r in rows] == ["ccc333", "bbb222", "aaa111"]
    assert json.dumps(rows)  # plain JSON types on both backends (no Decimal)
    summary = dashboard._summary(log_backend.connect(), cfg, time.time() - 3600)
    assert json.dumps(summary)
    cost = summary["cost"]
    assert (cost["requests"], cost["local_requests"], cost["tokens_in"], cost["tokens_out"]) == (3, 2, 15, 27)
    assert isinstance(cost["tokens_in"], int) and cost["actual_usd"] == pytest.approx(0.25)
    agents = {a["agent"]: a for a in summary["agents"]}
    assert agents["writer"]["reasons"] == {"missing_credentials": 1, "server_error": 1}
    assert [p["agent"] for p in summary["latency"]] == ["chat", "writer"]


def test_log_url_is_checked_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    for url, message in (("mysql://u:hunter2@h/db", "must be a postgresql:// URL"),
                         ("postgresql://u:hunter2@h:54x2/db", "port must be a number")):
        path.write_text(f"models:\n  m: {{provider: ollama}}\nagents:\n  a: {{primary: m}}\nlog:\n  url: {url}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        text = str(caught.value)
        assert f"{path}:6" in text and "log.url" in text and message in text, text
        assert "hunter2" not in text


def test_an_unreachable_database_is_a_clear_error_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://postgres:hunter2-secret@127.0.0.1:{free_port()}/nothing"
    cfg = str(config(tmp_path, {"path": str(tmp_path / "log.sqlite3"), "url": url}))
    for command in (["log"], ["stats"], ["report"], ["rate", "abc", "good"]):
        result = runner.invoke(app, [*command, "--config", cfg])
        assert result.exit_code == 1, (command, result.output)
        assert "routing log postgresql://postgres:***@127.0.0.1" in result.output, result.output
        assert "hunter2" not in result.output and "Traceback" not in result.output


def test_a_search_path_naming_no_schema_says_so(tmp_path: Path) -> None:
    """The README's `options=-csearch_path%3Dmyschema` with a schema nobody created said only 'no schema has been
    selected to create in' (from the first migration): now the search_path, and what to do."""
    from tests.pg import scratch_database

    with scratch_database() as database:
        url = f"{database}?options=-csearch_path%3Dteam_h35_missing"
        cfg = str(config(tmp_path, {"path": str(tmp_path / "log.sqlite3"), "url": url}))
        result = runner.invoke(app, ["log", "--config", cfg])
        assert result.exit_code == 1, result.output
        said = " ".join(result.output.split())
        assert "the search_path (team_h35_missing) names no schema that exists: create it first" in said, said


def test_a_shared_log_says_which_host_answered(tmp_path: Path, log_backend: LogBackend,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Three serves writing one PostgreSQL log: `log` could not say which machine served a slow or failing
    request. Each row now carries its host; `log` shows the column when the rows come from several, and
    `--host` picks one."""
    from modelyard.ledger import writer as writer_module

    now = time.time()
    for host, rid, ts in (("host-a", "aaa111", now - 20), ("host-b", "bbb222", now - 10)):
        monkeypatch.setattr(writer_module, "HOST", host)
        writer = log_backend.writer(local_models=["local"])
        writer.submit(RequestRecord(rid, "chat", ts=ts, outcome=RequestOutcome.OK, model="local", total_ms=100,
                                    attempts=[Attempt("local", "ollama", Outcome.OK, started_at=ts)]))
        writer.close()
    cfg = str(config(tmp_path, log_backend.log_config()))
    shown = runner.invoke(app, ["log", "--config", cfg], terminal_width=120)
    assert shown.exit_code == 0, shown.output
    rows = {line.split()[0]: line for line in shown.output.splitlines() if line[:3] in ("aaa", "bbb")}
    assert "host-a" in rows["aaa111"] and "host-b" in rows["bbb222"], shown.output
    one = runner.invoke(app, ["log", "--config", cfg, "--host", "host-b"], terminal_width=120)
    assert "bbb222" in one.output and "aaa111" not in one.output and "host-b" not in one.output  # one host: no column
    assert runner.invoke(app, ["log", "--config", cfg, "--host", "nowhere"]).exit_code == 2
    as_json = json.loads(runner.invoke(app, ["log", "--config", cfg, "--json"]).stdout)
    assert {r["id"]: r["host"] for r in as_json} == {"aaa111": "host-a", "bbb222": "host-b"}
