"""A newcomer's first hour, walked through the real CLI: a config adapted from another tool's habits, a chain copied
from the shipped configs, a `serve` option typed as another tool takes it. Each answer names the file, the line and
the key, says what to write, exits 2 and shows no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config.loader import load_config
from modelyard.paths import example_file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my.yaml"
    path.write_text(text + f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    return path


def refused(out, *words: str) -> str:
    """A bad-input error: exit 2, every word in it, no traceback."""
    assert out.exit_code == 2, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert "Traceback" not in out.output
    for word in words:
        assert word in out.output, out.output
    return str(out.output)


# --- provider: openai with a paid API's key and no endpoint -------------------------------------------------------

@pytest.mark.parametrize(("variable", "service", "url"), [
    ("OPENAI_API_KEY", "OpenAI", "https://api.openai.com/v1"),  # platform.openai.com API reference
    ("OPENROUTER_API_KEY", "OpenRouter", "https://openrouter.ai/api/v1"),  # openrouter.ai/docs quickstart
    ("GROQ_API_KEY", "Groq", "https://api.groq.com/openai/v1"),  # console.groq.com/docs/openai
])
def test_a_paid_apis_key_without_its_endpoint_names_the_endpoint(tmp_path: Path, variable: str, service: str,
                                                                 url: str) -> None:
    """`provider: openai, model: gpt-4o, api_key_env: OPENAI_API_KEY` is how the OpenAI SDK, LiteLLM and aider are
    configured: no base URL means OpenAI's (api7/aisix#1018 makes the same fallback, keyed on the vendor; the
    OpenAI SDK's `base_url` defaults to https://api.openai.com/v1). Here no endpoint is a server on this machine
    (providers/openai.py DEFAULT_ENDPOINT): it loaded as a *local*, free model and sent the key to 127.0.0.1:8080."""
    config = write(tmp_path, f"models:\n  gpt:\n    provider: openai\n    model: gpt-4o\n    api_key_env: {variable}\n"
                             "agents:\n  chat: {primary: gpt}\n")
    said = refused(CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"], env={variable: "sk-x"}),
                   "my.yaml:2: models.gpt: no endpoint", f"{variable} is {service}'s key",
                   f"write endpoint: {url}")
    assert "sk-x" not in said
    config.write_text(config.read_text().replace("    api_key_env:", f"    endpoint: {url}\n    api_key_env:"))
    assert load_config(config).models["gpt"].billed  # written so, it is the paid API it is
    # llama-server started with `--api-key` on its default port: a key of one's own, no endpoint — that is the
    # server on this machine, and stays so
    config.write_text(config.read_text().replace(f"    endpoint: {url}\n", "").replace(variable, "LLAMA_KEY"))
    assert load_config(config).models["gpt"].is_local


def test_the_endpoint_said_is_where_a_model_without_one_goes() -> None:
    """The refusal says where the request would have gone: the OpenAI-compatible provider's own default."""
    from modelyard.config.schema import ModelConfig
    from modelyard.providers.openai import DEFAULT_ENDPOINT

    with pytest.raises(ValueError, match=f"asks a server on this machine \\({DEFAULT_ENDPOINT},"):
        ModelConfig.model_validate({"provider": "openai", "model": "gpt-4o", "api_key_env": "OPENAI_API_KEY"})


# --- a chain naming a model no section defines ---------------------------------------------------------------------

def test_a_model_copied_from_a_shipped_config_says_its_entry(tmp_path: Path) -> None:
    """An agent copied from the default config (`fallbacks: [claude-haiku]`) into a config of one's own models:
    it said only "unknown model 'claude-haiku' (configured models: local)", which reads as if the chain had to
    change; the entry to add is the shipped one (examples/default.yaml)."""
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: 'qwen3:8b'}\n"
                             "agents:\n  writer: {primary: local, fallbacks: [claude-haiku]}\n")
    refused(CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"]),
            "my.yaml:4: agents.writer.fallbacks.0: unknown model 'claude-haiku' (configured models: local): add it "
            "under 'models:' as the shipped configs define it — claude-haiku: {provider: anthropic, model: "
            "claude-haiku-4-5, api_key_env: ANTHROPIC_API_KEY} — or take it out of the chain")
    shipped = example_file("default.yaml").read_text()
    assert "claude-haiku:\n    provider: anthropic\n    model: claude-haiku-4-5" in shipped  # the entry said is it


def test_a_model_no_config_knows_says_to_define_it_or_drop_it(tmp_path: Path) -> None:
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: 'qwen3:8b'}\n"
                             "agents:\n  chat:\n    primary: local\n    fallbacks: [mixtral-big]\n")
    said = refused(CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"]),
                   "my.yaml:6: agents.chat.fallbacks.0: unknown model 'mixtral-big' (configured models: local): "
                   "define it under 'models:' (its provider and model), or take it out of the chain")
    assert "did you mean" not in said
    # a typo of a configured model keeps its one hint: the nearest name, not an entry to add
    config.write_text(config.read_text().replace("mixtral-big", "locl"))
    said = refused(CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"]),
                   "unknown model 'locl' (configured models: local) (did you mean 'local'?)")
    assert "take it out" not in said


