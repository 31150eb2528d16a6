"""Config mistakes people make with peer tools' files, round 2: each names the file, the line and the key, says
what to write instead, and never repeats a secret.

Sources of the shapes (what users paste and type):
- LiteLLM's proxy config pasted whole (``model_list`` / ``litellm_settings`` / ``general_settings``):
  https://github.com/Intelligent-Internet/ii-researcher/issues/5 (a LiteLLM config with ``api_key``),
  https://github.com/BerriAI/litellm/issues/8606;
- stray characters in copied lines that the YAML reader rejects while they look like spaces:
  https://github.com/trailofbits/buttercup/pull/328 ("a few spaces … were preventing litellm from … parsing");
- an indentation one space off ("bad indentation of a mapping entry"):
  https://github.com/danny-avila/LibreChat/issues/4939;
- durations and sizes written with their unit, as docker compose (``timeout: 30s``, ``1m30s``) and Ollama
  (``keep_alive: 5m``, ``num_ctx`` "8k" in model cards) write them;
- ``${VAR}`` in a value, as compose files expand and this config does not:
  https://github.com/browser-use/web-ui/pull/633 (``OLLAMA_HOST=${OLLAMA_ENDPOINT:-…}``).
"""

from __future__ import annotations

import pytest

from modelyard.config import parse_config
from modelyard.errors import ConfigError

SECRET = "sk-ant-api03-Round2PastedSecret-0123456789abcdefABCDEF"
OK = "models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n"


def said(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.yaml")
    message = str(info.value)
    assert SECRET not in message and "SECRETPW" not in message, message
    assert message.startswith("config.yaml:"), message
    return message


# --- numbers written with their unit -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # was 'defaults.timeouts.connect: expected a number here, got text'
    (OK + "defaults:\n  timeouts: {connect: 30s}\n", "config.yaml:6: defaults.timeouts.connect: expected a number "
     "here, got '30s': write 30 (seconds)"),
    ("models:\n  a: {provider: ollama, model: x, timeouts: {total: 5m}}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:2: models.a.timeouts.total: expected a number here, got '5m': write 300 (seconds)"),
    ("models:\n  a: {provider: ollama, model: x, timeouts: {first_token: 1500ms}}\nagents:\n  chat: {primary: a}\n",
     "got '1500ms': write 1.5 (seconds)"),
    ("models:\n  a: {provider: ollama, model: x, context: 8k}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:2: models.a.context: expected a whole number here, got '8k': write 8192 (tokens)"),
    ("models:\n  a: {provider: ollama, model: x, context: '32,768'}\nagents:\n  chat: {primary: a}\n",
     "got '32,768': write 32768 (tokens)"),
    ("models:\n  a: {provider: ollama, model: x, memory_gb: 8GB}\nagents:\n  chat: {primary: a}\n",
     "models.a.memory_gb: expected a number here, got '8GB': write 8 (GB)"),
    (OK + "log: {keep_days: 30d}\n",
     "config.yaml:5: log.keep_days: expected a number here, got '30d': write 30 (days)"),
    (OK + "orchestration: {threshold: 35%}\n",
     "orchestration.threshold: expected a number here, got '35%': write 0.35"),
])
def test_a_number_written_with_its_unit_says_the_number_to_write(text: str, expected: str) -> None:
    assert expected in said(text)


@pytest.mark.parametrize(("text", "expected"), [
    # was pydantic's 'Input should be greater than or equal to 1'
    ("models:\n  a: {provider: ollama, model: x, max_concurrent: 0}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:2: models.a.max_concurrent: expected a number of at least 1 here, got 0"),
    # was 'Input should be less than or equal to 1': a percentage where a share goes
    (OK + "orchestration: {threshold: 35}\n",
     "config.yaml:5: orchestration.threshold: expected a number of at most 1.0 here, got 35 (a share: write 0.35 "
     "for 35%)"),
])
def test_a_number_out_of_bounds_says_the_bound_in_words(text: str, expected: str) -> None:
    assert said(text) == expected


