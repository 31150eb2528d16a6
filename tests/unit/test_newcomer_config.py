"""What a newcomer gets wrong in a first config (mistakes seen in LiteLLM's, Ollama's and Open WebUI's issue
trackers) is answered through the real CLI in words that say what to do: the file, the line, the key, exit 2,
no traceback, no secret echoed; and what can be read one way only is read that way."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes.ollama import OllamaServer
from tests.fakes.openai_compat import OpenAIServer
from tests.fakes.server import poll
from tests.fakes.telegram import TelegramServer
from tests.helpers import tmpfs
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.config.loader import parse_config
from modelyard.errors import ConfigError

SECRET = "sk-ant-api03-NewcomerPastedTheKeyItself-0123456789abcdef"


def invoke(config: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["--config", str(config), *args], env=env)


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text + f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    return path


def refused(out, *words: str) -> str:
    """A config error: exit 2, every word in it, no traceback."""
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    for word in words:
        assert word in out.output, out.output
    return str(out.output)


# --- secrets and their variables ----------------------------------------------------------------------------------

def test_a_key_pasted_where_its_variables_name_goes_is_refused_without_showing_it(tmp_path: Path) -> None:
    """`api_key_env: sk-ant-…` loaded, and `models`, `check` and `ask` printed 'environment variable sk-ant-… is not
    set' — the secret on the screen and in the routing log."""
    config = write(tmp_path, "models:\n  claude:\n    provider: anthropic\n    model: claude-haiku-4-5\n"
                             f"    api_key_env: {SECRET}\nagents:\n  chat: {{primary: claude}}\n")
    for command in (["models", "--no-reach"], ["check"], ["ask", "--agent", "chat", "hi"]):
        text = refused(invoke(config, *command), "config.yaml:5: models.claude.api_key_env:",
                       "takes the NAME of an environment variable")
        assert SECRET not in text and "sk-ant" not in text
    bot = write(tmp_path, "models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n"
                          "telegram:\n  token_env: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw'\n", "bot.yaml")
    text = refused(invoke(bot, "models", "--no-reach"), "bot.yaml:6: telegram.token_env:")
    assert "AAHdq" not in text


@pytest.mark.parametrize("spelling", ["${NEWCOMER_KEY}", "$NEWCOMER_KEY", "os.environ/NEWCOMER_KEY", "{NEWCOMER_KEY}"])
@pytest.mark.parametrize("value", ["sk-test\n", '"sk-test"', "'sk-test' ", "Bearer sk-test", " sk-test"])
def test_a_variable_written_as_other_tools_write_it_and_a_key_as_copied_are_read(
        tmp_path: Path, spelling: str, value: str) -> None:
    """LiteLLM's `os.environ/NAME` or a shell's `${NAME}` where the NAME goes, and a key with the newline of
    `$(cat key.txt)`, the quotes an env file keeps under Docker or a `Bearer ` prefix: a trailing newline failed
    every request as 'malformed_response: ValueError: Forbidden control character…', the others as auth_error."""
    with OpenAIServer(["m"], api_key="sk-test") as server:
        config = write(tmp_path, f"models:\n  m:\n    provider: openai\n    model: m\n    endpoint: {server.url}/v1\n"
                                 f"    api_key_env: '{spelling}'\nagents:\n  chat: {{primary: m}}\n")
        out = invoke(config, "ask", "--agent", "chat", "hi", env={"NEWCOMER_KEY": value})
    assert out.exit_code == 0, out.output
    assert "Hello from the fake server." in out.output


def test_a_variable_set_but_empty_is_said_to_be_empty(tmp_path: Path) -> None:
    config = write(tmp_path, "models:\n  m: {provider: openai, model: m, endpoint: 'http://127.0.0.1:9/v1', "
                             "api_key_env: NEWCOMER_KEY}\nagents:\n  chat: {primary: m}\n")
    out = invoke(config, "models", "--no-reach", "--json", env={"NEWCOMER_KEY": ""})
    assert out.exit_code == 3, out.output  # its one model is unavailable: none can answer
    assert "environment variable NEWCOMER_KEY is empty" in out.output


# --- the file itself --------------------------------------------------------------------------------------------------

GOOD = "models:\n  local: {provider: ollama, model: 'qwen2.5:7b'}\nagents:\n  chat:\n    description: café\n" \
       "    primary: local\n"


