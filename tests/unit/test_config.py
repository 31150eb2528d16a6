"""A wrong config names file, line and key; the CLI exits with status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.config import load_config, parse_config
from modelyard.errors import ConfigError
from modelyard.paths import embedded_default_config, example_file

GOOD = """\
models:
  local:
    provider: ollama
    model: qwen3.5:latest
    max_concurrent: 2
  cloud:
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
agents:
  chat:
    primary: local
    fallbacks: [cloud]
"""


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yaml")
    return info.value


def test_shipped_examples_load() -> None:
    default = load_config(embedded_default_config())
    assert default.agents["writer"].chain == ["claude-haiku", "qwen-coder-0.5b"]
    reference = load_config(example_file("reference-mac64.yaml"))
    assert set(reference.agents) == {"chat", "orchestrator", "engineer", "research", "writer", "utility"}
    assert reference.models["qwen3.5"].max_concurrent == 2
    assert reference.timeouts_for("chat", "qwen3.5").queue == 30


def test_unknown_model_in_chain_names_line_and_key() -> None:
    err = error_of(GOOD.replace("fallbacks: [cloud]", "fallbacks: [gemma]"))
    assert err.line == 12 and err.key == "agents.chat.fallbacks.0"
    assert "unknown model 'gemma'" in str(err) and str(err).startswith("cfg.yaml:12:")


def test_model_twice_in_chain_is_refused() -> None:
    err = error_of(GOOD.replace("fallbacks: [cloud]", "fallbacks: [cloud, local]"))
    assert "appears twice in the chain" in str(err) and err.key == "agents.chat.fallbacks.1"


def test_agent_without_model() -> None:
    err = error_of(GOOD.replace("    primary: local\n", ""))
    assert "has no model" in str(err) and err.line == 10


def test_consumer_cycle_refused() -> None:
    text = GOOD + "    consumers: [helper]\n  helper:\n    primary: local\n    consumers: [chat]\n"
    err = error_of(text)
    assert "consumer cycle" in str(err)


def test_unknown_key_is_an_error_not_ignored() -> None:
    err = error_of(GOOD.replace("    fallbacks: [cloud]", "    fallback: [cloud]"))
    assert err.key == "agents.chat.fallback" and "unknown key" in str(err) and err.line == 12


@pytest.mark.parametrize(("typo", "fix", "key", "suggestion"), [
    ("    fallbacks: [cloud]", "    fallback: [cloud]", "agents.chat.fallback", "fallbacks"),
    ("max_concurrent: 2", "max_concurent: 2", "models.local.max_concurent", "max_concurrent"),
    ("models:", "modles:", "modles", "models"),  # a typo of a required key, not "models is missing"
])
def test_an_unknown_key_names_the_nearest_known_one(typo: str, fix: str, key: str, suggestion: str) -> None:
    err = error_of(GOOD.replace(typo, fix))
    assert err.key == key and f"unknown key '{key.split('.')[-1]}' (did you mean '{suggestion}'?)" in str(err)


def test_an_unknown_key_far_from_every_known_one_gets_no_guess() -> None:
    err = error_of(GOOD.replace("max_concurrent: 2", "max_concurrent: 2\n    colour: blue"))
    assert err.key == "models.local.colour" and str(err).endswith("unknown key 'colour'")


def test_wrong_type_names_the_key() -> None:
    err = error_of(GOOD.replace("max_concurrent: 2", "max_concurrent: lots"))
    assert err.key == "models.local.max_concurrent" and err.line == 5


def test_a_scalar_where_keys_belong_names_the_keys() -> None:
    """`spend_cap: 5` read 'Input should be a valid dictionary or instance of SpendCap'; a token pasted where the
    telegram section belongs is not echoed."""
    err = error_of(GOOD.replace("max_concurrent: 2", "max_concurrent: 2\n    spend_cap: 5"))
    assert err.key == "models.local.spend_cap"
    assert str(err).endswith("expected keys and values here (usd, per: e.g. {usd: …}), got a number"), str(err)
    err = error_of(GOOD + "telegram: 123456:AAF-secret-token\n")
    assert err.key == "telegram" and "got text" in str(err) and "secret" not in str(err), str(err)


def test_inline_api_key_refused_without_echoing_it() -> None:
    err = error_of(GOOD.replace("api_key_env: ANTHROPIC_API_KEY", "api_key: sk-ant-secret-123456789"))
    assert "environment variable" in str(err) and "sk-ant-secret" not in str(err)
    assert err.key == "models.cloud.api_key" and err.line == 8


def test_invalid_yaml_has_a_line() -> None:
    err = error_of("models:\n  a: [unclosed\nagents: {}\n")
    assert err.line is not None and "YAML" in str(err)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config("/nonexistent/modelyard.yaml")


def test_a_tab_says_yaml_wants_spaces() -> None:
    err = error_of(GOOD.replace("  chat:", "\tchat:"))
    assert err.line == 10 and "indents with spaces" in str(err)


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a directory, not a config file") as info:
        load_config(tmp_path)
    assert "Errno" not in str(info.value) and str(tmp_path / "config.yaml") in str(info.value)


def test_a_file_named_by_the_variable_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale $MODELYARD_CONFIG said only '/old/path.yaml: file not found', not where that name came from."""
    from modelyard.runtime import load

    monkeypatch.setenv("MODELYARD_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"gone.yaml: file not found \(the file \$MODELYARD_CONFIG names\)"):
        load()
    with pytest.raises(ConfigError) as given:  # named on the command line: nothing to add
        load(tmp_path / "other.yaml")
    assert "MODELYARD_CONFIG" not in str(given.value)


def test_cli_exits_2_on_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("fallbacks: [cloud]", "fallbacks: [nope]"))
    result = subprocess.run([sys.executable, "-m", "modelyard", "models", "--config", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{bad}:12: agents.chat.fallbacks.0: unknown model 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "line", "key"), [
    (GOOD + "agents:\n  other:\n    primary: cloud\n", 13, "agents"),  # a second section: chat was dropped
    (GOOD.replace("    max_concurrent: 2\n", "    max_concurrent: 2\n    model: qwen3:8b\n"), 6, "models.local.model"),
], ids=["second_agents_section", "key_twice_in_a_model"])
def test_a_key_given_twice_is_refused_not_silently_overwritten(text: str, line: int, key: str) -> None:
    err = error_of(text)
    assert (err.line, err.key) == (line, key) and "duplicate key" in str(err) and "first at line" in str(err)


