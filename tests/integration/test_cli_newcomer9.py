"""Frictions of the ninth newcomer walk (README and docs followed literally, in an empty HOME), each run as a
newcomer would: the `modelyard` command in a subprocess, a fake Ollama behind it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import BaseRoute
from tests.fakes import OllamaServer
from tests.fakes.server import FakeServer
from tests.integration.test_cli import CONFIG


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with OllamaServer(models=["qwen3.5:latest"], reply_text="Local answer.") as server:
        path = tmp_path / "config.yaml"
        path.write_text(CONFIG.format(url=server.url, log=tmp_path / "log.sqlite3"))
        yield path


def ask(config: Path, *args: str, stdin: int | str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "modelyard", "ask", *args], capture_output=True, text=True,
                          timeout=60, env=env, **({"input": stdin} if isinstance(stdin, str) else {"stdin": stdin}))


def test_a_prompt_piped_in_without_an_argument_is_asked(config: Path) -> None:
    """`git diff | modelyard ask` — `ollama run MODEL` and Simon Willison's `llm` both take a piped prompt (llm's
    docs, "Usage": `cat mycode.py | llm`) — was refused: "Missing argument 'PROMPT'", exit 2, though `-` reads stdin.
    With nothing given and input piped, that input is the prompt."""
    piped = ask(config, "--agent", "chat", stdin="Summarise this diff: …")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == "Local answer." and "chat → local" in piped.stderr


def test_no_prompt_at_a_terminal_says_how_to_give_one(config: Path) -> None:
    """At a terminal (standard input a tty) nothing is read: waiting for typed input with no prompt on screen would
    look hung. It says how to give the task, exit 2."""
    leader, follower = os.openpty()
    try:
        typed = ask(config, "--agent", "chat", stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert typed.returncode == 2
    assert 'error: give the task or question: modelyard ask "…" (or pipe it in: … | modelyard ask)' in typed.stderr


def test_nothing_piped_in_says_where_it_looked(config: Path) -> None:
    """An empty pipe (`modelyard ask < /dev/null`, a script's variable unset) said only 'the prompt is empty'."""
    empty = ask(config, "--agent", "chat", stdin="")
    assert empty.returncode == 2
    assert "the prompt is empty: nothing came on standard input" in empty.stderr, empty.stderr


@pytest.mark.parametrize("words", [["-"], ["   "]])
def test_a_dash_or_blank_prompt_as_before(config: Path, words: list[str]) -> None:
    """Guard (passes on the old code too): '-' reads stdin, and a blank argument is refused without reading it."""
    said = ask(config, "--agent", "chat", *words, stdin="from stdin")
    if words == ["-"]:
        assert said.returncode == 0 and said.stdout.strip() == "Local answer.", said.stderr
    else:
        assert said.returncode == 2 and "error: the prompt is empty\n" in said.stderr


def test_chat_in_a_config_without_an_orchestrator_names_the_agent_it_talks_to(tmp_path: Path) -> None:
    """A config of one agent and no orchestrator (as a newcomer writes first) sends every turn to its default agent,
    and chat said "talking to auto (orchestrator)" with an "auto>" prompt. It names the agent now."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="Local answer.") as server:
        config = tmp_path / "mini.yaml"
        config.write_text(f"models:\n  llama: {{provider: ollama, model: 'llama3.2:3b', endpoint: '{server.url}'}}\n"
                          f"agents:\n  helper: {{primary: llama}}\nlog: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        env = {**os.environ, "COLUMNS": "200"}
        said = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "chat"],
                              input="hi\n/agent auto\n",
                              capture_output=True, text=True, timeout=60, env=env)
    assert said.returncode == 0, said.stderr
    assert "talking to helper (this config has no orchestrator: the default agent)" in said.stdout, said.stdout
    assert "helper> Local answer." in said.stdout and "now talking to helper" in said.stdout, said.stdout
    assert "auto" not in said.stdout.replace("/agent auto", ""), said.stdout
    assert "helper → llama" in said.stderr


def test_a_404_that_names_no_model_says_the_url_it_was_asked_at(tmp_path: Path) -> None:
    """`provider: openai` with `endpoint: http://host:11434/api` (Ollama's native API is under /api; its OpenAI one
    under /v1) asked /api/v1/chat/completions and said only "model_missing: HTTP 404: Not Found" — the model blamed
    for a path. A 404 with no word of the model (Starlette's and vLLM's "Not Found", llama-server's "File Not Found")
    says the URL asked; one that names the model (Ollama's "model 'x' not found") is left as the server said it."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="Local answer.") as server:
        config = tmp_path / "c.yaml"
        config.write_text(f"models:\n  wrong: {{provider: openai, model: llama3.2, endpoint: '{server.url}/api'}}\n"
                          f"  absent: {{provider: ollama, model: 'nosuch:1b', endpoint: '{server.url}'}}\n"
                          f"agents:\n  helper: {{primary: wrong}}\n  other: {{primary: absent}}\n"
                          f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        path = ask(config, "--agent", "helper", "hi", stdin=None)
        named = ask(config, "--agent", "other", "hi", stdin=None)
    said = " ".join(path.stderr.split())
    assert path.returncode == 1 and "model_missing: HTTP 404" in said, said
    assert f"(POST {server.url}/api/v1/chat/completions: no such path there? check the model's endpoint)" in said
    assert named.returncode == 1 and "POST " not in named.stderr and "nosuch:1b" in named.stderr, named.stderr


class _WebApp(FakeServer):
    """Some other web application on the port: every path Starlette's plain 404 "Not Found" (no route)."""

    def routes(self) -> list[BaseRoute]:
        return []


def test_init_says_what_answered_at_an_address_that_serves_no_model_list(tmp_path: Path) -> None:
    """`init --detect --endpoint host:8080` where another web server answers (a 404 to /v1/models and /api/tags) said
    "nothing found (malformed_response)" — a tag, as if the model server had answered garbage. It says which URL
    answered what."""
    with _WebApp() as server:
        done = subprocess.run([sys.executable, "-m", "modelyard", "init", str(tmp_path / "c.yaml"), "--detect",
                               "--endpoint", f"127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "COLUMNS": "250"})
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and not (tmp_path / "c.yaml").exists(), said
    assert f"{server.url}/v1/models answered HTTP 404, not a model list" in said or \
        f"{server.url}/api/tags answered HTTP 404, not an Ollama listing" in said, said
