"""Frictions met walking the README's "Your own models, step by step" with the servers people run (round 4).

Each test names what a person typed, what they expected, and what modelyard said before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fakes.ollama import OllamaServer
from tests.fakes.telegram import TelegramServer
from typer.testing import CliRunner

from modelyard.cli import app

#: what `init --detect` writes for an Ollama that serves llama3.2:3b: the entry's name is the tag made a YAML-safe
#: name, its `model:` the tag itself (ops/starter.py)
_DETECTED = ("models:\n  llama3.2-3b: {provider: ollama, model: 'llama3.2:3b'}\n"
             "  qwen-coder-7b: {provider: ollama, model: 'qwen2.5-coder:7b'}\n"
             "agents:\n  chat: {primary: llama3.2-3b}\n"
             "  engineer: {primary: qwen-coder-7b, fallbacks: [llama3.2-3b]}\n")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text + f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n", encoding="utf-8")
    return path


def test_ask_agent_with_the_tag_ollama_list_shows(tmp_path: Path) -> None:
    """`modelyard ask --agent llama3.2:3b "hi"` — the name `ollama list` and `init --detect`'s own lines ("found
    llama3.2:3b") show — said "unknown agent 'llama3.2:3b'" and nothing of the model; the entry's own name said who
    uses it. Now both say which entry it is and the agent to name."""
    out = CliRunner().invoke(app, ["--config", str(_config(tmp_path, _DETECTED)), "ask", "--agent", "llama3.2:3b",
                                   "hi"])
    assert out.exit_code == 2, out.output
    said = " ".join(out.output.split())
    assert "'llama3.2:3b' is a model (the provider's id of 'llama3.2-3b'), not an agent" in said, said
    assert "--agent chat" in said
    assert "unknown agent" not in said


def test_probe_with_the_tag_and_its_implied_latest(tmp_path: Path) -> None:
    """`ollama run qwen2.5-coder` pulls `:latest`, and the config says
    `qwen2.5-coder`: `warmup qwen2.5-coder:latest` (as `ollama ps` lists it) found no entry, only "unknown model(s)"."""
    text = "models:\n  coder: {provider: ollama, model: qwen2.5-coder}\nagents:\n  chat: {primary: coder}\n"
    out = CliRunner().invoke(app, ["--config", str(_config(tmp_path, text)), "warmup", "qwen2.5-coder:latest"])
    assert out.exit_code == 2, out.output
    assert "'qwen2.5-coder:latest' is the provider's id of 'coder'" in " ".join(out.output.split())


@pytest.mark.parametrize("token", ["7312345678:AAHk3xYzQ9wErTyUiOpAsDfGhJkLzXcVbNm", "modelyard_test_bot"])
def test_a_refused_telegram_token_is_not_printed(tmp_path: Path, token: str) -> None:
    """A token Telegram refuses (revoked, one character off — most of a live one — or the bot's name pasted instead)
    printed python-telegram-bot's own words, "The token `<the whole token>` was rejected by the server."
    (telegram/_bot.py; the same leak reported from another tool's log, found by searching for those words), on the
    terminal and in a service's journal. The fake answers an unknown token as the Bot API does (401)."""
    with TelegramServer() as tg:
        config = _config(tmp_path, "models:\n  m: {provider: openai, model: m, endpoint: 'http://127.0.0.1:9/v1'}\n"
                                   f"agents:\n  chat: {{primary: m}}\ntelegram: {{base_url: '{tg.base_url}', "
                                   "allowed_users: [1]}\n")
        env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data"), "TELEGRAM_BOT_TOKEN": token}
        env.pop("MODELYARD_STATE", None)
        done = subprocess.run([sys.executable, "-m", "modelyard", "telegram", "--local", "--config", str(config)],
                              capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert token not in said and (token.partition(":")[2][:10] or token) not in said, said
    assert "TELEGRAM_BOT_TOKEN" in said and "@BotFather" in said and "Traceback" not in said
    if ":" in token:
        assert "bot 7312345678" in said  # which bot: its id is public (the bot's own user id)
    else:
        assert "does not look like a bot token" in said


def test_a_key_in_a_dotenv_file_is_named_where_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ANTHROPIC_API_KEY=sk-ant-…` in `./.env`, as LiteLLM and docker compose read it by themselves: `models` said
    "environment variable ANTHROPIC_API_KEY is not set" and nothing of the file. The value is never shown."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("OTHER=1\nANTHROPIC_API_KEY=sk-ant-api03-secretvalue\n", encoding="utf-8")
    monkeypatch.chdir(project)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = _config(tmp_path, "models:\n  claude: {provider: anthropic, model: claude-haiku-4-5, "
                               "api_key_env: ANTHROPIC_API_KEY}\nagents:\n  chat: {primary: claude}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"])
    said = " ".join(out.output.split())
    assert f"it is in {project / '.env'}, and modelyard reads no .env file" in said, said
    assert "secretvalue" not in said


def test_chat_agent_with_a_model_tag_says_the_chat_command(tmp_path: Path) -> None:
    """In `chat`, `/agent llama3.2:3b` is answered with the command chat takes (`/agent chat`), not ask's option."""
    out = CliRunner().invoke(app, ["--config", str(_config(tmp_path, _DETECTED)), "chat"],
                             input="/agent llama3.2:3b\n/quit\n", env={"MODELYARD_DATA_DIR": str(tmp_path / "d")})
    said = " ".join(out.output.split())
    assert "'llama3.2:3b' is a model (the provider's id of 'llama3.2-3b')" in said, said
    assert "first: /agent chat" in said and "--agent" not in said


@pytest.mark.parametrize("tail", ["/v1", "/api/chat", "/v1/chat/completions/"])
def test_init_endpoint_named_with_a_request_path_finds_ollama(tmp_path: Path, tail: str) -> None:
    """`init --detect --endpoint http://gpu-box:11434/v1` — Ollama's address as OpenAI clients are given it (Ollama's
    OpenAI-compatibility docs: base_url='http://localhost:11434/v1/'), or a curl example's `/api/chat` — said
    'nothing found (malformed_response)' with Ollama right there; a config's endpoint written so was already read as
    the server's address. The fake speaks Ollama's native API only."""
    with OllamaServer(["llama3.2:3b"]) as server:
        target = tmp_path / "detected.yaml"
        out = CliRunner().invoke(app, ["init", str(target), "--detect", "--endpoint", f"{server.url}{tail}"])
        assert out.exit_code == 0, out.output
    assert f"endpoint: {server.url}\n" in target.read_text()
    assert "model: llama3.2:3b" in target.read_text()


def test_init_endpoint_0000_writes_the_loopback_address(tmp_path: Path) -> None:
    """`init --detect --endpoint 0.0.0.0:PORT`, copied from the server's `OLLAMA_HOST=0.0.0.0:PORT` (where it listens),
    wrote `endpoint: http://0.0.0.0:PORT`: Linux connects that to itself, Windows refuses it (WSAEADDRNOTAVAIL), and
    the same variable in the environment was already read as 127.0.0.1."""
    with OllamaServer(["llama3.2:3b"]) as server:
        target = tmp_path / "detected.yaml"
        out = CliRunner().invoke(app, ["init", str(target), "--detect", "--endpoint", f"0.0.0.0:{server.port}"])
        assert out.exit_code == 0, out.output
    assert f"endpoint: http://127.0.0.1:{server.port}\n" in target.read_text()
    assert "0.0.0.0" not in target.read_text()


@pytest.mark.parametrize(("env", "noted"), [
    ({"HTTP_PROXY": "http://user:secretpw@proxy.corp:3128"}, True),
    ({"https_proxy": "http://proxy.corp:3128", "ALL_PROXY": "socks5://proxy.corp:1080"}, True),
    ({"HTTP_PROXY": "http://proxy.corp:3128", "NO_PROXY": "127.0.0.0/8,.corp"}, True),  # httpx reads no CIDR
    ({"HTTP_PROXY": "http://proxy.corp:3128", "no_proxy": "localhost, 127.0.0.1"}, False),
    ({"HTTPS_PROXY": "http://proxy.corp:3128"}, False),  # the gateway's URL is http://: not proxied by it
    ({}, False),
])
def test_serve_says_when_its_clients_would_go_through_a_proxy(tmp_path: Path, env: dict[str, str],
                                                              noted: bool) -> None:
    """A corporate HTTP_PROXY in the shell: `OpenAI(base_url="http://127.0.0.1:8765/v1")` sent the gateway's requests
    to the proxy (httpx proxies loopback unless NO_PROXY names it: httpx/_utils.py get_environment_proxies) and said
    only "Connection error." while serve ran. serve now says so as it starts (here on a taken port, where it stops
    next); the proxy's URL, which may carry a password, is never shown. The cases without a note are guards."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = _config(tmp_path, "models:\n  m: {provider: ollama, model: x}\nagents:\n  chat: {primary: m}\n")
        clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        done = subprocess.run([sys.executable, "-m", "modelyard", "serve", "--config", str(config), "--port", str(port),
                               "--no-keep-warm"], capture_output=True, text=True, timeout=120,
                              env={**clean, **env, "MODELYARD_DATA_DIR": str(tmp_path / "d")})
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and "already in use" in said, said
    assert ("NO_PROXY does not name 127.0.0.1" in said) is noted, said
    assert "secretpw" not in said and "proxy.corp" not in said
    if noted:
        assert f"http://127.0.0.1:{port}" in said and "NO_PROXY=127.0.0.1,localhost,::1" in said


def test_a_config_in_the_working_directory_that_is_not_read_is_named(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp examples/default.yaml ./config.yaml`, edited in the project's directory, as LiteLLM's proxy reads it: every
    command read ~/.config/modelyard/config.yaml and `models` listed its models without a word of the other file."""
    user = tmp_path / "xdg" / "modelyard"
    user.mkdir(parents=True)
    (user / "config.yaml").write_text(_DETECTED + f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n", encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("models:\n  mine: {provider: ollama, model: x}\nagents:\n  chat: {primary: "
                                         "mine}\n", encoding="utf-8")
    (project / "docker-compose.yml").write_text("services: {}\n", encoding="utf-8")
    monkeypatch.chdir(project)
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    out = CliRunner().invoke(app, ["models", "--no-reach"])
    said = " ".join(out.output.split())
    assert f"config: read {user / 'config.yaml'}; ./config.yaml here is not read" in said, said
    assert "modelyard --config ./config.yaml COMMAND" in said
    guard = CliRunner().invoke(app, ["--config", "config.yaml", "models", "--no-reach"])  # guard: the one read
    assert "here is not read" not in guard.output


def test_init_detect_endpoint_naming_an_ollama_with_nothing_pulled_says_pull_one(tmp_path: Path) -> None:
    """`init --detect --endpoint URL` naming a running Ollama with nothing pulled: its own line said "0 model(s)",
    then the error was about 'connect_error', wrong hosts and ports and OLLAMA_HOST=0.0.0.0 — for a server that
    had answered. Every named server answered, so the fix is the pull, said alone."""
    with OllamaServer([], chat_models=[]) as server:
        out = CliRunner().invoke(app, ["init", str(tmp_path / "c.yaml"), "--detect", "--endpoint", server.url])
    said = " ".join(out.output.split())
    assert out.exit_code == 1 and not (tmp_path / "c.yaml").exists(), said
    assert f"{server.url} answered but serves no chat model: pull one on that server — `ollama pull" in said, said
    assert "connect_error" not in said and "OLLAMA_HOST" not in said, said


@pytest.mark.parametrize("served", [[], ["nomic-embed-text:latest"]])
def test_init_detect_with_ollama_running_and_no_chat_model_says_pull_one(tmp_path: Path, served: list[str]) -> None:
    """A fresh Ollama, running, nothing pulled yet (or only an embedding model, pulled for RAG): `init --detect` said
    "start Ollama with `ollama serve` and `ollama pull` a model" — it was running, and had answered on the line
    above. The fake lists what it is given; an embedding model is refused for chat as Ollama does."""
    with OllamaServer(served, chat_models=[], embed_models=served) as server:
        out = CliRunner().invoke(app, ["init", str(tmp_path / "c.yaml"), "--detect"],
                                 env={"OLLAMA_HOST": f"127.0.0.1:{server.port}"})
    said = " ".join(out.output.split())
    assert out.exit_code == 1, said
    assert f"{server.url} answered but serves no chat model" in said and "ollama pull" in said, said
    assert "ollama serve" not in said
    if served:
        assert "nomic-embed-text:latest: an embedding model" in said
    assert not (tmp_path / "c.yaml").exists()


def test_init_help_says_endpoint_alone_detects() -> None:
    """`init --help` said "--endpoint: with --detect: …", so the README's `init --detect --endpoint gpu-box` read as if
    the two were needed together and an --endpoint alone did nothing; it detects (cli/setup.py: detect or endpoint)."""
    out = CliRunner().invoke(app, ["init", "--help"], env={"COLUMNS": "300"})
    assert "(implies --detect)" in " ".join(out.output.split())


@pytest.mark.parametrize("in_dotenv", [False, True])
def test_a_missing_telegram_token_says_where_one_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            in_dotenv: bool) -> None:
    """The README's Telegram step, token not exported yet: it said "set the environment variable TELEGRAM_BOT_TOKEN"
    and not where a token comes from (@BotFather) — nor, with the token in ./.env as other bots' READMEs have it, that
    modelyard does not read that file. The token itself is never shown."""
    project = tmp_path / "project"
    project.mkdir()
    if in_dotenv:
        (project / ".env").write_text("TELEGRAM_BOT_TOKEN=7312345678:AAHk3xYzQ9wErTyUiOpAsDfGhJkLzXcVbNm\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = _config(tmp_path, "models:\n  m: {provider: ollama, model: x}\nagents:\n  chat: {primary: m}\n"
                               "telegram: {allowed_users: [1]}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "telegram", "--local"],
                             env={"MODELYARD_DATA_DIR": str(tmp_path / "d")})
    said = " ".join(out.output.split())
    assert out.exit_code == 2, said
    assert "no Telegram bot token: set the environment variable TELEGRAM_BOT_TOKEN" in said, said
    if in_dotenv:
        assert f"it is in {project / '.env'}, and modelyard reads no .env file" in said
        assert "AAHk3x" not in said
    else:
        assert "@BotFather" in said
