"""Frictions of the ninth newcomer walk: README's "Your own models, step by step" in an empty HOME against fake
Ollama, OpenAI-compatible, Anthropic and Telegram servers and the embedded model — then the paths the earlier walks
did not take: chat's commands typed bare, a terminal that is not UTF-8, text piped in that is not UTF-8. Each runs
the ``modelyard`` command in a subprocess where the terminal's encoding matters (it is set at interpreter start)."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import AnthropicServer, OllamaServer
from tests.fakes.openai_compat import OpenAIServer
from typer.testing import CliRunner

from modelyard.cli import app


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    """A first config of one's own: a model on Ollama, and the embedded model (``provider: llamacpp``, whose
    provider id is empty) as its fallback, as `init --detect` writes them."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="Local answer – done → ok.") as server:
        path = tmp_path / "config.yaml"
        path.write_text(f"models:\n  llama: {{provider: ollama, model: 'llama3.2:3b', endpoint: '{server.url}'}}\n"
                        "  embedded: {provider: llamacpp}\n"
                        "agents:\n  chat: {primary: llama, fallbacks: [embedded]}\n  engineer: {primary: llama}\n"
                        f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        yield path


def modelyard(*args: str, input: str | bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "modelyard", *args], input=input.encode() if isinstance(input, str)
                          else input, capture_output=True, timeout=90, env={**os.environ, "COLUMNS": "200", **env})


def test_agent_typed_bare_in_chat_says_who_it_talks_to(config: Path) -> None:
    """`/agent` with no name (to see who one is talking to, or as Telegram's bot takes it) said "'' is a model (the
    provider's id of 'embedded'), not an agent": the in-process model's id is empty, and the empty name matched it.
    It says who the chat talks to and how to switch."""
    said = CliRunner().invoke(app, ["--config", str(config), "chat", "--agent", "engineer"],
                              input="/agent\n/quit\n", env={"COLUMNS": "200"})
    assert said.exit_code == 0, said.output
    assert "talking to engineer; /agent NAME switches (agents: chat, engineer, or auto)" in said.output, said.output
    assert "is a model" not in said.output, said.output


def test_an_empty_agent_option_asks_for_a_name(config: Path) -> None:
    """`modelyard ask --agent "$AGENT" …` with the variable unset named the embedded model as what '' is."""
    said = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "", "hi"], env={"COLUMNS": "200"})
    assert said.exit_code == 2, said.output
    assert "--agent needs an agent's name (agents: chat, engineer, or auto)" in said.output, said.output
    assert "is a model" not in said.output, said.output


@pytest.mark.parametrize("command", [["--help"], ["models"], ["ask", "--agent", "chat", "hi"]])
def test_a_terminal_that_is_not_utf8_gets_plain_characters_not_a_traceback(config: Path, command: list[str]) -> None:
    """A terminal in Latin-1 (LANG=de_DE.ISO-8859-1; a Windows console's cp1252) — PYTHONIOENCODING stands in for
    its locale here, which this machine does not have — ended `--help` at its 👍, `models` at its '–' and `ask` at the
    route line's '→' in a UnicodeEncodeError traceback. They are written as ASCII stand-ins now."""
    said = modelyard("--config", str(config), *command, PYTHONIOENCODING="latin-1")
    out, errors = said.stdout.decode("latin-1"), said.stderr.decode("latin-1")
    assert "Traceback" not in errors and "UnicodeEncodeError" not in errors, errors
    assert said.returncode == 0, errors
    if command[0] == "ask":
        assert out.strip() == "Local answer - done -> ok.", out
        assert "chat -> llama" in errors, errors


def test_text_piped_in_that_is_not_utf8_is_asked_and_said(config: Path) -> None:
    """`cat notes-latin1.txt | modelyard ask` (or `git diff` of such a file) on a UTF-8 terminal ended in a
    UnicodeDecodeError traceback (standard input strict, as under LANG=en_US.UTF-8). The text is asked, its stray
    bytes replaced, and a note says which and how to convert it."""
    said = modelyard("--config", str(config), "ask", "--agent", "chat", input=b"r\xe9sum\xe9 this\n",
                     PYTHONIOENCODING="utf-8")
    errors = said.stderr.decode()
    assert said.returncode == 0 and "Traceback" not in errors, errors
    assert ("note: standard input is not UTF-8 text: 2 byte(s) of it are not (the first, 0xe9, at byte 1) and were "
            "sent as '\ufffd'; to send them as written, convert the text first (iconv -f ITS-ENCODING -t UTF-8 FILE "
            "| modelyard ask)") in errors, errors
    assert "write failed" not in errors, errors


