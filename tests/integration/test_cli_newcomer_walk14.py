"""Frictions of the fourteenth newcomer walk: `ask` and `chat` with one's own servers (the fake Anthropic and
OpenAI-compatible servers), a key pasted wrong or exported under a near name, and the same question asked again
after `/agent X`. Each test here failed on the code before it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from tests.fakes import AnthropicServer, OpenAIServer
from tests.integration.test_cli_newcomer_walk13 import QUESTION, default_config, labels_in
from typer.testing import CliRunner

from modelyard.cli import app


def write_config(tmp_path: Path, anthropic_url: str, local_url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"models:\n  claude: {{provider: anthropic, model: claude-haiku-4-5, api_key_env: ANTHROPIC_API_KEY, "
        f"endpoint: '{anthropic_url}', price: {{input: 1, output: 5}}}}\n"
        f"  local: {{provider: openai, model: m, endpoint: '{local_url}/v1'}}\n"
        "agents:\n  writer: {primary: claude, fallbacks: [local]}\n"
        f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    return config


@pytest.mark.parametrize(("env", "said"), [
    ({"ANTHROPIC_API_KEY": "sk-ant-pasted-wrong"},
     "claude was passed over (auth_error): HTTP 401 authentication_error: invalid x-api-key"),
    ({"ANTHROPIC_KEY": "sk-ant-right"},
     "claude was passed over (missing_credentials): environment variable ANTHROPIC_API_KEY is not set "
     "(ANTHROPIC_KEY is: did you mean it? then models.claude.api_key_env: ANTHROPIC_KEY)"),
], ids=["refused", "near-name"])
def test_an_answer_from_a_fallback_says_the_setup_mistake_that_passed_the_primary_over(
        tmp_path: Path, env: dict[str, str], said: str) -> None:
    """A key pasted wrong, or exported as ANTHROPIC_KEY: the answer came from the local fallback, every time, and the
    route line said only `writer → local (after claude: auth_error)` — the why and what to do were in the log's row
    and `modelyard models`, which nobody whose request was answered opens. Now the answered request says it once,
    under the route line (variable names only, never the key)."""
    with AnthropicServer(api_key="sk-ant-right") as anthropic, OpenAIServer(["m"], reply_text="local answer") as local:
        config = write_config(tmp_path, anthropic.url, local.url)
        out = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "writer", "hi"],
                                 env={"COLUMNS": "400", "ANTHROPIC_API_KEY": None, "ANTHROPIC_KEY": None, **env})
        # no key on purpose (the embedded default's Claude Haiku without one): the route line's word is all, as before
        keyless = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "writer", "hi"],
                                     env={"COLUMNS": "400", "ANTHROPIC_API_KEY": None, "ANTHROPIC_KEY": None})
    assert keyless.exit_code == 0 and "(after claude: missing_credentials)" in keyless.output, keyless.output
    assert "passed over" not in keyless.output, keyless.output
    text = " ".join(out.output.split())
    assert out.exit_code == 0 and "local answer" in text, text
    assert said in text, text
    assert "sk-ant-pasted-wrong" not in out.output and "sk-ant-right" not in out.output


def test_same_question_again_after_switching_agent_labels_the_routed_question(tmp_path: Path) -> None:
    """`chat` answered a routed question, said "if your last message should have gone to research, send it again:
    that teaches routing" — and the newcomer typed "same question again" (or retyped it with a typo). Neither was
    taken for the question asked again (words compared exactly), so no label was made."""
    with OpenAIServer(reply_text="Adam, Mia, Zoe") as server:
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump(default_config(tmp_path, server.url)))
        out = CliRunner().invoke(app, ["chat", "--config", str(config), "--local"], env={"COLUMNS": "250"},
                                 input=f"{QUESTION}\n/agent research\nsame question again\n/quit\n")
    said = " ".join(out.output.split())
    assert out.exit_code == 0, said
    [label] = labels_in(tmp_path / "log.sqlite")
    assert label[:3] == (QUESTION, "research", "chat"), label
    assert "your question belonged to research" in said, said


def test_models_says_a_model_id_a_vllm_does_not_serve_before_a_request_fails_on_it(tmp_path: Path) -> None:
    """vLLM serves a model under the name it lists — its path, `Qwen/Qwen2.5-7B-Instruct`, unless
    `--served-model-name` says otherwise — and answers any other name with a 404 ("The model `x` does not exist",
    vllm/entrypoints/openai/serving_engine.py `_check_model`). A newcomer writes the short name: `modelyard models`
    said "available", and every request then fell back with model_missing. Told by the listing's `owned_by: "vllm"`;
    a server that answers any name (llama-server) is not judged by its listing."""
    with OpenAIServer(["Qwen/Qwen2.5-7B-Instruct"]) as vllm, OpenAIServer(["whatever.gguf"]) as llama:
        vllm.owned_by = "vllm"
        config = tmp_path / "config.yaml"
        config.write_text(
            f"models:\n  qwen: {{provider: openai, model: qwen2.5-7b-instruct, endpoint: '{vllm.url}/v1'}}\n"
            f"  right: {{provider: openai, model: Qwen/Qwen2.5-7B-Instruct, endpoint: '{vllm.url}/v1'}}\n"
            f"  other: {{provider: openai, model: qwen2.5-7b-instruct, endpoint: '{llama.url}/v1'}}\n"
            "agents:\n  chat: {primary: qwen, fallbacks: [right, other]}\n"
            f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        out = CliRunner().invoke(app, ["--config", str(config), "models"], env={"COLUMNS": "400"})
    text = " ".join(out.output.split())
    rows = {line.split()[0]: line for line in out.output.splitlines() if line.split()}
    assert "missing on its server" in rows["qwen"], out.output
    assert "available" in rows["right"] and "available" in rows["other"], out.output
    assert (f"qwen: missing on its server: 'qwen2.5-7b-instruct' is not served by the vLLM at {vllm.url}/v1, which "
            "answers only the names it lists (Qwen/Qwen2.5-7B-Instruct): write models.qwen.model: "
            "Qwen/Qwen2.5-7B-Instruct (vLLM's --served-model-name sets a shorter one)") in text, text


def test_a_toml_config_is_named_as_toml_not_as_yaml_jargon(tmp_path: Path) -> None:
    """`modelyard --config config.toml ask …` with a TOML file (the format of several tools' configs): "not valid YAML:
    expected '<document start>', but found '<scalar>'" — PyYAML's words, nothing of what the file is or what to
    write. Now the format is named, with what modelyard's config holds and the command that writes one."""
    config = tmp_path / "config.toml"
    config.write_text('# my models\n[models.local]\nprovider = "ollama"\nmodel = "qwen3:8b"\n\n[agents.chat]\n'
                      'primary = "local"\n')
    out = CliRunner().invoke(app, ["--config", str(config), "ask", "hi"], env={"COLUMNS": "400"})
    text = " ".join(out.output.split())
    assert out.exit_code == 2, text
    assert (f"{config}:2: not valid YAML: this looks like a TOML or INI file ([section] headers, key = value lines), "
            "not YAML: modelyard's config has 'models:'") in text, text
    assert "document start" not in text and "Traceback" not in text, text


def test_ask_one_model_alone_from_the_command_line(tmp_path: Path) -> None:
    """`modelyard ask --agent qwen3-14b` (a model `models` lists, a fallback of every agent) said only "'qwen3-14b' is
    a model, not an agent; … use it", and `--agent model:qwen3-14b` — the gateway's name for one model alone — "unknown
    agent": no way to try one model from the command line, as `ollama run MODEL` does. Now model:NAME asks it
    alone (no agent's system prompt, logged under model:NAME as the gateway logs it), and the refusal says so."""
    with AnthropicServer(api_key="sk-ant-right") as anthropic, OpenAIServer(["m"], reply_text="local answer") as local:
        config = write_config(tmp_path, anthropic.url, local.url)
        refused = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "local", "hi"],
                                     env={"COLUMNS": "400"})
        asked = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "model:local", "hi"],
                                   env={"COLUMNS": "400"})
        sent = local.last_request.json
    assert refused.exit_code == 2, refused.output
    assert "'local' is a model, not an agent; writer uses it; --agent model:local asks it alone" in \
        " ".join(refused.output.split()), refused.output
    assert asked.exit_code == 0 and "local answer" in asked.output, asked.output
    assert "model:local → local" in asked.output, asked.output
    assert sent["messages"] == [{"role": "user", "content": "hi"}], sent
    with closing(sqlite3.connect(tmp_path / "log.sqlite3")) as db:
        assert db.execute("SELECT agent, model FROM requests").fetchall() == [("model:local", "local")]