def test_a_config_saved_by_notepad_as_unicode_loads(tmp_path: Path) -> None:
    """Notepad's "Unicode" is UTF-16 with a byte-order mark: it read 'cannot read: 'utf-8' codec can't decode
    byte 0xff in position 0'."""
    for encoding, bom in (("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                          ("utf-8", codecs.BOM_UTF8)):
        path = tmp_path / f"{encoding}.yaml"
        path.write_bytes(bom + (GOOD + f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n").replace("\n", "\r\n")
                         .encode(encoding))
        out = invoke(path, "models", "--no-reach", "--json")
        assert out.exit_code == 0, (encoding, out.output)
        assert [m["model"] for m in json.loads(out.output)["models"]] == ["local"]


def test_a_config_in_another_encoding_names_the_line_and_the_fix(tmp_path: Path) -> None:
    ansi = tmp_path / "ansi.yaml"
    ansi.write_bytes(GOOD.encode("cp1252"))
    refused(invoke(ansi, "models", "--no-reach"), "ansi.yaml:5: not UTF-8 text (byte 0xe9",
            "save the file as UTF-8")
    no_bom = tmp_path / "nobom.yaml"
    no_bom.write_bytes(GOOD.encode("utf-16-le"))  # read as 'unacceptable character #x0000' over two lines
    refused(invoke(no_bom, "models", "--no-reach"), "nobom.yaml:1: UTF-16 text without its byte-order mark")


# --- keys in the wrong place or by another tool's name ----------------------------------------------------------------

@pytest.mark.parametrize(("text", "words"), [
    # one indent too few: 'expected keys and values here (provider, model, …, max_response_mb: e.g. …), got text'
    ("models:\n  local:\n    provider: ollama\n    model: x\n  endpoint: http://127.0.0.1:11434\n"
     "agents:\n  chat: {primary: local}\n",
     ["config.yaml:5: models.endpoint: 'endpoint' is a model's setting, read here as a model named 'endpoint'",
      "indent it under the model"]),
    ("models:\n  local: {provider: ollama, model: x}\nagents:\n  chat:\n    description: hi\n  primary: local\n",
     ["config.yaml:6: agents.primary: 'primary' is an agent's setting", "indent it under the agent"]),
    # a list where each entry goes by its name: 'expected keys and values here (key: value), got a list'
    ("models:\n  local: {provider: ollama, model: x}\nagents:\n  - chat:\n      primary: local\n",
     ["config.yaml:3: agents: expected each agent by its name, not a list", "no '- ' in front"]),
    # other tools' names for a setting: 'unknown key 'base_url'' with no hint
    ("models:\n  local: {provider: ollama, model: x, base_url: 'http://h:1'}\nagents:\n  chat: {primary: local}\n",
     ["config.yaml:2: models.local.base_url: unknown key 'base_url' (modelyard calls it 'endpoint')"]),
    ("models:\n  local: {provider: ollama, model: x, api_base: 'http://h:1'}\nagents:\n  chat: {primary: local}\n",
     ["(modelyard calls it 'endpoint')"]),
    ("models:\n  local: {provider: ollama, model: x}\nagents:\n  chat: {model: local}\n",
     ["config.yaml:4: agents.chat.model: unknown key 'model' (modelyard calls it 'primary')"]),
    # the provider's model id where the chain names the entry under models:
    ("models:\n  local: {provider: ollama, model: 'qwen2.5:7b'}\nagents:\n  chat: {primary: 'qwen2.5:7b'}\n",
     ["config.yaml:4: agents.chat.primary: unknown model 'qwen2.5:7b'",
      "'qwen2.5:7b' is the provider's id of 'local': a chain names the entry under models:, write 'local'"]),
    # the config does not expand variables: it went to a host named '${OLLAMA_HOST}'
    ("models:\n  local: {provider: ollama, model: x, endpoint: 'http://${OLLAMA_HOST}:11434'}\n"
     "agents:\n  chat: {primary: local}\n",
     ["config.yaml:2: models.local.endpoint: the config does not expand environment variables"]),
    # nor in a GGUF path: it was looked for under a directory named '%USERPROFILE%'
    ("models:\n  g: {provider: llamacpp, path: '%USERPROFILE%/m.gguf'}\nagents:\n  chat: {primary: g}\n",
     ["config.yaml:2: models.g.path: the config does not expand environment variables"]),
])
def test_a_setting_in_the_wrong_place_says_where_it_belongs(tmp_path: Path, text: str, words: list[str]) -> None:
    refused(invoke(write(tmp_path, text), "models", "--no-reach"), *words)


def test_a_variable_in_log_path_is_refused_not_made_a_directory(tmp_path: Path) -> None:
    """README ("When something is wrong"): `$HOME` in a path is refused, the config expands no variables.
    `log.path: $HOME/routing.sqlite3` was accepted and made a new, empty log under a directory named '$HOME'
    beside the config, so `log` and `report` showed nothing of the real one."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: x}\nagents:\n  chat: {primary: local}\nlog:\n"
                      "  path: $HOME/routing.sqlite3\n")
    refused(invoke(config, "log"), "config.yaml:6: log.path: the config does not expand environment variables",
            "~/ for the home directory")
    assert not (tmp_path / "$HOME").exists()


@pytest.mark.parametrize("tail", ["/api", "/api/", "/v1", "/api/chat"])
def test_an_ollama_endpoint_written_with_its_api_path_reaches_the_server(tmp_path: Path, tail: str) -> None:
    """`endpoint: http://127.0.0.1:11434/api`, as Ollama's docs write its paths, asked /api/api/chat: every
    request failed."""
    with OllamaServer(["qwen2.5:7b"]) as ollama:
        config = write(tmp_path, f"models:\n  local: {{provider: ollama, model: 'qwen2.5:7b', "
                                 f"endpoint: '{ollama.url}{tail}'}}\nagents:\n  chat: {{primary: local}}\n")
        out = invoke(config, "ask", "--agent", "chat", "hi")
        assert out.exit_code == 0, out.output
        assert "Hello from the fake server." in out.output
        assert [r.path for r in ollama.requests if r.method == "POST"] == ["/api/chat"]


@pytest.mark.parametrize("tail", ["/v1/chat/completions", "/chat/completions", "/v1/chat/completions/"])
def test_an_openai_endpoint_written_as_a_curl_examples_url_reaches_the_server(tmp_path: Path, tail: str) -> None:
    """`endpoint: http://host:8000/v1/chat/completions` (the URL of every curl example) asked
    /v1/chat/completions/v1/chat/completions: every request failed with a 404."""
    with OpenAIServer(["m"]) as server:
        config = write(tmp_path, f"models:\n  m: {{provider: openai, model: m, endpoint: '{server.url}{tail}'}}\n"
                                 "agents:\n  chat: {primary: m}\n")
        out = invoke(config, "ask", "--agent", "chat", "hi")
        assert out.exit_code == 0, out.output
        assert [r.path for r in server.requests if r.method == "POST"] == ["/v1/chat/completions"]


# --- a model file that is no model ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "said"), [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:4d5e\nsize 4683073184\n", "is a git-lfs pointer"),
    (b"<!DOCTYPE html>\n<html><head><title>Hugging Face</title>", "is a web page (HTML)"),
    (b"\x00\x01\x02 not a model", "is no GGUF model file (it does not start with 'GGUF'"),
])
def test_a_gguf_that_is_no_gguf_is_unavailable_and_says_what_it_is(tmp_path: Path, content: bytes,
                                                                  said: str) -> None:
    """A browser's saved page or a git-lfs pointer showed 'available' in `models`, and every request failed as
    'internal_error: llama.cpp failed: ValueError: Failed to load model from file'."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(content)
    config = write(tmp_path, f"models:\n  g: {{provider: llamacpp, path: '{gguf}'}}\nagents:\n  chat: {{primary: g}}\n")
    models = invoke(config, "models", "--no-reach", "--json")
    assert models.exit_code == 3, models.output  # its one model is unavailable: none can answer
    [row] = json.loads(models.stdout)["models"]
    assert row["state"] == "unavailable" and said in row["why"], row
    asked = invoke(config, "ask", "--agent", "chat", "hi")
    assert asked.exit_code == 1, asked.output
    assert f"g: skipped (unavailable: {gguf} {said}" in asked.output
    assert "internal_error" not in asked.output and "Traceback" not in asked.output


# --- the CLI's own arguments ------------------------------------------------------------------------------------------

def test_a_mistyped_agent_on_the_command_line_names_the_closest(tmp_path: Path) -> None:
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: x}\nagents:\n  chat: {primary: local}\n"
                             "  engineer: {primary: local}\n  research: {primary: local}\n")
    out = invoke(config, "ask", "--agent", "enginer", "hi")
    assert out.exit_code == 2
    assert "unknown agent 'enginer' (did you mean 'engineer'?)" in out.output
    logged = invoke(config, "log", "--agent", "resarch")
    assert logged.exit_code == 2
    assert "unknown agent 'resarch' (did you mean 'research'?)" in logged.output


# --- where the log goes -----------------------------------------------------------------------------------------------

def test_a_log_path_naming_a_directory_says_to_name_a_file(tmp_path: Path) -> None:
    """`log: {path: ~/modelyard}` read 'cannot be opened for writing (unable to open database file); check that this
    user can write the file and its directory' — the user could."""
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  a: {{provider: ollama, model: x}}\nagents:\n  chat: {{primary: a}}\n"
                      f"log: {{path: '{tmp_path}'}}\n")
    for command in (["ask", "--agent", "chat", "hi"], ["log"]):
        out = invoke(config, *command)
        assert out.exit_code == 1, out.output
        assert (f"routing log {tmp_path}: a directory, not a file: name a file in it, e.g. "
                f"{tmp_path / 'routing.sqlite3'}; check log.path in the config") in out.output.replace("\n", "")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs filled to the last byte (root only: elsewhere the test is skipped)."""
    with tmpfs(tmp_path / "full", "size=2m") as mount:
        yield mount


def test_a_log_on_a_full_disk_says_the_disk_is_full(tmp_path: Path, full_disk: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A full disk read 'cannot be opened for writing (disk I/O error); check that this user can write the file and
    its directory' (or '(cannot rollback - no transaction is active)' when it filled while the log was made). `ask`
    answers all the same since round 38 (tests/reliability/test_ledger_hunt38.py), its row kept in a file the next
    start writes; `log` cannot read it and exits 1."""
    with OpenAIServer(["m"]) as server:
        config = tmp_path / "config.yaml"
        config.write_text(f"models:\n  m: {{provider: openai, model: m, endpoint: '{server.url}/v1'}}\n"
                          f"agents:\n  chat: {{primary: m}}\nlog: {{path: '{full_disk / 'routing.sqlite3'}'}}\n")
        assert invoke(config, "ask", "--agent", "chat", "hi").exit_code == 0  # the log is made while there is room
        with (full_disk / "filler").open("wb") as filler, contextlib.suppress(OSError):
            while filler.write(b"\0" * 65536):
                pass
        for command, code in ((["ask", "--agent", "chat", "hi"], 0), (["log"], 1)):
            caplog.clear()
            out = invoke(config, *command)
            assert out.exit_code == code, out.output
            said = (out.output + " ".join(r.getMessage() for r in caplog.records)).replace("\n", "")
            assert f"routing log {full_disk / 'routing.sqlite3'}: the disk holding it is full (" in said, said
            assert "free some space there; check log.path in the config" in said