def test_a_prompt_argument_that_is_not_utf8_reaches_the_log(config: Path, tmp_path: Path) -> None:
    """`modelyard ask "$(cat notes-latin1.txt)"`: the stray bytes came in as lone surrogates, went to the model so,
    and the log said "write failed (UnicodeEncodeError … surrogates not allowed)" under the answer."""
    said = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "ask", "--agent", "chat",
                           b"caf\xe9 au lait"], capture_output=True, timeout=90, env={**os.environ, "COLUMNS": "200"})
    errors = said.stderr.decode()
    assert said.returncode == 0, errors
    assert "write failed" not in errors and "note: the prompt is not UTF-8 text: 1 byte(s)" in errors, errors
    logged = CliRunner().invoke(app, ["--config", str(config), "log", "--json", "-n", "1"])
    assert '"prompt": "caf\\ufffd au lait"' in logged.output, logged.output


def test_a_system_prompt_going_on_at_its_keys_indentation_is_said_at_its_line(tmp_path: Path) -> None:
    """A long ``system:`` broken onto a second line at the key's own indentation (the way one wraps text) said
    "not valid YAML: could not find expected ':'" at the line *after* it — past the end when it was the last — and
    nothing of what to write. Said at its own line now, with the two ways to write it; the text is not repeated."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: 'qwen2.5:7b'}\nagents:\n  chat:\n    primary: a\n"
                      "    system: You are a careful assistant\n    who answers briefly\n")
    said = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"], env={"COLUMNS": "300"})
    assert said.exit_code == 2, said.output
    assert (f"error: {config}:7: not valid YAML: this line has no ': ', among lines that are keys: if it goes on from "
            "the value above it, indent it deeper than that value's key (or write the value in quotes, or after '|' "
            "on lines of its own); if it is a key, write 'key: value'") in said.output, said.output
    assert "briefly" not in said.output


def test_a_bench_that_could_measure_no_model_says_so_and_is_not_done(tmp_path: Path) -> None:
    """`modelyard bench bench.yaml --models claude-haiku` before exporting the key: every run skipped, yet it printed
    an empty "recommendations" heading and "results: run … (table bench_runs)" — a run with no rows — and exited 0,
    as if it had measured. It says nothing was measured and what to do, exit 1 (README: 1 is "not done")."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  cloud: {provider: anthropic, model: claude-haiku-4-5, api_key_env: "
                      "MODELYARD_TEST_NO_SUCH_KEY, price: {input: 1, output: 5}}\nagents:\n  chat: {primary: cloud}\n"
                      f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    suite = tmp_path / "bench.yaml"
    suite.write_text("name: mine\nk: 1\nagents:\n  chat:\n    tasks:\n      - id: hi\n        prompt: Say hi.\n"
                     "        checks:\n          - contains: hi\n")
    said = CliRunner().invoke(app, ["--config", str(config), "bench", str(suite)], env={"COLUMNS": "300"})
    assert said.exit_code == 1, said.output
    assert ("nothing measured: no candidate model could run (each one's reason above) — set its key or start its "
            "server, or name others with --models (`modelyard models` says which can answer)") in said.output
    assert "results: run" not in said.output and "recommendations" not in said.output, said.output


