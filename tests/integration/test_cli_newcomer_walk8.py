"""Frictions of the eighth newcomer walk through the README's first part (`init --detect`, `models`, `plan`, `ask`) on
this machine, in an empty HOME, with ``python -m llama_cpp.server`` (the ``local`` extra's server) running the
embedded model and a Claude key exported on a machine without a network."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.openai_compat import OpenAIServer
from typer.testing import CliRunner

from modelyard.cli import app


def test_a_name_that_does_not_resolve_is_said_so_by_ask(tmp_path: Path) -> None:
    """`export ANTHROPIC_API_KEY=…` then `ask` on a machine without DNS: each attempt said 'cannot reach
    https://api.anthropic.com: Name or service not known' — the resolver's words — where `models` said the name does
    not resolve here, and what to check. ``.invalid`` never resolves (RFC 2606)."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  far: {provider: openai, model: m, endpoint: 'http://modelyard-nowhere.invalid:8080'}\n"
                      f"agents:\n  chat: {{primary: far}}\nlog: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    asked = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "chat", "hi"],
                               env={"COLUMNS": "300"})
    assert asked.exit_code == 1, asked.output
    assert ("cannot reach http://modelyard-nowhere.invalid:8080: the name modelyard-nowhere.invalid does not resolve "
            "here (") in asked.output, asked.output
    assert "a typo in the endpoint's host, or no network or DNS on this machine" in asked.output, asked.output


def test_a_model_listed_by_its_gguf_path_here_gets_its_files_size(tmp_path: Path) -> None:
    """llama_cpp.server without --model_alias lists its model by the --model path (its /v1/models, seen from the
    real server here: ``{"id": "/root/.cache/…/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "owned_by": "me"}``) and
    says no size: `init --detect` wrote no memory_gb, and `plan` said "cannot tell … set memory_gb" of a file on
    this very machine. Its size is the file's; the model's weight its name's (0.5B, not the file's 0.8B guess)."""
    gguf = tmp_path / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    gguf.parent.mkdir()
    with gguf.open("wb") as f:  # sparse: 1.5 GB said, nothing written
        f.truncate(1_500_000_000)
    target = tmp_path / "config.yaml"
    with OpenAIServer([str(gguf)]) as server:
        made = CliRunner().invoke(app, ["init", str(target), "--endpoint", server.url], env={"COLUMNS": "300"})
    assert made.exit_code == 0, made.output
    assert f"found {gguf} (OpenAI-compatible server at {server.url}), 0.5B;" in made.output, made.output
    planned = CliRunner().invoke(app, ["--config", str(target), "plan", "--json", "--ram", "64"])
    assert planned.exit_code == 0, planned.output
    [model] = [m for m in json.loads(planned.stdout)["models"] if m["model"] == "qwen2.5-coder-0.5b-instruct-q4_k_m"]
    assert model["weights_gb"] == 1.5, model