def test_a_second_section_of_one_name_says_to_merge_it_into_the_first() -> None:
    """README's small-team steps say to add `log: {url: …}` to the file `init` wrote, which has `log: {store_text:
    true}` already: the error named the duplicate only, and deleting either loses a setting. Two sections are to be
    merged, two plain values to be reduced to one (found by the newcomer5 walk)."""
    text = GOOD + "log:\n  store_text: true\nstate: redis://127.0.0.1:6379/0\nlog:\n  url: postgresql://x@h/db\n"
    said = str(error_of(text))
    assert "move the lines under this 'log:' into the one at line 13, and delete this line" in said, said
    said = str(error_of(GOOD + "default_agent: chat\ndefault_agent: chat\n"))
    assert said.endswith("silently dropping the first: keep one of the two"), said


def test_an_unknown_consumer_lists_the_agents() -> None:
    """'unknown consumer' named the typo only; an unknown model in a chain lists the models."""
    err = error_of(GOOD + "    consumers: [utilty]\n  utility:\n    primary: local\n")
    assert err.key == "agents.chat.consumers.0" and err.line == 13
    assert "unknown consumer 'utilty' (agents: chat, utility; or user)" in str(err)


@pytest.mark.parametrize(("text", "line", "key", "said"), [
    (GOOD + "default_agent: chta\n", 13, "default_agent",
     "'chta' is not an agent in 'agents:' (agents: chat) (did you mean 'chat'?)"),
    (GOOD.replace("  chat:", "  cht:") + "default_agent: chat\n", 13, "default_agent",  # the typo in the agent's entry
     "'chat' is not an agent in 'agents:' (agents: cht) (did you mean 'cht'?)"),
    (GOOD + "orchestration:\n  agent: orchestrater\n", 14, "orchestration.agent",
     "'orchestrater' is not an agent in 'agents:' (agents: chat)"),
    (GOOD.replace("fallbacks: [cloud]", "fallbacks: [clod]"), 12, "agents.chat.fallbacks.0",
     "unknown model 'clod' (configured models: cloud, local) (did you mean 'cloud'?)"),
    (GOOD + "    consumers: [utilty]\n  utility:\n    primary: local\n", 13, "agents.chat.consumers.0",
     "(agents: chat, utility; or user) (did you mean 'utility'?)"),
], ids=["default_agent", "typo_in_the_agents_entry", "orchestrator", "chain", "consumer"])
def test_a_name_that_should_be_an_agents_or_a_models_lists_them_and_the_nearest(text: str, line: int, key: str,
                                                                                  said: str) -> None:
    """default_agent, orchestration.agent (and .default, telegram.agent) said only "'chat' is not an agent in
    'agents:'" — with the typo in the agent's own entry ('cha:' under agents) nothing pointed at it; a chain's or a
    consumer's near miss was not named either."""
    err = error_of(text)
    assert (err.line, err.key) == (line, key) and said in str(err), str(err)