# --- serve's options ------------------------------------------------------------------------------------------------

def test_serve_refuses_an_unknown_log_level_before_starting(tmp_path: Path) -> None:
    """`serve --log-level loud` (or `warn`, as Python's logging spells it) said where the gateway listens and then
    ended in uvicorn's KeyError traceback; the levels are uvicorn's LOG_LEVELS, listed in --help."""
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                             "agents:\n  chat: {primary: local}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "serve", "--no-keep-warm", "--port", "1",
                                   "--log-level", "loud"], env={"COLUMNS": "200"})
    said = refused(out, "'loud' is not one of 'critical', 'error', 'warning', 'info', 'debug', 'trace'")
    assert "modelyard gateway on" not in said
    helped = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert "critical, error, warning, info, debug or trace" in helped.output


def test_serve_log_levels_are_uvicorns() -> None:
    """The choices offered are exactly the names uvicorn takes (a level it lacks would be its KeyError again)."""
    from uvicorn.config import LOG_LEVELS

    from modelyard.cli.serve_cmd import LogLevel

    assert {level.value for level in LogLevel} == set(LOG_LEVELS)


# --- models named on the command line -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["warmup"], ["probe", "--only", "reachable"], ["bench", "--models"]],
                         ids=lambda c: c[0])
def test_a_model_named_on_the_command_line_as_its_server_names_it_is_pointed_to_its_entry(
        tmp_path: Path, command: list[str]) -> None:
    """`modelyard warmup qwen3.5:latest` — the name `ollama ps` and `ollama list` show — for the entry `qwen3.5`:
    warmup said only "unknown model(s): qwen3.5:latest", probe and bench the configured names without saying which
    was meant; a near miss (`gemma4` for `gemma4-26b`) got no "did you mean" from any of them."""
    config = write(tmp_path, "models:\n  qwen3.5: {provider: ollama, model: 'qwen3.5:latest', endpoint: "
                             "'http://127.0.0.1:9'}\n  gemma4-26b: {provider: ollama, model: 'gemma4:26b', endpoint: "
                             "'http://127.0.0.1:9'}\nagents:\n  chat: {primary: qwen3.5, fallbacks: [gemma4-26b]}\n")
    if command[0] == "bench":
        (tmp_path / "bench.yaml").write_text("agents:\n  chat:\n    tasks:\n      - id: hi\n        prompt: hi\n"
                                              "        checks:\n          - contains: hi\n")
        command = ["bench", str(tmp_path / "bench.yaml"), "--models"]

    def said(*names: str) -> str:
        if command[0] == "bench":
            out = CliRunner().invoke(app, ["--config", str(config), *command, ",".join(names)], terminal_width=300)
        else:
            out = CliRunner().invoke(app, ["--config", str(config), *command, *names], terminal_width=300)
        return " ".join(refused(out).split())

    assert ("unknown model(s): qwen3.5:latest (configured: qwen3.5, gemma4-26b) — 'qwen3.5:latest' is the "
            "provider's id of 'qwen3.5': name the entry") in said("qwen3.5:latest")
    assert "unknown model(s): gemma4 (configured: qwen3.5, gemma4-26b) — did you mean 'gemma4-26b'?" in said("gemma4")
    assert ("unknown model(s): gemma4, nope (configured: qwen3.5, gemma4-26b) — gemma4: did you mean "
            "'gemma4-26b'?") in said("gemma4", "nope")


# --- another tool's file pasted as the config -----------------------------------------------------------------------

SECRET = "sk-ant-api03-PastedIntoTheAiderFile-0123456789abcdef"


@pytest.mark.parametrize(("text", "said"), [
    # simonw/llm docs/other-models.md, "OpenAI-compatible models": extra-openai-models.yaml is a list of these
    ("- model_id: claude\n  model_name: anthropic/claude-2\n  api_base: \"https://openrouter.ai/api/v1\"\n"
     "  api_key_name: openrouter\n",
     "my.yaml:1: this looks like llm's extra-openai-models.yaml, not a modelyard config: each item becomes a model "
     "under 'models:' named by its model_id, with provider: openai, model: its model_name, endpoint: its api_base"),
    # Aider-AI/aider's sample.aider.conf.yml: its options as keys, a key pasted beside them
    (f"model: sonnet\nopenai-api-base: http://192.168.1.50:11434/v1\nanthropic-api-key: {SECRET}\n",
     "my.yaml:2: openai-api-base: this looks like aider's .aider.conf.yml, not a modelyard config: modelyard's config "
     "has 'models:'"),
], ids=["llm-extra-openai-models", "aider-conf"])
def test_another_tools_model_file_says_what_it_is(tmp_path: Path, text: str, said: str) -> None:
    """llm's list said "expected a mapping with 'models:' and 'agents:'"; aider's file "unknown key 'model' (a setting
    of models.NAME …)", as if one key were misplaced in a modelyard config."""
    path = tmp_path / "my.yaml"
    path.write_text(text)
    out = refused(CliRunner().invoke(app, ["--config", str(path), "models", "--no-reach"], terminal_width=400), said)
    assert SECRET not in out