# --- names other tools use, YAML's booleans, Ollama's durations -------------------------------------------------------

@pytest.mark.parametrize(("provider", "said"), [
    ("vllm", "; for 'vllm': provider: openai with the server's endpoint: (its OpenAI-compatible API)"),
    ("lmstudio", "; for 'lmstudio': provider: openai"),
    ("claude", "; for 'claude': provider: anthropic"),
    ("llama.cpp", "; for 'llama.cpp': provider: llamacpp runs a GGUF file in this process (path:); a llama-server is "
                  "provider: openai with its endpoint:"),
    ("olama", " (did you mean 'ollama'?)"),
])
def test_a_server_named_as_the_provider_says_which_provider_speaks_to_it(tmp_path: Path, provider: str,
                                                                          said: str) -> None:
    config = write(tmp_path, f"models:\n  m: {{provider: {provider}, model: x}}\nagents:\n  chat: {{primary: m}}\n")
    refused(invoke(config, "models", "--no-reach"), f"config.yaml:2: models.m.provider: unknown provider '{provider}' "
            f"(known providers: anthropic, llamacpp, ollama, openai){said}")


def test_a_name_yaml_reads_as_true_or_false_says_to_quote_it(tmp_path: Path) -> None:
    """An agent named `on:` or a model named `no:` read 'agents.1.[key]: expected text here, got true/false'."""
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: x}\nagents:\n  chat: {primary: local}\n"
                             "  On: {primary: local}\n")
    refused(invoke(config, "models", "--no-reach"),
            "config.yaml:5: agents.On: the name On is read by YAML as true: put it in quotes ('On':)")


@pytest.mark.parametrize(("written", "sent"), [("-1", "-1s"), ("'-1'", "-1s"), ("300", "300s"), ("30m", "30m"),
                                               ("1h30m", "1h30m")])