# --- names YAML does not read as names ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # was 'models.1.[key]: expected text here, got a number' (pydantic's '[key]' in the path, no fix)
    ("models:\n  a: {provider: ollama, model: x}\n  1: {provider: ollama, model: y}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:3: models.1: the name 1 is read by YAML as a number, not as a name: put it in quotes ('1':)"),
    ("models:\n  3.5: {provider: ollama, model: x}\nagents:\n  chat: {primary: '3.5'}\n",
     "config.yaml:2: models.3.5: the name 3.5 is read by YAML as a number, not as a name: put it in quotes ('3.5':)"),
    ("models:\n  a: {provider: ollama, model: x}\n  ~: {provider: ollama, model: y}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:3: models.~: a name YAML reads as nothing (~, null or no name before the ':'): give it a name"),
])
def test_a_name_yaml_reads_as_a_number_or_nothing_says_to_quote_it(text: str, expected: str) -> None:
    message = said(text)
    assert expected in message and "[key]" not in message


# --- characters and indentation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # was 'config.yaml:1: models: expected keys and values here (key: value), got nothing' — the wrong line and cause
    ("models:\n\u00a0\u00a0a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:2: a non-breaking space (U+00A0) in the indentation, as copied from a web page or a chat"),
    # was loaded: an agent named '\u200bchat', and `ask --agent chat` said it did not exist
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat\u200b: {primary: a}\n",
     "config.yaml:4: a zero-width space (U+200B) in a key"),
])
def test_an_invisible_character_from_a_copied_line_names_its_line(text: str, expected: str) -> None:
    assert expected in said(text)


def test_an_invisible_character_inside_a_value_is_left_alone() -> None:
    config = parse_config(OK.replace("{primary: a}", "{primary: a, system: 'Be\u00a0brief: one\u200bline.'}"))
    assert config.agents["chat"].system == "Be\u00a0brief: one\u200bline."


def test_a_line_indented_one_space_short_says_to_line_it_up() -> None:
    """Was only PyYAML's "expected <block end>, but found '<block mapping start>'"."""
    message = said("models:\n  a:\n    provider: ollama\n   model: x\nagents:\n  chat: {primary: a}\n")
    assert message.startswith("config.yaml:4: not valid YAML: expected <block end>"), message
    assert "indented differently from the lines above it at the same level: line its key up with theirs" in message


# --- another tool's file -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "where", "tool"), [
    # was 'general_settings: unknown key 'general_settings''
    (f"general_settings:\n  master_key: {SECRET}\nmodel_list:\n  - model_name: gpt-4o\n", "1: general_settings",
     "a LiteLLM proxy config"),
    (f"# LiteLLM\nmodel_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n"
     f"      api_key: {SECRET}\n", "2: model_list", "a LiteLLM proxy config"),
    ("services:\n  ollama:\n    image: ollama/ollama\n    ports: ['11434:11434']\n", "1: services",
     "a docker compose file"),
    ("# my model\nFROM llama3.2\nPARAMETER temperature 0.7\nSYSTEM You are kind.\n", "2", "an Ollama Modelfile"),
    (f"OLLAMA_HOST=0.0.0.0\nANTHROPIC_API_KEY={SECRET}\n", "1", "an environment file"),
    ("OLLAMA_HOST: 0.0.0.0:11434\nOLLAMA_NUM_PARALLEL: 4\n", "1: OLLAMA_HOST", "Ollama's server settings"),
])
def test_another_tools_file_is_named_with_what_to_write(text: str, where: str, tool: str) -> None:
    message = said(text)
    assert message.startswith(f"config.yaml:{where}: this looks like {tool}"), message
    assert "not a modelyard config: " in message and "modelyard's config has 'models:'" in message
    assert "'models:'" in message and "'agents:'" in message and "modelyard init --detect" in message


def test_litellms_name_for_models_beside_agents_still_says_our_name() -> None:
    message = said("model_list:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n")
    assert "unknown key 'model_list' (modelyard calls it 'models')" in message