@pytest.mark.parametrize("text", ["", "\n\n", "# my modelyard config\n"])
def test_an_empty_file_is_called_empty(text: str) -> None:
    """An empty file (an editor's new file, a failed redirect) said 'expected a mapping with …'."""
    err = error_of(text)
    assert str(err).startswith("cfg.yaml:1: the file is empty") and "modelyard init" in str(err)


@pytest.mark.parametrize(("old", "new", "key", "said"), [
    ("fallbacks: [cloud]", "fallbacks: cloud", "agents.chat.fallbacks",
     "expected a list here, e.g. [a, b] (or one item: [a]), got text"),
    ("max_concurrent: 2", "max_concurrent: two", "models.local.max_concurrent",
     "expected a whole number here, got text"),
    ("max_concurrent: 2", "max_concurrent: 1.5", "models.local.max_concurrent",
     "expected a whole number here, got a number"),
    ("max_concurrent: 2", "max_concurrent: 2\n    memory_gb: lots", "models.local.memory_gb",
     "expected a number here, got text"),
    ("models:\n  local:", "models:\n  other:\n  local:", "models.other", "got nothing (the key has no value)"),
])
def test_a_value_of_the_wrong_kind_says_what_to_write(old: str, new: str, key: str, said: str) -> None:
    """pydantic's 'Input should be a valid list' / 'unable to parse string as an integer' / 'got something else'
    said what was wrong in its own words; `fallbacks: cloud` (no brackets) is the commonest slip."""
    err = error_of(GOOD.replace(old, new, 1))
    assert err.key == key and str(err).endswith(said), str(err)


def test_an_endpoint_without_its_scheme_is_refused_at_load() -> None:
    """`endpoint: localhost:11434` loaded, `models` showed the model available, and every request failed as
    connect_error ('NonHttpUrlClientError')."""
    err = error_of(GOOD.replace("model: qwen3.5:latest", "model: qwen3.5:latest\n    endpoint: localhost:11434"))
    assert err.key == "models.local.endpoint" and err.line == 5
    assert "expected a URL with its scheme, e.g. http://127.0.0.1:11434" in str(err)
    assert parse_config(GOOD.replace("model: qwen3.5:latest", "model: qwen3.5:latest\n    endpoint: "
                                     "https://ollama.internal:11434")).models["local"].endpoint


def test_an_error_with_brackets_keeps_them_on_the_terminal(tmp_path: Path) -> None:
    """The CLI printed errors as rich markup: 'e.g. [a, b]' or a config's '[utility]' vanished as style tags."""
    config = tmp_path / "c.yaml"
    config.write_text(GOOD.replace("fallbacks: [cloud]", "fallbacks: cloud"))
    out = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "models", "--no-reach"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "e.g. [a, b] (or one item: [a])" in out.stderr, out.stderr


def test_a_telegram_name_where_the_user_id_belongs_says_how_to_find_the_id() -> None:
    """`allowed_users: ['@me']` said 'expected a whole number here'; `[@me]` said only that '@' cannot start a
    token, then (newcomer walk 12) to quote it — and quoted, the ids part: it says the ids part at once."""
    quoted = error_of(GOOD + "telegram:\n  allowed_users: ['@me']\n")
    assert quoted.key == "telegram.allowed_users" and quoted.line == 14
    assert "Telegram user ids are numbers, not @names" in str(quoted) and "ignored message from user N" in str(quoted)
    bare = error_of(GOOD + "telegram:\n  allowed_users: [@me]\n")
    assert bare.line == 14 and "Telegram user ids are numbers, not @names" in str(bare)
    assert "put the value in quotes" not in str(bare)
    assert parse_config(GOOD + "telegram:\n  allowed_users: ['123', 456]\n").telegram.allowed_users == [123, 456]
