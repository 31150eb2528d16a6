"""A newcomer's first hour with the README (2026-11-29, HOME in a scratch directory, a fake Ollama on loopback):
the places where a command was slow to say something, said too little, or put a wait on the wrong thing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from modelyard import __version__
from modelyard.cli import app


def test_the_version_is_said_without_loading_the_cli() -> None:
    """`modelyard --version` imported every command (typer, rich, httpx, the routing code) to print one line:
    a median of 0.85 s at load 4-6 here (2.3 s at load 7), where it now takes 0.04 s (Python's own start: 0.03 s)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "modelyard", "--version"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0 and out.stdout.strip() == f"modelyard {__version__}", out
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time")}
    assert "modelyard" in imported
    assert not {"modelyard.cli", "typer", "rich"} & imported, sorted(imported)


def test_a_config_file_that_is_not_there_says_how_to_write_one(tmp_path: Path) -> None:
    """`modelyard --config my.yaml models` before `init` said only 'my.yaml: file not found'."""
    missing = tmp_path / "my.yaml"
    for args in (["--config", str(missing), "models", "--no-reach"], ["ask", "-c", str(missing), "hi"]):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 2, out.output
        assert f"{missing}: file not found (`modelyard init {missing}` writes a starter config there)" \
            in " ".join(out.output.split()), out.output


def test_a_config_with_a_mistake_is_not_told_to_run_init(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  a: {provider: ollama, modle: x}\nagents:\n  chat: {primary: a}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"])
    assert out.exit_code == 2 and "unknown key 'modle'" in out.output and "modelyard init" not in out.output


def test_a_routed_turn_says_it_is_choosing_an_agent_while_the_routing_model_loads() -> None:
    """`chat`'s first turn waited 6 s (load 7) on the routing model under 'waiting for the first token (a local
    model loads on its first use)'; the route line then showed the decision taking 0.9 ms and the answering model's
    TTFT 73 ms — the wait was on neither."""
    from modelyard.cli.ask import ROUTED, waiting_words

    routed = waiting_words(ROUTED)
    assert routed == "auto: choosing an agent, then its answer (models load on first use)…"
    assert len(routed) + 2 < 80  # with its spinner: a status line wider than the terminal is cut
    named = waiting_words("engineer")
    assert named == "engineer: waiting for the first token (a local model loads on its first use)…"


def test_an_endpoint_without_its_scheme_is_asked_as_http(tmp_path: Path) -> None:
    """`modelyard init --endpoint 127.0.0.1:PORT` (an address as OLLAMA_HOST and `ollama serve` write it) said
    '127.0.0.1:PORT: nothing found (connect_error)' with an Ollama listening there, and wrote nothing."""
    from tests.fakes.ollama import OllamaServer

    from modelyard.config import load_config

    target = tmp_path / "config.yaml"
    with OllamaServer(["llama3.2:3b"]) as ollama:
        bare = ollama.url.removeprefix("http://")
        out = CliRunner().invoke(app, ["init", str(target), "--endpoint", bare])
    assert out.exit_code == 0, out.output
    assert f"{ollama.url}: Ollama" in out.output, out.output
    assert load_config(target).models["llama3.2-3b"].endpoint == ollama.url


def test_a_chat_message_no_model_answered_is_sent_again_by_retry(tmp_path: Path) -> None:
    """A chat message that no model answered was gone: not kept in the history (only answered exchanges are), and
    the prompt recalls no lines (the up arrow printed '^[[A'), so a long question was typed again."""
    from tests.fakes import Fault, OpenAIServer

    config = tmp_path / "c.yaml"
    with OpenAIServer(reply_text="answered at last") as llm:
        config.write_text(f"log: {{path: {tmp_path / 'l.sqlite'}}}\nmodels: {{m: {{provider: openai, endpoint: "
                          f"'{llm.url}/v1'}}}}\nagents: {{a: {{primary: m}}}}\n"
                          "defaults: {retries: {attempts: 0}, cooldown: {failures: 99}}\n")
        llm.faults.push(Fault.status(500))
        out = CliRunner().invoke(app, ["chat", "--config", str(config)],
                                 input="a long careful question\n/retry\n/retry\n/quit\n")
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "your message is kept: /retry sends it again" in said
    assert "answered at last" in said and "nothing to retry: the last message was answered" in said
    asked = [m["content"] for r in llm.requests for m in r.json["messages"] if m["role"] == "user"]
    assert asked == ["a long careful question", "a long careful question"]


def test_route_says_how_long_the_routing_model_took_to_load() -> None:
    """`modelyard route "…"` was silent for 15-25 s (load 8-13) and then said 'writer  confidence 1.00 · fast ·
    1.0 ms': the routing model's load was nowhere."""
    from modelyard.cli.agents_cmds import LOADING_ROUTING, load_note

    assert load_note(0.4) is None  # not worth a line
    assert load_note(15.78) == ("the routing model took 15.8 s to load before this decision: once per process "
                                "(`serve`, `chat` and `telegram` keep it loaded)")
    assert LOADING_ROUTING == "loading the routing model (once per process: seconds)…"


def test_a_command_does_not_import_what_only_an_agent_tool_uses() -> None:
    """Every command imports the CLI, and the CLI the agent tools: the fetch tool's HTTP client (httpx, ~60 ms of
    each command's start at load 4) was imported by `models`, `log`, `--help` alike; it is off unless
    `tools.fetch: true`. The tool imports it when it runs."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = "import sys, modelyard.cli; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stdout