# --- other tools' names for a key, and keys that are secrets ------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # was "(did you mean 'history_tokens'?)", then "(modelyard calls it 'token_env')": the token went there next
    (OK + f"telegram:\n  bot_token: '{SECRET}'\n",
     "config.yaml:6: telegram.bot_token: credentials are never written in the config: take the token out of this file "
     "and export TELEGRAM_BOT_TOKEN=…"),
    # was "(did you mean 'threads'?)"
    ("models:\n  a:\n    provider: openai\n    model: x\n    endpoint: http://h/v1\n"
     f"    headers: {{Authorization: Bearer {SECRET}}}\nagents:\n  chat: {{primary: a}}\n",
     "config.yaml:6: models.a.headers: unknown key 'headers' (modelyard calls it 'api_key_env')"),
    # was only "unknown key 'ANTHROPIC_API_KEY'"
    (f"models:\n  a: {{provider: anthropic, model: x, ANTHROPIC_API_KEY: {SECRET}}}\nagents:\n  chat: {{primary: a}}\n",
     "unknown key 'ANTHROPIC_API_KEY' (to read the key from that variable: api_key_env: ANTHROPIC_API_KEY"),
    # was "models.a.sk-ant-api03-…: unknown key 'sk-ant-api03-…'": the key on the screen twice
    (f"models:\n  a:\n    provider: anthropic\n    {SECRET}: x\nagents:\n  chat: {{primary: a}}\n",
     "config.yaml:4: models.a.…: unknown key (a name that looks like a key or token, not shown)"),
])
def test_a_misnamed_key_gets_our_name_and_a_secret_as_a_key_is_not_shown(text: str, expected: str) -> None:
    assert expected in said(text)


def test_a_password_in_a_one_slash_redis_url_is_not_shown() -> None:
    """`state: redis:/:PASSWORD@host:6379/0` (one slash) echoed the password: urlsplit finds no netloc there."""
    message = said(OK + "state: redis:/:SECRETPW@10.0.0.5:6379/0\n")
    assert message == ("config.yaml:5: state.url: 'redis:/:***@10.0.0.5:6379/0' names no host (one slash after "
                       "'redis:'): write redis://HOST:PORT/DB")


@pytest.mark.parametrize("written", ["${OLLAMA_MODEL}", "$OLLAMA_MODEL", "os.environ/OLLAMA_MODEL",
                                     "qwen2.5:${TAG}"])
def test_a_variable_as_the_models_id_is_refused_at_load(written: str) -> None:
    """`model: ${OLLAMA_MODEL}` loaded and asked the server for a model named '${OLLAMA_MODEL}'."""
    message = said(f"models:\n  a: {{provider: ollama, model: '{written}'}}\nagents:\n  chat: {{primary: a}}\n")
    assert message == ("config.yaml:2: models.a.model: the config does not expand environment variables: write the "
                       "provider's model id itself, e.g. qwen2.5:7b")


def test_a_model_id_with_slashes_and_a_tag_still_loads() -> None:
    config = parse_config(OK.replace("model: x", "model: 'hf.co/org/repo:Q4_K_M'"))
    assert config.models["a"].model == "hf.co/org/repo:Q4_K_M"


@pytest.mark.parametrize(("text", "line"), [
    (f"ANTHROPIC_API_KEY={SECRET}\n" + OK, 1),
    (f"export ANTHROPIC_API_KEY={SECRET}\n" + OK, 1),
    (f"models:\n  a:\n    provider: anthropic\n    ANTHROPIC_API_KEY={SECRET}\nagents:\n  chat: {{primary: a}}\n", 4),
])
def test_an_env_files_line_in_the_config_says_where_the_variable_goes(text: str, line: int) -> None:
    """A `.env` line pasted into the YAML read 'mapping values are not allowed here (a ': ' inside a value …)' or
    "could not find expected ':'" — neither says that the config sets no variables."""
    assert said(text) == (f"config.yaml:{line}: not valid YAML: 'ANTHROPIC_API_KEY=…' is a shell's or an env file's "
                          "line, not YAML: the config sets no variables — export ANTHROPIC_API_KEY in the environment "
                          "(or the service's env file) and name it here, e.g. api_key_env: ANTHROPIC_API_KEY")


