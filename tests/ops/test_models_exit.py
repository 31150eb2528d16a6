"""`modelyard models` tells by its exit status whether any model can answer.

It exited 0 with every configured model unreachable, so `modelyard models || alert` never alerted — the complaint of
liip/LiipMonitorBundle#75 ("Exit code was '0' even when check fails") and of lbeder/health-monitor-rails#38 (a health
page answering 200 with its providers down). The status now follows what check runners read: 0 passing, 1 warning,
2 and above critical (Consul's script checks, hashicorp/consul#4769: "only exit codes >= 2 are considered as
failures"; Docker's HEALTHCHECK takes any non-zero as unhealthy, docker/docs#4652). So: 0 when a model can answer,
1 when the listing is incomplete (the shared log or Redis not read — as before), 3 when none can answer (2 stays
"bad input", as for every command).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import yaml
from tests.fakes import OllamaServer
from typer.testing import CliRunner

from modelyard.cli import app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path: Path, models: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"log": {"path": str(tmp_path / "log.sqlite3")}, "models": models,
                                    "agents": {"chat": {"primary": next(iter(models)),
                                                        "fallbacks": list(models)[1:]}}}))
    return path


def test_every_model_unreachable_exits_3_saying_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    dead = f"http://127.0.0.1:{_free_port()}"
    path = _config(tmp_path, {
        "local": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": dead},
        "server": {"provider": "openai", "model": "x", "endpoint": dead + "/v1"},
        "cloud": {"provider": "anthropic", "model": "claude-haiku-4-5", "api_key_env": "ANTHROPIC_API_KEY"}})
    out = CliRunner().invoke(app, ["models", "--config", str(path)], terminal_width=250)
    assert out.exit_code == 3, out.output
    assert "Traceback" not in out.output
    said = " ".join(out.stderr.split())
    assert "error: no configured model can answer now (1 unavailable, 2 unreachable)" in said, said
    assert "local" in out.stdout and "unreachable" in out.stdout  # the listing is still printed, with each reason
    as_json = CliRunner().invoke(app, ["models", "--config", str(path), "--json"])
    assert as_json.exit_code == 3
    assert {m["state"] for m in json.loads(as_json.stdout)["models"]} == {"unreachable", "unavailable"}


def test_one_model_answering_exits_0(tmp_path: Path) -> None:
    """A guard: one model that answers is enough for 0 — a fallback chain is meant to ride out the others."""
    dead = f"http://127.0.0.1:{_free_port()}"
    with OllamaServer(models=["qwen3.5:latest"]) as live:
        path = _config(tmp_path, {"dead": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": dead},
                                  "live": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": live.url}})
        out = CliRunner().invoke(app, ["models", "--config", str(path)], terminal_width=250)
    assert out.exit_code == 0, out.output
    assert "can answer" not in out.output