@pytest.mark.parametrize(("text", "said"), [
    ("agents:\n  chat: {primary: local}\n",
     "my.yaml: models: required key 'models' is missing: each model the agents use, by a name of yours — e.g. models: "
     "{local: {provider: ollama, model: 'qwen3:8b'}} (`modelyard init --detect` writes them"),
    ("models:\n  local: {provider: ollama, model: 'qwen3:8b'}\n",
     "my.yaml: agents: required key 'agents' is missing: each agent by name with the model it uses, a name under "
     "models: — e.g. agents: {chat: {primary: local}}"),
    ("models: {}\nagents: {}\n",
     "my.yaml:1: models: must define at least one entry: each model the agents use, by a name of yours — e.g. models: "
     "{local: {provider: ollama, model: 'qwen3:8b'}}"),
    ("models:\n  local: {provider: ollama, model: 'qwen3:8b'}\nagents: {}\n",
     "my.yaml:3: agents: must define at least one entry: each agent by name with the model it uses, a name under "
     "models: — e.g. agents: {chat: {primary: local}}"),
], ids=["models", "agents", "models-empty", "agents-empty"])
def test_a_missing_section_says_what_goes_in_it(tmp_path: Path, text: str, said: str) -> None:
    """A first config with its models but no agents (as a model list from LiteLLM or llm is), or the reverse: it
    said "required key 'agents' is missing" and nothing of what an agent is here. The example given loads."""
    path = tmp_path / "my.yaml"
    path.write_text(text)
    refused(CliRunner().invoke(app, ["--config", str(path), "models", "--no-reach"], terminal_width=400), said)
    path.write_text("models: {local: {provider: ollama, model: 'qwen3:8b'}}\nagents: {chat: {primary: local}}\n"
                    f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    assert load_config(path).agents["chat"].primary == "local"


def test_check_says_keep_alive_reaches_only_ollama(tmp_path: Path) -> None:
    """A model moved from Ollama to llama-server or vLLM (`provider: openai`) kept its `keep_alive: 30m`: nothing
    sends it there (only providers/ollama.py puts it in a request), and `check` — which warns of `threads:` on an
    Ollama model — said nothing. The Ollama model beside it, which does send it, is not warned about."""
    config = write(tmp_path, "models:\n  served: {provider: openai, model: y, endpoint: 'http://127.0.0.1:9', "
                             "keep_alive: 30m}\n  ollama: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9', "
                             "keep_alive: 30m}\nagents:\n  chat: {primary: served, fallbacks: [ollama]}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "check"], terminal_width=400)
    said = " ".join(out.output.split())
    assert ("warning: model 'served' sets keep_alive, which provider openai sends nowhere: only Ollama loads and "
            "unloads a model by it") in said, said
    assert "model 'ollama' sets keep_alive" not in said


@pytest.mark.parametrize(("setting", "said"), [
    # docs.litellm.ai proxy config: each model_list entry holds litellm_params: {model, api_base, api_key, rpm}
    ("litellm_params:\n      model: ollama/llama3\n      api_base: http://192.168.1.50:11434",
     "my.yaml:3: models.llama3.litellm_params: unknown key 'litellm_params' (LiteLLM nests a model's settings under "
     "litellm_params; here they go straight under the model, one level up: provider, model, endpoint (its api_base), "
     "api_key_env)"),
    ("provider: ollama\n    model: llama3\n    rpm: 60",
     "my.yaml:5: models.llama3.rpm: unknown key 'rpm' (a requests-per-minute limit is LiteLLM's; modelyard bounds a "
     "model by the requests it serves at once (max_concurrent) and those that may wait (max_queue))"),
], ids=["litellm_params", "rpm"])
def test_a_litellm_model_entry_converted_by_hand_says_what_is_left_over(tmp_path: Path, setting: str,
                                                                        said: str) -> None:
    """A model_list entry turned into a `models:` entry by hand kept LiteLLM's nesting or its rate limit: "unknown key
    'litellm_params'" said nothing of where its settings go, "unknown key 'rpm'" nothing of what bounds a model
    here."""
    config = write(tmp_path, f"models:\n  llama3:\n    {setting}\nagents:\n  chat: {{primary: llama3}}\n")
    refused(CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"], terminal_width=400), said)