def test_an_ollama_keep_alive_as_its_docs_write_it_reaches_ollama_as_a_duration(tmp_path: Path, written: str,
                                                                                 sent: str) -> None:
    """`keep_alive: -1` (forever, as Ollama's FAQ says) was refused ('expected text here, got a number'); written
    "-1" or "300" it loaded and Ollama refused every request: 'time: missing unit in duration "-1"'."""
    with OllamaServer(["qwen"]) as ollama:
        config = write(tmp_path, f"models:\n  local: {{provider: ollama, model: qwen, endpoint: '{ollama.url}', "
                                 f"keep_alive: {written}}}\nagents:\n  chat: {{primary: local}}\n")
        out = invoke(config, "ask", "--agent", "chat", "hi")
        assert out.exit_code == 0, out.output
        [chat] = [r for r in ollama.requests if r.path == "/api/chat"]
        assert chat.json["keep_alive"] == sent


def test_a_keep_alive_that_is_no_duration_is_refused_at_load(tmp_path: Path) -> None:
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: x, keep_alive: forever}\n"
                             "agents:\n  chat: {primary: local}\n")
    refused(invoke(config, "models", "--no-reach"), "config.yaml:2: models.local.keep_alive: expected a duration such "
            "as 30m, 1h or 90s, a number of seconds, or -1 to keep the model loaded for good")


@pytest.mark.parametrize("written", ["bot{token}", ' "{token}"\n'])
def test_a_telegram_token_copied_with_its_url_prefix_or_quotes_starts_the_bot(tmp_path: Path, written: str) -> None:
    """`TELEGRAM_BOT_TOKEN=bot123:ABC` (copied from an api.telegram.org/bot123:ABC/getMe URL) asked
    /botbot123:ABC/…: 'Telegram refused the bot token … copy it again from @BotFather' — it was the right token."""
    with TelegramServer() as tg:
        config = write(tmp_path, "models:\n  m: {provider: openai, model: m, endpoint: 'http://127.0.0.1:9/v1'}\n"
                                 f"agents:\n  chat: {{primary: m}}\ntelegram: {{base_url: '{tg.base_url}', "
                                 "allowed_users: [1]}\n")
        env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data"),
               "TELEGRAM_BOT_TOKEN": written.format(token=tg.token)}
        env.pop("MODELYARD_STATE", None)
        err = tmp_path / "bot.err"
        with err.open("wb") as out:
            bot = subprocess.Popen([sys.executable, "-m", "modelyard", "telegram", "--local", "--config", str(config)],
                                   stdout=out, stderr=out, env=env, stdin=subprocess.DEVNULL)
        try:
            poll(lambda: bot.poll() is not None or any(c.method.lower() == "getupdates" for c in tg.calls), 60)
            assert bot.poll() is None, err.read_text()
        finally:
            if bot.poll() is None:
                bot.send_signal(signal.SIGINT)
                try:
                    bot.wait(15)
                except subprocess.TimeoutExpired:
                    bot.kill()
                    bot.wait(5)
        assert tg.token not in err.read_text()


@pytest.mark.parametrize("written", ["os.environ/NEWCOMER_KEY", "${NEWCOMER_KEY}"])
def test_an_api_key_written_as_litellm_writes_it_says_the_line_to_write(tmp_path: Path, written: str) -> None:
    """LiteLLM's `api_key: os.environ/NAME` read 'credentials are never written in the config' — it held none."""
    config = write(tmp_path, f"models:\n  c: {{provider: anthropic, model: x, api_key: '{written}'}}\n"
                             "agents:\n  chat: {primary: c}\n")
    refused(invoke(config, "models", "--no-reach"), "config.yaml:2: models.c.api_key: the config names the variable "
            "and does not expand it: write 'api_key_env: NEWCOMER_KEY'")


# --- files a command is told to write ---------------------------------------------------------------------------------

