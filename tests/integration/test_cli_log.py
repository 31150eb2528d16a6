"""`modelyard log` as a person and a script meet it: readable at 80 columns (whole columns dropped by
priority, never every column squeezed), filter values it cannot match refused with the allowed ones,
and `--json` for scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len

from modelyard.errors import Reason
from modelyard.ledger.writer import LogWriter
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord

LONG_MODEL = "qwen2.5-coder-7b"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    log = tmp_path / "log.sqlite3"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "log": {"path": str(log)},
        "models": {LONG_MODEL: {"provider": "ollama"},
                   "cloud": {"provider": "openai", "api_key_env": "NO_KEY_HERE", "price": {"input": 1, "output": 2}}},
        "agents": {"chat": {"primary": LONG_MODEL}, "writer": {"primary": "cloud", "fallbacks": [LONG_MODEL]}},
    }))
    now = time.time()
    writer = LogWriter(log, local_models=[LONG_MODEL])
    writer.submit(RequestRecord("aaa111bbb222", "chat", ts=now - 30, outcome=RequestOutcome.OK, model=LONG_MODEL,
                                total_ms=1234, ttft_ms=210, queue_wait_ms=3, tokens_in=120, tokens_out=480,
                                tokens_per_s=38.5, prompt="Explain how a B-tree keeps itself balanced " * 3,
                                response="…",
                                attempts=[Attempt(LONG_MODEL, "ollama", Outcome.OK, started_at=now - 30)]))
    writer.submit(RequestRecord("ccc333ddd444", "writer", ts=now - 20, outcome=RequestOutcome.FALLBACK,
                                model=LONG_MODEL, total_ms=15_300,
                                tokens_in=5, tokens_out=7, prompt="Write a release note", response="ok",
                                attempts=[Attempt("cloud", "openai", Outcome.SKIPPED, Reason.MISSING_CREDENTIALS,
                                                  "env NO_KEY_HERE not set", started_at=now - 20),
                                          Attempt(LONG_MODEL, "ollama", Outcome.OK, started_at=now - 20)]))
    writer.submit(RequestRecord("eee555fff666", "retired", ts=now - 10, outcome=RequestOutcome.FAILED,
                                total_ms=50, error="all failed", prompt="old agent",
                                attempts=[Attempt("cloud", "openai", Outcome.FALLBACK, Reason.SERVER_ERROR, "HTTP 500",
                                                  started_at=now - 10)]))
    writer.close()
    return path


def log(config: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "modelyard", "log", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_log_fits_80_columns_with_whole_columns(config: Path) -> None:
    out = log(config, "--attempts", columns=80)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    # what matters most is shown whole, never folded or cut to "qwen2.…"
    for whole in ("aaa111bb", "ccc333dd", LONG_MODEL, "fallback", "missing_credentials", "retired",
                  "1234ms", "15.3s"):
        assert any(whole in line for line in lines), whole
    header = next(line for line in lines if "agent" in line and "model" in line)
    assert "cost" not in header and "TTFT" not in header  # dropped whole, by priority

    wide = log(config, columns=220)
    header = next(line for line in wide.stdout.splitlines() if "agent" in line and "model" in line)
    for col in ("id", "time", "wait", "TTFT", "total", "tok in/out", "tok/s", "cost", "ok?", "prompt"):
        assert col in header, col
    assert "Explain how a B-tree" in wide.stdout


def test_unknown_filter_values_are_refused_with_the_allowed_ones(config: Path) -> None:
    bad_outcome = log(config, "--outcome", "fallbak")
    assert bad_outcome.returncode == 2
    for value in ("ok", "fallback", "failed", "interrupted", "cancelled"):
        assert value in bad_outcome.stderr
    bad_agent = log(config, "--agent", "nobody")
    assert bad_agent.returncode == 2
    assert "unknown agent 'nobody': choose from chat, retired, writer" in bad_agent.stderr
    bad_model = log(config, "--model", "gpt-9")
    assert bad_model.returncode == 2 and "cloud" in bad_model.stderr
    # an agent only the log knows (since removed from the config) is a valid filter
    retired = log(config, "--agent", "retired", "--json")
    assert retired.returncode == 0 and [r["id"] for r in json.loads(retired.stdout)] == ["eee555fff666"]


def test_log_json_is_an_array_of_requests_with_their_attempts(config: Path) -> None:
    out = log(config, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == ["eee555fff666", "ccc333ddd444", "aaa111bbb222"]  # newest first
    writer = rows[1]
    assert writer["outcome"] == "fallback" and writer["fallback_reason"] == "missing_credentials"
    assert [(a["model"], a["outcome"], a["reason"]) for a in writer["attempts"]] == [
        ("cloud", "skipped", "missing_credentials"), (LONG_MODEL, "ok", None)]
    only = json.loads(log(config, "--json", "--outcome", "FAILED", "-n", "5").stdout)
    assert [r["id"] for r in only] == ["eee555fff666"]


def test_stats_json_uses_the_report_names(config: Path) -> None:
    env = {**os.environ, "MODELYARD_CONFIG": str(config)}
    out = subprocess.run([sys.executable, "-m", "modelyard", "stats", "--json"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    agents = {g["key"]: g for g in data["agents"]}
    assert (agents["writer"]["requests"], agents["writer"]["fallbacks"]) == (1, 1)
    assert agents["retired"]["failed"] == 1 and agents["chat"]["latency_p50_ms"] == 1234
    # (none): the request no model answered; cloud answered none, its two failed attempts (skipped, a 500) counted
    models = {g["key"]: g for g in data["models"]}
    assert set(models) == {LONG_MODEL, "cloud", "(none)"}
    assert (models["cloud"]["requests"], models["cloud"]["failed_attempts"]) == (0, 2)


def test_stats_fits_80_columns_with_whole_figures(config: Path) -> None:
    """At 80 columns every stats column was squeezed: a p50 of 1234ms read "123…", a model "qwen…"."""
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "modelyard", "stats"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80 and "…" not in out.stdout
    for whole in (LONG_MODEL, "1234ms", "15.3s", "requests", "p50", "by agent", "by model"):
        assert any(whole in line for line in lines), whole
    assert "--json has every figure" in " ".join(out.stdout.split())  # what was left out is said, and where to find it


def test_an_answer_cut_off_at_its_token_limit_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"log": {"path": str(tmp_path / "log.sqlite3")},
                                    "models": {"m": {"provider": "ollama"}}, "agents": {"chat": {"primary": "m"}}}))
    writer = LogWriter(tmp_path / "log.sqlite3", local_models=["m"])
    now = time.time()
    for rid, finish in (("ggg777hhh888", "length"), ("iii999jjj000", "stop")):
        writer.submit(RequestRecord(rid, "chat", ts=now, outcome=RequestOutcome.OK, model="m", total_ms=900,
                                    tokens_in=10, tokens_out=64, prompt="a long story", response="Once",
                                    finish_reason=finish,
                                    attempts=[Attempt("m", "ollama", Outcome.OK, started_at=now)]))
    writer.close()
    lines = log(path, columns=80).stdout.splitlines()
    assert "ok (length)" in next(line for line in lines if "ggg777hh" in line)
    assert "(length)" not in next(line for line in lines if "iii999jj" in line)


def test_rate_says_whether_an_id_matched_nothing_or_several(config: Path) -> None:
    """Both said 'no single request matches id …': a prefix too short needs more characters, a wrong id another."""
    from typer.testing import CliRunner

    from modelyard.cli import app

    writer = LogWriter(yaml.safe_load(config.read_text())["log"]["path"], local_models=[LONG_MODEL])
    writer.submit(RequestRecord("aaa111fff000", "chat", outcome=RequestOutcome.OK, model=LONG_MODEL, prompt="x"))
    writer.close()
    several = CliRunner().invoke(app, ["rate", "aaa1", "good", "-c", str(config)])
    assert several.exit_code == 2 and "'aaa1' starts several request ids: give more of it" in several.output
    none = CliRunner().invoke(app, ["rate", "zzz", "good", "-c", str(config)])
    assert none.exit_code == 2 and "no request has the id 'zzz'" in none.output
    assert CliRunner().invoke(app, ["rate", "aaa111b", "good", "-c", str(config)]).exit_code == 0


def test_an_empty_log_says_so_and_how_it_fills(tmp_path: Path) -> None:
    """A newcomer's first `log` / `stats` printed bare column headers (two empty tables for stats)."""
    from typer.testing import CliRunner

    from modelyard.cli import app

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"log": {"path": str(tmp_path / "log.sqlite3")},
                                    "models": {"m": {"provider": "ollama"}}, "agents": {"chat": {"primary": "m"}}}))
    for command in ("log", "stats"):
        out = CliRunner().invoke(app, [command, "-c", str(path)])
        assert out.exit_code == 0 and "no requests" in out.output and "modelyard ask" in out.output, out.output
        assert "requests  failed" not in out.output and "outcome" not in out.output
    assert "no request matches these filters" in CliRunner().invoke(app, ["log", "--agent", "chat", "-c",
                                                                         str(path)]).output


