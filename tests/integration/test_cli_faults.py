"""`modelyard ask`, `models` and `check` against backends that send issue 8's shapes: no traceback, a
clear exit status, the route says why, and the routing log keeps every request."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import Fault, OllamaServer, OpenAIServer
from tests.fakes.ollama import model_entry

CONFIG = """\
default_agent: chat
models:
  local:
    provider: openai
    model: local
    endpoint: {oa}
  spare:
    provider: ollama
    model: qwen3.5:latest
    endpoint: {ol}
  missing:
    provider: ollama
    model: not-pulled:7b
    endpoint: {ol}
agents:
  chat:
    primary: local
  careful:
    primary: local
    fallbacks: [spare]
  pulled:
    primary: missing
    fallbacks: [spare]
defaults:
  retries: {{attempts: 0}}
  timeouts: {{first_token: 2}}
log:
  path: {log}
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, OpenAIServer, OllamaServer]]:
    with OpenAIServer(models=["local"], reply_text="Local answer.") as oa, \
            OllamaServer(models=["qwen3.5:latest"], reply_text="Spare answer.") as ol:
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG.format(oa=oa.url, ol=ol.url, log=tmp_path / "log.sqlite3"))
        yield config, oa, ol


def run(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True,
                            encoding="utf-8", timeout=60, env=env)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def log_rows(config: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(config.parent / "log.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT id, outcome, response, fallback_reason FROM requests").fetchall()
    finally:
        conn.close()


def test_a_split_emoji_reaches_the_terminal_and_the_log_whole(setup) -> None:
    config, oa, _ = setup
    oa.push(Fault.shape("split_surrogate"))
    result = run("ask", "hello", config=config)
    assert result.returncode == 0 and result.stdout.strip() == "Local answer. \U0001f600"
    oa.push(Fault.shape("split_surrogate"))
    out = json.loads(run("ask", "--json", "hello", config=config).stdout)
    assert out["answer"] == "Local answer. \U0001f600" and out["outcome"] == "ok"
    assert [r["response"] for r in log_rows(config)] == ["Local answer. \U0001f600"] * 2  # ask kept its rows


def test_content_as_text_parts_is_an_answer(setup) -> None:
    config, oa, _ = setup
    oa.push(Fault.shape("content_parts", "text"))
    result = run("ask", "--json", "hello", config=config)
    assert result.returncode == 0 and json.loads(result.stdout)["answer"] == "Local answer."


@pytest.mark.parametrize("fault", [Fault.shape("content_parts", "image"), Fault.shape("no_choices", "empty"),
                                   Fault.shape("not_a_stream", "html")], ids=["image_part", "no_choices", "html"])
def test_an_unusable_answer_is_a_clear_failure_not_an_empty_success(setup, fault: Fault) -> None:
    config, oa, _ = setup
    oa.push(fault)
    result = run("ask", "hello", config=config)
    assert result.returncode == 1 and "local: fallback (malformed_response" in result.stderr
    oa.push(fault)
    as_json = run("ask", "--json", "hello", config=config)
    out = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and out["outcome"] == "failed" and out["answer"] == ""
    assert out["route"]["attempts"][0]["reason"] == "malformed_response"
    assert [(r["outcome"], r["fallback_reason"]) for r in log_rows(config)] == [("failed", "malformed_response")] * 2


def test_an_unusable_answer_falls_back_when_there_is_a_fallback(setup) -> None:
    config, oa, _ = setup
    oa.push(Fault.shape("content_parts", "image"))
    result = run("ask", "--agent", "careful", "hello", config=config)
    assert result.returncode == 0 and result.stdout.strip() == "Spare answer."
    assert "after local: malformed_response" in result.stderr


def test_a_missing_model_is_shown_by_ask_models_and_check(setup) -> None:
    config, _, ol = setup
    result = run("ask", "--agent", "pulled", "hello", config=config)
    assert result.returncode == 0 and result.stdout.strip() == "Spare answer."
    assert "after missing: model_missing" in result.stderr
    models = run("models", config=config)
    line = next(ln for ln in models.stdout.splitlines() if ln.strip("│ ").startswith("missing"))
    assert "missing on its server" in line and "not-pulled:7b" in models.stdout
    check = run("check", config=config)
    assert check.returncode == 1 and "model 'missing' is not on its server" in check.stdout
    as_json = json.loads(run("check", "--json", config=config).stdout)
    assert any(f["model"] == "missing" and f["level"] == "error" for f in as_json["findings"])
    ol.models.append(model_entry("not-pulled:7b"))  # someone ran `ollama pull`
    again = run("ask", "--agent", "pulled", "hello", config=config)
    assert again.returncode == 0 and again.stderr.strip().splitlines()[-1].startswith("pulled → missing ")
    assert "missing on its server" not in run("models", config=config).stdout
    assert run("check", config=config).returncode == 0


def test_ask_json_falls_back_when_a_model_breaks_off_mid_answer(setup) -> None:
    """`ask --json` prints one object at the end, so nothing was shown when the primary broke off: the chain's
    next model answers (it was streamed internally, ended `interrupted` and exited 1 with the partial text)."""
    config, oa, _ = setup
    oa.push(Fault.drop_midstream(after_chunks=2))
    result = run("ask", "--agent", "careful", "--json", "hello", config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["answer"] == "Spare answer." and out["model"] == "spare"
    assert [a["model"] for a in out["route"]["attempts"]] == ["local", "spare"]