def test_init_where_it_cannot_write_says_why(tmp_path: Path) -> None:
    """`modelyard init /read-only/place.yaml` (or under a file, or on a full disk) ended in a traceback."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a directory was meant\n")
    out = CliRunner().invoke(app, ["init", str(blocker / "config.yaml")])
    assert out.exit_code == 1, out.output
    assert (f"cannot write {blocker / 'config.yaml'}: {blocker} is a file, not a directory (name another place: "
            "modelyard init PATH)") in out.output.replace("\n", "")
    folder = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert folder.exit_code == 2
    assert f"{tmp_path} is a directory: name the file to write, e.g. {tmp_path / 'config.yaml'}" in \
        folder.output.replace("\n", "")


@pytest.mark.parametrize("command", [["report", "--chart", "{out}/chart.png"], ["bench", "--init", "{out}/suite.yaml"]])
def test_an_output_file_the_system_refuses_is_said_not_a_traceback(tmp_path: Path, command: list[str]) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a directory was meant\n")
    config = write(tmp_path, "models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n")
    env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config),
                           *(part.format(out=blocker) for part in command)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    name = command[-1].rsplit("/", 1)[1]
    said = (f"error: {blocker}: a file, where a directory was needed", f"error: {blocker}/{name}: Not a directory")
    assert done.stderr.strip().splitlines()[-1] in said, done.stderr


# --- YAML's own words, said with the fix ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "said"), [
    # 'expected escape sequence of 8 hexadecimal numbers, but found 's''
    ('models:\n  g: {provider: llamacpp, path: "C:\\Users\\me\\model.gguf"}\nagents:\n  chat: {primary: g}\n',
     "config.yaml:2: not valid YAML: expected escape sequence of 8 hexadecimal numbers, but found 's' (inside double "
     "quotes a backslash starts an escape: write a Windows path in single quotes or with forward slashes)"),
    # 'found unexpected end of stream', on the file's last line
    ('models:\n  a: {provider: ollama, model: "x}\nagents:\n  chat: {primary: a}\n',
     "config.yaml:2: not valid YAML: a quote opened on line 2 is never closed"),
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat:\n    primary: a\n    system: You are kind.\n"
     "      Answer: briefly\n",
     "config.yaml:7: not valid YAML: mapping values are not allowed here (a ': ' inside a value: put the value in "
     "quotes; or this line is indented deeper than the key above it)"),
    # 'expected text here, got a list'
    ("models:\n  a: {provider: ollama, model: x}\n  b: {provider: ollama, model: y}\n"
     "agents:\n  chat: {primary: [a, b]}\n",
     "config.yaml:5: agents.chat.primary: primary is one model: name the first here and the others in 'fallbacks:'"),
    # 'expected keys and values here (…), got text'
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat:\n    primary:a\n",
     "got text (a key needs a space after its colon: 'primary: …')"),
])
def test_a_yaml_slip_says_the_fix(tmp_path: Path, text: str, said: str) -> None:
    refused(invoke(write(tmp_path, text), "models", "--no-reach"), said)


def test_a_key_variable_misnamed_names_the_one_that_is_set(tmp_path: Path) -> None:
    """`api_key_env: ANTHROPIC_KEY` beside an exported ANTHROPIC_API_KEY read only 'is not set'."""
    config = write(tmp_path, "models:\n  c: {provider: anthropic, model: x, api_key_env: NEWCOMER_ANTHROPIC_KEY}\n"
                             "agents:\n  chat: {primary: c}\n")
    out = invoke(config, "models", "--no-reach", "--json", env={"NEWCOMER_ANTHROPIC_API_KEY": "sk-ant-secret-value"})
    assert out.exit_code == 3, out.output  # its one model is unavailable: none can answer
    [row] = json.loads(out.stdout)["models"]
    assert row["why"] == ("environment variable NEWCOMER_ANTHROPIC_KEY is not set (NEWCOMER_ANTHROPIC_API_KEY is: "
                          "did you mean it? then models.c.api_key_env: NEWCOMER_ANTHROPIC_API_KEY)"), row
    assert "sk-ant-secret-value" not in out.output


def test_relative_paths_are_read_from_the_config_files_directory(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`path: models/m.gguf` and `log.path: routing.sqlite3` were read from the working directory: the model was
    'not found' from any other one (the service's too), and each directory got a new, empty log of its own."""
    home = tmp_path / "conf"
    (home / "models").mkdir(parents=True)
    (home / "models" / "m.gguf").write_bytes(b"GGUF" + bytes(60))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with OpenAIServer(["m"]) as server:
        config = home / "config.yaml"
        config.write_text(f"models:\n  g: {{provider: llamacpp, path: models/m.gguf}}\n"
                          f"  m: {{provider: openai, model: m, endpoint: '{server.url}/v1'}}\n"
                          "agents:\n  chat: {primary: m}\n  local: {primary: g}\nlog: {path: routing.sqlite3}\n")
        models = invoke(config, "models", "--no-reach", "--json")
        assert models.exit_code == 0, models.output
        states = {m["model"]: m["state"] for m in json.loads(models.output)["models"]}
        assert states["g"] == "available", models.output
        assert invoke(config, "ask", "--agent", "chat", "hi").exit_code == 0
    assert (home / "routing.sqlite3").is_file() and not (elsewhere / "routing.sqlite3").exists()
    shown = invoke(config, "log", "--json")
    assert shown.exit_code == 0 and len(json.loads(shown.output)) == 1, shown.output


def test_a_gguf_that_is_not_there_is_said_at_its_file_line_and_key(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`path: models/my.gguf` beside the config, the file not there: `models` and `ask` said 'GGUF file not found:
    /…/conf/models/my.gguf (check the model's `path:` in the config)' — which config, which line, and that the
    relative path was read from the config's directory (not the shell's) were left to guess."""
    home = tmp_path / "conf"
    home.mkdir()
    monkeypatch.chdir(tmp_path)  # the shell elsewhere: the path is still read beside the config
    config = home / "config.yaml"
    config.write_text("models:\n  mine:\n    provider: llamacpp\n    path: models/my.gguf\n"
                      "agents:\n  chat: {primary: mine}\nlog: {path: routing.sqlite3}\n")
    said = (f"GGUF file not found: {home}/models/my.gguf — {config}:4: models.mine.path is 'models/my.gguf' (read "
            "from the config file's directory): put the file there, or write its path at that line (absolute, or "
            "~/…)")
    models = invoke(config, "models", "--no-reach", "--json")
    [row] = json.loads(models.stdout)["models"]
    assert row["why"] == said, row
    asked = invoke(config, "ask", "--agent", "chat", "hi")
    assert asked.exit_code == 1 and said in " ".join(asked.output.split()), asked.output


def test_a_file_that_is_no_gguf_is_said_at_its_line(tmp_path: Path) -> None:
    """A saved web page at `path:` named the file, and not the config line that points at it."""
    (tmp_path / "page.gguf").write_text("<!DOCTYPE html><html>…</html>")
    config = write(tmp_path, "models:\n  g: {provider: llamacpp, path: page.gguf}\nagents:\n  chat: {primary: g}\n")
    [row] = json.loads(invoke(config, "models", "--no-reach", "--json").stdout)["models"]
    assert row["why"].endswith(f" — {config}:2: models.g.path is 'page.gguf' (read from the config file's "
                               "directory)"), row


def test_a_workspace_or_mcp_program_that_is_not_there_is_found_by_check_and_named_by_ask(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tools.workspace: ./notes` not created yet, `command: ./mcp/notes.py` not written yet: `check` said "0
    error(s)", and the agent's first request failed with 'workspace notes is not a directory' — neither the setting
    nor where it was looked for — run with `--config conf.yaml` from its directory, the MCP program was looked for
    as 'nope.py' wherever the server happened to start."""
    monkeypatch.chdir(tmp_path)
    with OllamaServer(["qwen2.5:7b"]) as ollama:
        for tools, said in (("{workspace: ./notes, files: read}",
                             f"agent 'chat': tools.workspace './notes' is not a directory ({tmp_path}/notes, read "
                             "from the config file's directory): create it, or set tools.workspace to the directory "
                             "the agent's tools may use"),
                            ("{mcp: [{command: ./mcp/notes.py}]}",
                             f"agent 'chat': MCP server command './mcp/notes.py' is not found "
                             f"({tmp_path}/mcp/notes.py, read from the config file's directory)")):
            (tmp_path / "conf.yaml").write_text(
                f"models:\n  m: {{provider: ollama, model: 'qwen2.5:7b', endpoint: '{ollama.url}'}}\n"
                f"agents:\n  chat:\n    primary: m\n    tools: {tools}\nlog: {{path: log.sqlite3}}\n")
            checked = CliRunner().invoke(app, ["--config", "conf.yaml", "check", "--json"])
            assert checked.exit_code == 1, checked.output
            assert said in [f["message"] for f in json.loads(checked.stdout)["findings"]], checked.output
            if "workspace" in tools:
                asked = CliRunner().invoke(app, ["--config", "conf.yaml", "ask", "--agent", "chat", "hi"])
                assert said in " ".join(asked.output.split()), asked.output


def test_a_relative_log_path_is_shown_resolved(tmp_path: Path) -> None:
    """`log.path: ../mylog.sqlite3` beside a config in sub/ was shown as `/tmp/x/sub/../mylog.sqlite3` by `log`, `stats`
    and `report`: the file where it really is, now."""
    (tmp_path / "sub").mkdir()
    config = tmp_path / "sub" / "c.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      "agents:\n  chat: {primary: a}\nlog: {path: ../mylog.sqlite3}\n")
    where = str((tmp_path / "mylog.sqlite3").resolve())
    shown = invoke(config, "log")
    assert shown.exit_code == 0 and f"routing log: {where}" in shown.output, shown.output
    stats = invoke(config, "stats")
    assert f"({where})" in " ".join(stats.output.split()) and ".." not in stats.output, stats.output


def test_a_model_path_with_a_variable_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, "models:\n  g: {provider: llamacpp, path: '$HOME/models/m.gguf'}\n"
                             "agents:\n  chat: {primary: g}\n")
    refused(invoke(config, "models", "--no-reach"), "config.yaml:2: models.g.path: the config does not expand "
            "environment variables: write the path itself (~/ for the home directory)")