# --- yes/no/on/off: YAML 1.1's booleans where a number, a name or a choice goes -----------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # were loaded silently: pydantic takes true as 1 (max_concurrent 1, port 1, Telegram user 1 allowed in)
    ("models:\n  a: {provider: ollama, model: x, max_concurrent: yes}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:2: models.a.max_concurrent: expected a number here, got true/false"),
    (OK + "gateway: {port: on}\n", "config.yaml:5: gateway.port: expected a number here, got true/false"),
    (OK + "telegram: {token_env: T, allowed_users: [12345, yes]}\n",
     "config.yaml:5: telegram.allowed_users.1: expected a number here, got true/false"),
    # were "Input should be 'markdown' or 'plain'", not a word on what YAML read
    (OK + "telegram: {format: off}\n", "config.yaml:5: telegram.format: expected 'markdown' or 'plain' here, got "
     "true/false"),
    (OK + "state: {url: 'redis://127.0.0.1:6379/0', on_outage: off}\n",
     "config.yaml:5: state.on_outage: expected 'share' or 'fail' here, got true/false"),
    # was "expected text here, got true/false", no fix
    ("models:\n  a: {provider: ollama, model: yes}\nagents:\n  chat: {primary: a}\n",
     "config.yaml:2: models.a.model: expected text here, got true/false (YAML reads yes, no, on, off, y and n as "
     "true/false): put the word in quotes"),
])
def test_a_yes_or_on_where_a_number_or_a_choice_goes_says_what_yaml_read(text: str, expected: str) -> None:
    message = said(text)
    assert message.startswith(expected), message
    assert "(YAML reads yes, no, on, off, y and n as true/false)" in message


def test_yes_and_no_where_true_or_false_goes_still_load() -> None:
    config = parse_config(OK.replace("{primary: a}", "{primary: a, thinking: on}") + "log: {store_text: no}\n")
    assert config.agents["chat"].thinking is True and config.log.store_text is False


def test_a_key_with_a_space_inside_its_quotes_says_so() -> None:
    """`"model ": x` read "unknown key 'model ' (did you mean 'model'?)": the space is all but invisible there."""
    message = said("models:\n  a:\n    provider: ollama\n    \"model \": x\nagents:\n  chat: {primary: a}\n")
    assert message == ("config.yaml:4: models.a.model : unknown key 'model ' (a space inside the key's quotes: "
                       "write model:)")


def test_a_setting_written_with_an_equals_sign_says_to_write_a_colon() -> None:
    """`key=value` in YAML (https://github.com/BerriAI/litellm/pull/2402: a docs example with '=' for ':') read
    "could not find expected ':'"."""
    message = said("models:\n  a:\n    provider: ollama\n    model=qwen2.5:7b\nagents:\n  chat: {primary: a}\n")
    assert message == ("config.yaml:4: not valid YAML: 'model=…': YAML puts ': ' between a key and its value — write "
                       "'model: …'")


# --- gateway.allowed_hosts: names, not URLs ------------------------------------------------------------------------
# what users paste where a proxy's name goes: the URL they open, with its scheme and port (open-webui/open-webui #261,
# ollama/ollama #3269), and a lone '*' (OLLAMA_ORIGINS=* is Ollama's habit) that would turn the rebinding check off

@pytest.mark.parametrize(("value", "expected"), [
    ("[https://gw.example.com/v1]", "config.yaml:6: gateway.allowed_hosts: 'https://gw.example.com/v1' is not a "
     "bare name: write 'gw.example.com'"),
    ("[gw.example.com, 'gw.example.com:8443']", "config.yaml:6: gateway.allowed_hosts: 'gw.example.com:8443' is "
     "not a bare name: write 'gw.example.com'"),
    ("['*']", "config.yaml:6: gateway.allowed_hosts: '*' would let any name call a gateway that asks for no key"),
    ("['*.com']", "gateway.allowed_hosts: '*.com' would let any name call a gateway that asks for no key"),
    ("['gw example.com']", "gateway.allowed_hosts: 'gw example.com' is no host name"),
])
def test_an_allowed_host_that_is_no_name_says_what_to_write(value: str, expected: str) -> None:
    assert expected in said(OK + f"gateway:\n  allowed_hosts: {value}\n")


def test_allowed_hosts_are_kept_lower_cased_without_the_final_dot() -> None:
    config = parse_config(OK + "gateway:\n  allowed_hosts: [GW.Example.com., '*.ts.net']\n", "config.yaml")
    assert config.gateway.allowed_hosts == ["gw.example.com", "*.ts.net"]