@pytest.mark.parametrize("command", [["log"], ["report"], ["stats"]])
def test_a_text_another_program_wrote_in_latin1_is_read_not_a_traceback(config: Path, command: list[str]) -> None:
    """SQLite keeps any bytes as TEXT (https://www.sqlite.org/invalidutf.html); a ``sqlite3`` shell fixing a prompt
    by hand, or a tool writing Latin-1 (blacklanternsecurity/bbot#1071), leaves one that is not UTF-8. ``log`` and
    ``report`` ended in a traceback ('sqlite3.OperationalError: Could not decode to UTF-8 column'); now it reads as
    U+FFFD. (``stats``: guard — it reads no text.)"""
    log_file = yaml.safe_load(config.read_text())["log"]["path"]
    fix = "UPDATE requests SET prompt = CAST(x'436166e9' AS TEXT) WHERE id = 'aaa111bbb222'"  # 'Café', Latin-1
    done = subprocess.run(["sqlite3", log_file, fix], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "COLUMNS": "250"}
    out = subprocess.run([sys.executable, "-m", "modelyard", *command], capture_output=True, text=True, timeout=60,
                         env=env)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    if command == ["log"]:
        assert "Caf\ufffd" in out.stdout


def test_an_outcome_mistyped_says_the_nearest(config: Path) -> None:
    """`log --outcome failure` (the word most tools use) said typer's "Value error, 'failure' is not one of 'ok',
    …" with no nearest one; `success` and `error` are not near any outcome by spelling, so they are named too."""
    for typed, meant in (("failure", "failed"), ("success", "ok"), ("error", "failed"), ("fallbak", "fallback")):
        out = log(config, "--outcome", typed)
        assert out.returncode == 2, out.stdout
        assert f"'{typed}' is not an outcome (did you mean '{meant}'?)" in " ".join(out.stderr.split())
        assert "Value error" not in out.stderr and "Traceback" not in out.stderr