def test_a_password_in_an_endpoint_is_never_shown_nor_logged(tmp_path: Path) -> None:
    """`endpoint: http://bob:secret@proxy/v1` (a proxy's basic auth) put the password in every connect_error on the
    screen and in the routing log."""
    config = write(tmp_path, "models:\n  m: {provider: openai, model: m, endpoint: 'http://bob:hunter2secret@127.0.0.1:9/v1'}\n"
                             "agents:\n  chat: {primary: m}\n")
    asked = invoke(config, "ask", "--agent", "chat", "--json", "hi")
    assert asked.exit_code == 1, asked.output
    assert "cannot reach http://127.0.0.1:9/v1" in asked.output
    logged = invoke(config, "log", "--json", "--attempts")
    assert logged.exit_code == 0 and "connect_error" in logged.output, logged.output
    assert "hunter2secret" not in asked.output + logged.output


def test_models_with_the_postgresql_log_down_still_lists_the_models(tmp_path: Path) -> None:
    """A team's first `log.url`, PostgreSQL not up yet (port 1 here: refused at once): `models` said only
    'connection failed' and listed no model, though ask, chat and serve go on without it. Now it lists them from
    this host's own rows, says why the shared log was not read and what to check, and exits 1."""
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  local:\n    provider: ollama\n    model: qwen3.5\n"
                    "agents:\n  chat:\n    primary: local\n"
                    f"log:\n  url: postgresql://127.0.0.1:1/test\n  path: {tmp_path / 'log.sqlite3'}\n")
    out = CliRunner().invoke(app, ["--config", str(path), "models", "--no-reach"], terminal_width=200)
    assert out.exit_code == 1, out.output
    assert "local" in out.stdout and "available" in out.stdout, out.stdout
    assert "127.0.0.1:1" in out.stderr and "is PostgreSQL running and reachable there (log.url)?" in out.stderr
    assert str(tmp_path / "log.sqlite3") in " ".join(out.stderr.split()) and "Traceback" not in out.output


# --- a config file that cannot be read ----------------------------------------------------------------------------