def test_plan_says_a_size_is_unknown_because_the_server_is_down_or_lacks_the_model(tmp_path: Path) -> None:
    """`modelyard plan` with Ollama not started (or the model not pulled yet) said "the size of a is unknown — set
    memory_gb for it": a newcomer looked up and typed a size the server tells by itself once it runs. It says why the
    server told none, and what mends it."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: connection refused
        with OllamaServer(models=["llama3.2:3b"]) as server:
            config = tmp_path / "config.yaml"
            config.write_text(f"models:\n  stopped: {{provider: ollama, model: 'qwen2.5:7b', endpoint: '{down}'}}\n"
                              f"  unpulled: {{provider: ollama, model: 'mistral:7b', endpoint: '{server.url}'}}\n"
                              "agents:\n  chat: {primary: stopped, fallbacks: [unpulled]}\n")
            said = CliRunner().invoke(app, ["--config", str(config), "plan", "--ram", "16"], env={"COLUMNS": "400"})
    assert said.exit_code == 0, said.output
    text = " ".join(said.output.split())
    assert "the size of stopped, unpulled is unknown (why: the notes below)" in text, text
    assert (f"note: stopped: size unknown (not counted): its server told none — cannot reach {down}: connection refused"
            in text), text
    assert (f"note: unpulled: size unknown (not counted): its server told none — 'mistral:7b' is not on the Ollama at "
            f"{server.url} (`ollama pull mistral:7b` there") in text, text
    assert "mended, `plan` reads the size from it (or set memory_gb in the config)" in text, text


def test_a_refused_key_names_its_variable_and_what_to_do(tmp_path: Path) -> None:
    """A key pasted wrong (or another service's) into the variable: `ask` said "auth_error: HTTP 401
    authentication_error: invalid x-api-key" — the server's words, nothing of which variable modelyard read the key
    from. A server that wants a key where none is configured (vLLM's --api-key) said only its 401. Each names what to
    set now; the key itself is never shown."""
    with AnthropicServer(api_key="sk-ant-right") as anthropic, OpenAIServer(["m"], api_key="vllm-key") as vllm:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"models:\n  claude: {{provider: anthropic, model: claude-haiku-4-5, api_key_env: MY_CLAUDE_KEY, endpoint: "
            f"'{anthropic.url}', price: {{input: 1, output: 5}}}}\n"
            f"  vllm: {{provider: openai, model: m, endpoint: '{vllm.url}/v1'}}\n"
            "agents:\n  chat: {primary: claude, fallbacks: [vllm]}\n"
            f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        said = CliRunner().invoke(app, ["--config", str(config), "ask", "--agent", "chat", "hi"],
                                  env={"COLUMNS": "400", "MY_CLAUDE_KEY": "sk-ant-pasted-wrong"})
        probed = CliRunner().invoke(app, ["--config", str(config), "probe", "claude", "--only", "reachable"],
                                    env={"COLUMNS": "400", "MY_CLAUDE_KEY": "sk-ant-pasted-wrong"})
        listed = CliRunner().invoke(app, ["--config", str(config), "models"],  # "last auth_error 2s ago" alone
                                    env={"COLUMNS": "400", "MY_CLAUDE_KEY": "sk-ant-pasted-wrong"})
    assert said.exit_code == 1, said.output
    assert ("— the key in MY_CLAUDE_KEY was refused: check its value — revoked, cut short when pasted, or another "
            "service's key — then ask again") in said.output, said.output
    assert ("— the server wants a key and none is configured: set models.vllm.api_key_env to the name of the "
            "environment variable that holds it") in said.output, said.output
    assert "the key in MY_CLAUDE_KEY was refused" in probed.output, probed.output
    listing = " ".join(listed.output.split())
    assert "ago: HTTP 401" in listing and "the key in MY_CLAUDE_KEY was refused" in listing, listing
    assert "sk-ant-pasted-wrong" not in said.output + probed.output + listed.output


@pytest.mark.parametrize(("section", "said"), [
    ("telegram: {token: '123456789:AAHsecretsecretsecret'}",
     "telegram.token: credentials are never written in the config: take the token out of this file and export "
     "TELEGRAM_BOT_TOKEN=… in the environment (the variable modelyard reads; token_env: names another)"),
    ("gateway:\n  host: 0.0.0.0\n  api_keys: [AAHsecretsecretsecret]",
     "gateway.api_keys: credentials are never written in the config: take the keys out of this file, put them "
     "comma-separated in an environment variable (export MODELYARD_API_KEYS=…) and name it with 'api_keys_env: "
     "MODELYARD_API_KEYS'"),
    ("telegram: {allowed_users: 12345}", "telegram.allowed_users: a list of user ids: write allowed_users: [12345]"),
    ("telegram: {allowed_users: '12345, 67890'}",
     "telegram.allowed_users: a list of user ids: write allowed_users: [12345, 67890]"),
    ("telegram: {allowed_users: '@myname'}",
     "telegram.allowed_users: Telegram user ids are numbers, not @names: start the bot with allowed_users: [], send "
     "it a message, and its log line 'ignored message from user N' gives your id"),
])
def test_the_bot_and_gateway_sections_written_as_other_tools_write_them(tmp_path: Path, section: str,
                                                                         said: str) -> None:
    """The Telegram bot's token pasted as `token:` said "unknown key 'token' (modelyard calls it 'token_env')" — which
    led to the token written as token_env's value; the gateway's keys as `api_keys:` said "did you mean
    'api_keys_env'?". One id, or ids in one string, said "expected a list here … got a number/text", and '@myname'
    in quotes the same, where the unquoted one said ids are numbers. Each says what to write; a secret never shown."""
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  a: {{provider: ollama, model: 'qwen2.5:7b'}}\nagents:\n  chat: {{primary: a}}\n"
                      f"{section}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"], env={"COLUMNS": "400"})
    assert out.exit_code == 2, out.output
    assert f"error: {config}:" in out.output and said in " ".join(out.output.split()), out.output
    assert "AAHsecret" not in out.output


@pytest.mark.parametrize("typed", ["config.yml", "config"])
def test_a_config_named_without_its_extension_or_with_the_other_one_names_the_file_beside_it(
        tmp_path: Path, typed: str) -> None:
    """`modelyard -c ~/.config/modelyard/config.yml …` (or without the extension) beside the config.yaml `init`
    wrote said "file not found (`modelyard init …config.yml` writes a starter config there)" — a second config, the
    first one's edits nowhere in it. It names the file beside it."""
    (tmp_path / "config.yaml").write_text("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n")
    out = CliRunner().invoke(app, ["--config", str(tmp_path / typed), "models", "--no-reach"], env={"COLUMNS": "400"})
    assert out.exit_code == 2, out.output
    said = " ".join(out.output.split())
    assert (f"error: {tmp_path / typed}: file not found: there is {tmp_path / 'config.yaml'} beside it — did you mean "
            "that file?") in said, said
    assert "writes a starter config" not in said, said


def test_an_empty_modelyard_config_variable_says_so(tmp_path: Path) -> None:
    """`MODELYARD_CONFIG=" "` (a script's variable set to blanks) read the shell's directory: "error:  : file not
    found" or ". : a directory". It says the path is empty."""
    out = CliRunner().invoke(app, ["models", "--no-reach"], env={"COLUMNS": "400", "MODELYARD_CONFIG": " "})
    assert out.exit_code == 2, out.output
    assert "the config's path is empty (a variable that is not set?): name the YAML file" in out.output, out.output


def test_ctrl_c_in_chat_stops_the_answer_and_the_chat_goes_on(tmp_path: Path) -> None:
    """Ctrl-C to stop a long answer ended `chat` itself (exit 130), where `ollama run`'s Ctrl-C stops the answer and
    keeps the session. It stops the answer — its route line said, the partial answer logged — and the next message
    is answered; Ctrl-C at the prompt (or /quit) still ends chat."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="First part of a long answer. " * 60,
                      chunk_interval=0.05) as server:
        config = tmp_path / "config.yaml"
        config.write_text(f"models:\n  llama: {{provider: ollama, model: 'llama3.2:3b', endpoint: '{server.url}'}}\n"
                          f"agents:\n  chat: {{primary: llama}}\nlog: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "chat", "--agent", "chat",
                                 "--local"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"tell me a long story\n")
        proc.stdin.flush()
        seen, deadline = b"", time.monotonic() + 60
        while b"First part" not in seen:  # the answer is being written
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                proc.kill()
                pytest.fail(f"no answer began: {seen!r}")
            seen += chunk
        proc.send_signal(signal.SIGINT)
        proc.stdin.write(b"and another\n/quit\n")  # read at the prompt chat goes back to
        proc.stdin.flush()
        out, errors = proc.communicate(timeout=90)
    said = errors.decode()
    assert proc.returncode == 0, said
    assert "chat → llama · CANCELLED" in said and "stopped; the chat goes on" in said, said
    assert said.count("chat → llama · wait") == 1, said  # the second message was answered
    assert "Traceback" not in said


def test_a_request_stopped_before_its_first_token_names_the_model_it_was_asking() -> None:
    """Ctrl-C while the local model was still loading said "chat → nobody · CANCELLED", as if no model had been
    tried; the log's attempt row names it. The route line does too."""
    from modelyard.cli.render import route_line
    from modelyard.errors import Reason
    from modelyard.outcomes import AttemptOutcome, RequestOutcome
    from modelyard.router.records import Attempt, RequestRecord

    record = RequestRecord("r1", "chat", outcome=RequestOutcome.CANCELLED, attempts=[
        Attempt("q", "llamacpp", AttemptOutcome.CANCELLED, Reason.CANCELLED)])
    assert route_line(record).startswith("chat → q · CANCELLED · "), route_line(record)


def test_warmup_of_a_model_not_pulled_says_the_pull_and_what_the_server_has(tmp_path: Path) -> None:
    """`modelyard warmup` of a model its Ollama lacks said Ollama's "model "mistral:7b" not found, try pulling it
    first" — where `models` and `probe` say the command and the models the server has. It says them too."""
    with OllamaServer(models=["llama3.2:3b"]) as server:
        config = tmp_path / "config.yaml"
        config.write_text(f"models:\n  a: {{provider: ollama, model: 'mistral:7b', endpoint: '{server.url}'}}\n"
                          "agents:\n  chat: {primary: a}\n")
        out = CliRunner().invoke(app, ["--config", str(config), "warmup"], env={"COLUMNS": "400"})
    assert out.exit_code == 1, out.output
    said = " ".join(out.output.split())
    assert (f"model_missing: 'mistral:7b' is not on the Ollama at {server.url} (`ollama pull mistral:7b` there, or "
            "name one it has in models.a.model); the server has: llama3.2:3b") in said, said
