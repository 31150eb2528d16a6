"""A newcomer's first hour, round 8: someone whose Ollama runs on another machine, following the README from the top.

Each case is what such a person types first — `modelyard --help`, `ask` before any config, `init --endpoint` with the
server's name as OLLAMA_HOST takes it, an endpoint written without its port — run through the CLI; each now says the
step they missed or the line to write, where it said a cause they could not act on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()


def _said(out: object) -> str:
    return " ".join(str(getattr(out, "output", "")).split())


def test_help_says_where_to_start() -> None:
    """`modelyard --help` listed twenty commands — ask first, init eighth — and nothing said which comes first; `ask`
    before `init` reads the embedded default's models, not the user's (the next test)."""
    out = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    said = _said(out)
    assert out.exit_code == 0, said
    assert "First steps: `modelyard init --detect` writes a config from the model servers on this machine" in said
    assert "`--endpoint HOST[:PORT]` for one on another" in said and '`modelyard ask "hello"`' in said


@pytest.fixture
def no_config_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with nothing written yet: an empty config home, no model fetched, no key (conftest unsets it)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("MODELYARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    return tmp_path / "config" / "modelyard" / "config.yaml"


def test_ask_before_init_says_the_embedded_default_was_read(no_config_yet: Path) -> None:
    """The README's first command, by someone whose models are on their own Ollama: it said "qwen-coder-0.5b: GGUF file
    not found (run `modelyard fetch-model`)" and "ANTHROPIC_API_KEY is not set" — models they never chose, from a file
    they never saw — and nothing of the config it read (pi-hole/api#226: "It is useful to know that you are using a
    default config. It would save me an hour"; sblauth/cashocs#100)."""
    out = runner.invoke(app, ["ask", "--local", "--agent", "chat", "hello"])
    said = _said(out)
    assert out.exit_code == 1, said
    assert f"config: no file at {no_config_yet} yet, so the embedded default's" in said, said
    assert "`modelyard init --detect` writes one from the model servers on this machine" in said
    assert "`--endpoint HOST[:PORT]` for one on another machine" in said
    shown = runner.invoke(app, ["models", "--no-reach"], env={"COLUMNS": "200"})
    assert f"config: no file at {no_config_yet} yet" in _said(shown), _said(shown)


def test_a_config_of_ones_own_is_not_called_the_default(no_config_yet: Path) -> None:
    """Guard (passes on the old code too): the note is for the embedded default only."""
    no_config_yet.parent.mkdir(parents=True)
    no_config_yet.write_text(yaml.safe_dump({"models": {"m": {"provider": "ollama", "endpoint": "http://127.0.0.1:9"}},
                                             "agents": {"chat": {"primary": "m"}}}))
    shown = runner.invoke(app, ["models", "--no-reach"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, _said(shown)
    assert "embedded default" not in _said(shown)


def test_init_endpoint_with_a_host_alone_asks_the_servers_usual_ports(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`modelyard init --detect --endpoint gpu-box` — the server's name as OLLAMA_HOST takes it, which Ollama reads as
    port 11434 (envconfig.getOllamaHost in ollama/ollama: 80 only after an explicit http://) — asked http://gpu-box,
    port 80: "nothing found (connect_error)", exit 1, with Ollama right there. A host alone is asked at each server
    kind's usual port now: Ollama's (here the port OLLAMA_HOST gives this machine's Ollama clients), llama-server's
    8080, LM Studio's 1234, vLLM's 8000."""
    from tests.fakes.ollama import OllamaServer

    target = tmp_path / "config.yaml"
    with OllamaServer(["llama3.2:3b"]) as ollama:
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{ollama.port}")
        out = runner.invoke(app, ["init", str(target), "--detect", "--endpoint", "localhost"])
    said = _said(out)
    assert out.exit_code == 0, said
    assert f"http://localhost:{ollama.port}: Ollama 0.12.6: 1 model(s)" in said
    assert "http://localhost:8080: nothing found" in said and "http://localhost: " not in said
    assert yaml.safe_load(target.read_text())["models"]["llama3.2-3b"]["endpoint"] == f"http://localhost:{ollama.port}"


@pytest.mark.parametrize(("provider", "port"), [("ollama", 11434), ("openai", 8080)])
def test_an_http_endpoint_without_its_port_says_the_port_its_server_uses(tmp_path: Path, provider: str,
                                                                         port: int) -> None:
    """`endpoint: http://gpu-box` (the host, as a browser address) is port 80 — for curl and for Ollama's own client
    too — and `models` said only "nothing listening on gpu-box:80"; it says the port such a server listens on and the
    line to write. Nothing listens on this machine's port 80 here."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"models": {"m": {"provider": provider, "model": "x",
                                                       "endpoint": "http://127.0.0.1"}},
                                      "agents": {"chat": {"primary": "m"}}}))
    out = runner.invoke(app, ["--config", str(config), "models"], env={"COLUMNS": "250"})
    said = _said(out)
    assert "m: unreachable: nothing listening on 127.0.0.1:80" in said, said
    assert (f"the endpoint names no port, so http's 80 was asked — {provider} servers listen on {port} unless told "
            f"otherwise: write endpoint: http://127.0.0.1:{port}") in said


def test_an_endpoint_with_its_port_gets_no_port_advice(tmp_path: Path) -> None:
    """Guard (passes on the old code too): a port written is the port meant."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"models": {"m": {"provider": "ollama", "endpoint": "http://127.0.0.1:9"}},
                                      "agents": {"chat": {"primary": "m"}}}))
    said = _said(runner.invoke(app, ["--config", str(config), "models"], env={"COLUMNS": "250"}))
    assert "nothing listening on 127.0.0.1:9" in said and "names no port" not in said


def test_init_with_a_named_server_that_serves_nothing_says_why_not_to_name_one(tmp_path: Path) -> None:
    """`init --detect --endpoint gpu-box:11434` with nothing answering there said "no model server here serves a chat
    model (… or name a server with --endpoint URL)" — to someone who had named one, about "here". It says what the
    named server's silence means: a wrong host or port, or an Ollama listening on its own machine only, the first
    thing peers' users with a remote Ollama meet (ollama/ollama#1579 answered with the FAQ's "expose Ollama on your
    network": OLLAMA_HOST=0.0.0.0; ollama/ollama-python#304)."""
    from tests.integration.test_real_model import free_port

    target = tmp_path / "config.yaml"
    nowhere = f"127.0.0.1:{free_port()}"
    out = runner.invoke(app, ["init", str(target), "--detect", "--endpoint", nowhere])
    said = _said(out)
    assert out.exit_code == 1 and not target.exists(), said
    assert f"http://{nowhere}: nothing found (connect_error)" in said
    assert "no server named with --endpoint serves a chat model" in said and "here" not in said.split("above")[0]
    assert "Ollama does unless started with OLLAMA_HOST=0.0.0.0 there" in said