def test_a_config_this_user_may_not_read_names_owner_mode_and_user(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A config readable by its owner only (chmod 600, as `install-service` advises for the env file beside it),
    read by another user (the service's, `sudo`): it said "cannot read: [Errno 13] Permission denied: '<the path
    again>'". The tests run as root, whom the system never refuses, so the refusal is the system's own error."""
    import pwd

    config = write(tmp_path, "models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n")
    config.chmod(0o600)
    real = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self == config:
            raise PermissionError(13, os.strerror(13), str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    me = pwd.getpwuid(os.getuid()).pw_name
    said = refused(invoke(config, "models", "--no-reach"), f"error: {config}: cannot read: permission denied",
                   f"owned by {me}, mode 600; this process runs as {me}", "chmod")
    assert "Errno" not in said and said.count(str(config)) == 1, said


def test_a_config_path_through_a_file_names_the_file(tmp_path: Path) -> None:
    """`--config config.yaml/local.yaml` (a file where a directory was meant): "[Errno 20] Not a directory"."""
    config = write(tmp_path, "models: {}\n")
    said = refused(invoke(config / "local.yaml", "models"), f"cannot read: {config} is a file, not a directory")
    assert "Errno" not in said, said


@pytest.mark.parametrize("written", ["ollama/qwen3:8b", "ollama_chat/qwen3:8b"])
def test_an_ollama_model_named_as_litellm_names_it_says_the_name_to_write(tmp_path: Path, written: str) -> None:
    """LiteLLM names an Ollama model with its route in front (`ollama/llama3:8b`); pasted here it was asked of
    Ollama as is — "model 'ollama/llama3:8b' not found" on every request (vitalops/datatune#108,
    BerriAI/litellm#17842). An OpenAI-compatible id with a slash (OpenRouter's `openai/gpt-4o`) is an id."""
    config = write(tmp_path, f"models:\n  local:\n    provider: ollama\n    model: {written}\n"
                             "  routed: {provider: openai, model: openai/gpt-4o, endpoint: 'http://127.0.0.1:9/v1'}\n"
                             "agents:\n  chat: {primary: local, fallbacks: [routed]}\n")
    prefix = written.split("/")[0]
    refused(invoke(config, "models", "--no-reach"), f"{config}:4: models.local.model: '{prefix}/…' is how LiteLLM "
            "names the provider in the model; here the provider is its own key: write model: qwen3:8b")
    config.write_text(config.read_text().replace(written, "qwen3:8b"))
    assert invoke(config, "models", "--no-reach").exit_code == 0


@pytest.mark.parametrize(("text", "said"), [
    ("models:\n  a:\n    provider: ollama\n    model: x\n    fallbacks: [a]\nagents:\n  chat: {primary: a}\n",
     "x.yaml:5: models.a.fallbacks: unknown key 'fallbacks' (a setting of agents.NAME, not of models.a: move it"),
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a, api_key_env: KEY}\n",
     "x.yaml:4: agents.chat.api_key_env: unknown key 'api_key_env' (a setting of models.NAME, not of agents.chat"),
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\nport: 8080\n",
     "x.yaml:5: port: unknown key 'port' (a setting of gateway, not of the top level: move it there)"),
    ("models:\n  a: {provider: ollama, model: x}\ntimeouts:\n  first_token: 120\nagents:\n  chat: {primary: a}\n",
     "x.yaml:3: timeouts: unknown key 'timeouts' (a setting of defaults, agents.NAME or models.NAME, not of the "
     "top level: move it there)"),
    # a timeout written straight under the agent or defaults belongs in that section's own timeouts:
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat:\n    primary: a\n    first_token: 120\n",
     "x.yaml:6: agents.chat.first_token: unknown key 'first_token' (a setting of agents.chat.timeouts, not of "
     "agents.chat: move it there)"),
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\ndefaults:\n  connect: 5\n",
     "x.yaml:6: defaults.connect: unknown key 'connect' (a setting of defaults.timeouts, not of defaults: move it"),
])
def test_a_setting_in_another_section_names_the_section(tmp_path: Path, text: str, said: str) -> None:
    """A key valid one section over — an agent's `fallbacks:` under the model (LiteLLM lists fallbacks beside
    the model), a model's `api_key_env:` under the agent, `port:` or `timeouts:` at the top — said only "unknown
    key", as if it were a typo, or named a key of the same spelling nowhere near."""
    refused(invoke(write(tmp_path, text, "x.yaml"), "models", "--no-reach"), said)


@pytest.mark.parametrize(("text", "said"), [
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat:\n  primary: a\n",
     "x.yaml:4: agents.chat: nothing is under 'chat:': 'primary' on line 5 is at its level: indent the lines"),
    ("models:\n  a:\n  provider: ollama\n  model: x\nagents:\n  chat: {primary: a}\n",
     "x.yaml:2: models.a: nothing is under 'a:': 'provider' on line 3 is at its level: indent the lines"),
    ("models:\n  a: {provider: ollama, model: x}\nagents:\nchat:\n  primary: a\n",
     "x.yaml:3: agents: nothing is under 'agents:': 'chat' on line 4 is at its level: indent the lines that belong "
     "to it deeper than 'agents:' (with spaces)"),
])
def test_lines_not_indented_under_their_key_are_named(tmp_path: Path, text: str, said: str) -> None:
    """`chat:` then `primary: a` at the same indent (an editor that kept the line's indent), or `agents:` then the
    agents at the left margin: it said "expected keys and values here (description, primary, …), got nothing" —
    what is missing is indentation, and the line that lacks it."""
    refused(invoke(write(tmp_path, text, "x.yaml"), "models", "--no-reach"), said)


def test_where_a_key_belongs_is_said_the_same_in_every_process() -> None:
    """The places were sorted by depth only from a set: which two of 'defaults', 'agents.NAME' and 'models.NAME' were
    named for a top-level `timeouts:` followed each process's string hash seed (a clean-clone CI saw the other)."""
    code = ("from modelyard.config.loader import _places; from modelyard.config.schema import Config; "
            "print(_places(Config, 'timeouts'))")
    said = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(1, 9)}
    assert len(said) == 1, said


# --- a newcomer's own config, the ninth walk ----------------------------------------------------------------------

def test_an_unknown_key_with_no_near_name_lists_the_keys_of_its_section(tmp_path: Path) -> None:
    """`timeouts: {timout: 5}` said "unknown key 'timout'" and no more: nothing near it ('total' is not), and no
    word of what the section takes. Winlogbeat's answer (elastic/go-ucfg#10: "Valid keys are api, event_id, …") and
    darling's (TedDriggs/darling#361, 'list valid fields on unknown field error') name them."""
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: x}\nagents:\n  chat:\n    primary: local\n"
                             "    timeouts:\n      timout: 5\n")
    refused(invoke(config, "models", "--no-reach"), "config.yaml:7: agents.chat.timeouts.timout: unknown key 'timout' "
            "(the keys here: queue, connect, first_token, idle, total)")


def test_a_block_of_anchors_under_an_x_key_is_skipped_as_compose_does(tmp_path: Path) -> None:
    """Docker Compose keeps the blocks its services merge (`<<: *env`) under top-level `x-` keys, which it skips
    (docs.docker.com/reference/compose-file/extension/, example 2). Here `x-ollama:` was 'unknown key', so a shared
    block had no place but inside a real model; under another name it said only "unknown key 'ollama-defaults'"."""
    config = write(tmp_path, "x-ollama: &ollama\n  provider: ollama\n  endpoint: http://127.0.0.1:9\nmodels:\n"
                             "  small:\n    <<: *ollama\n    model: 'llama3.2:3b'\n  big:\n    <<: *ollama\n"
                             "    model: 'qwen3:14b'\nagents:\n  chat: {primary: small, fallbacks: [big]}\n")
    out = invoke(config, "models", "--no-reach", "--json")
    assert out.exit_code == 0, out.output
    assert {(m["model"], m["provider"], m["provider_model"]) for m in json.loads(out.output)["models"]} == {
        ("small", "ollama", "llama3.2:3b"), ("big", "ollama", "qwen3:14b")}
    named = write(tmp_path, "ollama-defaults: &ollama\n  provider: ollama\nmodels:\n  small:\n    <<: *ollama\n"
                            "    model: x\nagents:\n  chat: {primary: small}\n", name="named.yaml")
    refused(invoke(named, "models", "--no-reach"), "named.yaml:1: ollama-defaults: unknown key 'ollama-defaults': ",
            "goes under a name starting with x- (x-ollama-defaults:)")


@pytest.mark.parametrize(("chain", "said"), [
    ("{primary: local, fallbacks: [chat]}",
     "config.yaml:6: agents.writer.fallbacks.0: 'chat' is an agent, and a chain names models (configured models: "
     "cloud, local); the models of chat's chain: cloud"),
    ("{primary: writer}", "config.yaml:6: agents.writer.primary: 'writer' is an agent, and a chain names models"),
])
def test_an_agent_named_in_a_chain_is_said_to_be_an_agent(tmp_path: Path, chain: str, said: str) -> None:
    """`fallbacks: [chat]` — falling back to another agent, as the orchestrator's consumers name agents — said
    "unknown model 'chat' …: define it under 'models:'", which reads as if an agent had to be made a model too."""
    config = write(tmp_path, "models:\n  local: {provider: ollama, model: x}\n  cloud: {provider: ollama, model: y}\n"
                             f"agents:\n  chat: {{primary: cloud}}\n  writer: {chain}\n")
    text = refused(invoke(config, "models", "--no-reach"), said)
    assert "define it under" not in text


def test_a_merge_of_one_value_is_said_at_the_merge() -> None:
    """`<<: *a` where `&a` names one value (`x-a: &a ollama`): YAML's merge key takes a mapping or a list of them
    (yaml.org/type/merge.html), and PyYAML's refusal was said at the anchor's line, where nothing is wrong."""
    text = "x-a: &a ollama\nmodels:\n  local:\n    <<: *a\n    model: x\nagents:\n  chat: {primary: local}\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="config.yaml")
    assert str(raised.value).startswith("config.yaml:4: not valid YAML: expected a mapping or list of mappings for "
                                        "merging"), raised.value
    assert "&NAME must be on keys and values" in str(raised.value)


@pytest.mark.parametrize(("text", "said"), [
    # LiteLLM's model_list entries name the provider inside `model: ollama/llama3` (docs.litellm.ai, "Proxy Config"):
    # an entry copied without it said "required key 'provider' is missing" and not what goes there
    ("models:\n  local: {model: 'llama3.2:3b'}\nagents:\n  chat: {primary: local}\n",
     "config.yaml:2: models.local.provider: required key 'provider' is missing (one of: anthropic, llamacpp, ollama, "
     "openai)"),
    # the merge written above its anchor (or the anchor in another file: docker/compose#5621, anchors do not cross
    # files) said PyYAML's "found undefined alias 'base'" alone
    ("models:\n  local:\n    <<: *base\n    model: x\n  other: &base {provider: ollama, model: y}\n"
     "agents:\n  chat: {primary: local}\n",
     "config.yaml:3: not valid YAML: found undefined alias 'base' (an alias *NAME needs &NAME on a block above it"),
])
def test_a_missing_provider_or_anchor_says_what_goes_there(tmp_path: Path, text: str, said: str) -> None:
    refused(invoke(write(tmp_path, text), "models", "--no-reach"), said)


def test_a_gguf_written_absolute_that_is_not_there_is_not_told_to_be_written_absolute(tmp_path: Path) -> None:
    """review31: `path: /srv/models/gone.gguf` missing was told 'write its path at that line (absolute, or ~/…)' —
    it already is absolute; the hint for a path written relative does not fit it."""
    gone = tmp_path / "elsewhere" / "gone.gguf"
    config = write(tmp_path, f"models:\n  g: {{provider: llamacpp, path: {gone}}}\nagents:\n  chat: {{primary: g}}\n")
    [row] = json.loads(invoke(config, "models", "--no-reach", "--json").stdout)["models"]
    assert row["why"] == (f"GGUF file not found: {gone} — {config}:2: models.g.path is '{gone}': put the file there, "
                          "or correct the path at that line"), row


def test_an_mcp_program_that_is_there_but_cannot_be_run_is_said_so(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`command: ./mcp/notes.py` written but not made executable (a script saved from an editor or an archive keeps
    mode 644: the MCP quickstarts start servers as `python server.py` or `uv run`, so the bit is easily missing),
    or a directory named: `check` said the command 'is not found', sending the user to look for a file that is there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mcp").mkdir()
    script = tmp_path / "mcp" / "notes.py"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    script.chmod(0o644)
    with OllamaServer(["qwen2.5:7b"]) as ollama:
        for command, said, fix in (
                ("./mcp/notes.py", f"agent 'chat': MCP server command './mcp/notes.py' is not executable "
                 f"({tmp_path}/mcp/notes.py, read from the config file's directory)", "chmod +x"),
                ("./mcp", f"agent 'chat': MCP server command './mcp' is a directory ({tmp_path}/mcp, read from the "
                 "config file's directory)", "the program in it")):
            (tmp_path / "conf.yaml").write_text(
                f"models:\n  m: {{provider: ollama, model: 'qwen2.5:7b', endpoint: '{ollama.url}'}}\n"
                f"agents:\n  chat:\n    primary: m\n    tools: {{mcp: [{{command: {command}}}]}}\n"
                "log: {path: log.sqlite3}\n")
            checked = CliRunner().invoke(app, ["--config", "conf.yaml", "check", "--json"])
            assert checked.exit_code == 1, checked.output
            [found] = [f for f in json.loads(checked.stdout)["findings"] if "MCP server command" in f["message"]]
            assert found["message"] == said, found
            assert fix in found["suggestion"] and "not found" not in found["message"], found
