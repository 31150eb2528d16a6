"""Frictions of the tenth newcomer walk: README and ``--help`` only, against the fakes (Ollama, llama-server,
Anthropic) and a real Valkey — a key variable not set, two chats open at once, a llama-server started with fewer
slots than the config counts, a Valkey's refusal named as Redis's — and the paths the earlier walks did not take."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import OllamaServer
from tests.fakes.llama_server import LlamaServer
from tests.helpers import orchestrated_config
from typer.testing import CliRunner

from modelyard.cli import app

SRC = str(Path(__file__).parents[2] / "src")


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200", **(env or {})})


@pytest.fixture
def ollama() -> Iterator[OllamaServer]:
    with OllamaServer(models=["llama3.2:3b"], reply_text="Local answer.") as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, ollama: OllamaServer) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"models:\n  llama: {{provider: ollama, model: 'llama3.2:3b', endpoint: '{ollama.url}'}}\n"
                    "agents:\n  chat: {primary: llama}\n"
                    f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    return path


# -- 1. a key variable not set says how to set it -----------------------------------------------------------------


def test_a_key_variable_not_set_says_how_to_set_it(tmp_path: Path) -> None:
    """README step 3 is `export ANTHROPIC_API_KEY=…`; skipped, `models` said "environment variable ANTHROPIC_API_KEY is
    not set" and nothing of what to do — a newcomer put it in a .env file (which LiteLLM and docker compose read,
    and modelyard does not) and saw the same line. It says the export, the config key that names the variable, and
    that no .env file is read. The value is never shown."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  claude: {provider: anthropic, model: claude-haiku-4-5, "
                      "api_key_env: WALK10_UNSET_KEY}\nagents:\n  chat: {primary: claude}\n"
                      f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    out = invoke("--config", str(config), "models", "--no-reach", "--json")
    [row] = json.loads(out.stdout)["models"]  # type: ignore[attr-defined]
    assert row["why"] == ("environment variable WALK10_UNSET_KEY is not set: `export WALK10_UNSET_KEY=<the key>` in "
                          "the shell that runs modelyard (models.claude.api_key_env names it; modelyard reads no .env "
                          "file)"), row


# -- 2. two chats of one config ----------------------------------------------------------------------------------


def _chat_process(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "chat", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _said(proc: subprocess.Popen[str], words: str, timeout: float = 90) -> str:
    """Stdout read until ``words`` appear (chat's prompt is written without a newline: read byte by byte)."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while words not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, (seen, proc.communicate())
        seen += proc.stdout.read(1)
    return seen


def test_two_chats_of_one_config_each_have_their_own_conversation(config: Path, ollama: OllamaServer) -> None:
    """Two terminals, `modelyard chat` in each (one config): both resumed the config's one conversation, and each
    sent the other's turns to the model as its own history — the answers came back in a context the person never
    wrote. A running chat now holds its conversation; a second one starts its own and says so. `llm` keeps
    conversations apart the same way (`-c` continues the latest, `--cid` a named one: llm.datasette.io, "Continuing a
    conversation")."""
    first = _chat_process(config)
    try:
        assert first.stdin is not None
        _said(first, "> ")
        first.stdin.write("the first terminal's secret plan\n")
        first.stdin.flush()
        _said(first, "Local answer.")
        asked = len(ollama.requests_to("/api/chat"))
        second = invoke("--config", str(config), "chat", input="what did I say?\n/quit\n")
        assert second.exit_code == 0, second.output  # type: ignore[attr-defined]
        said = second.output  # type: ignore[attr-defined]
        assert "another `modelyard chat` of this config is in its conversation: this one starts its own" in said, said
        assert "resuming" not in said, said
        sent = [r.json for r in ollama.requests_to("/api/chat")[asked:]]
        assert sent and "secret plan" not in json.dumps(sent), sent  # not the first terminal's history
        first.stdin.write("/quit\n")
        first.stdin.flush()
        assert first.wait(60) == 0
    finally:
        first.kill()
        first.communicate()
    # both closed: the next chat resumes the latest (the second's), as `llm -c` continues the latest
    again = invoke("--config", str(config), "chat", input="/quit\n")
    assert "resuming: 2 earlier messages" in again.output, again.output  # type: ignore[attr-defined]
    assert "another `modelyard chat`" not in again.output  # type: ignore[attr-defined]


def test_chat_new_starts_a_conversation_on_purpose(config: Path) -> None:
    """`chat --new`: a fresh conversation without /reset-ing the kept one; `chat` then goes on with the latest."""
    assert invoke("--config", str(config), "chat", input="remember 42\n/quit\n").exit_code == 0  # type: ignore[attr-defined]
    fresh = invoke("--config", str(config), "chat", "--new", input="/quit\n")
    assert "a new conversation" in fresh.output and "resuming" not in fresh.output, fresh.output  # type: ignore[attr-defined]
    kept = invoke("--config", str(config), "chat", input="/quit\n")  # the new one had no word: the kept one
    assert "resuming: 2 earlier messages" in kept.output, kept.output  # type: ignore[attr-defined]


# -- 5. llama-server's slots beside the configured limit ----------------------------------------------------------


def _llama_config(tmp_path: Path, server: LlamaServer, max_concurrent: int) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"models:\n  coder: {{provider: openai, model: qwen2.5-7b-instruct, endpoint: '{server.url}/v1', "
                    f"max_concurrent: {max_concurrent}}}\nagents:\n  chat: {{primary: coder}}\n"
                    f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    return path


def test_models_shows_llama_servers_slots_and_warns_when_the_config_counts_more(tmp_path: Path) -> None:
    """`llama-server --parallel 1` (its default) with `max_concurrent: 4`: `models` showed "4", and three of every four
    requests waited inside llama-server, unseen, their wait counted against the first-token timeout. Its slots are
    ``total_slots`` in ``GET /props`` (llama.cpp tools/server/README.md: "the total number of slots for process
    requests (defined by --parallel option)"): shown beside the limit, and the excess said with what to set."""
    with LlamaServer(["qwen2.5-7b-instruct"], total_slots=1) as server:
        config = _llama_config(tmp_path, server, 4)
        out = invoke("--config", str(config), "models")
        said = " ".join(out.output.split())  # type: ignore[attr-defined]
        as_json = json.loads(invoke("--config", str(config), "models", "--json").stdout)  # type: ignore[attr-defined]
    assert "4 (server 1)" in said, said
    assert ("coder: max_concurrent 4, but its llama-server runs 1 of its requests at once (total_slots 1 in "
            "llama-server's /props, its --parallel): requests past 1 wait inside llama-server, and that wait counts "
            "against the first-token timeout — set models.coder.max_concurrent: 1, or start llama-server with "
            "--parallel 4") in said, said
    [row] = as_json["models"]
    assert row["server_parallel"] == {"value": 1, "how": "total_slots 1 in llama-server's /props, its --parallel"}, row


def test_plan_warns_when_the_config_counts_more_slots_than_llama_server_has(tmp_path: Path) -> None:
    """The same for `plan`, whose notes said nothing of a llama-server's slots; a config within them says nothing."""
    with LlamaServer(["qwen2.5-7b-instruct"], total_slots=2) as server:
        over = invoke("--config", str(_llama_config(tmp_path, server, 3)), "plan")
        within = invoke("--config", str(_llama_config(tmp_path, server, 2)), "plan")
    said = " ".join(over.output.split())  # type: ignore[attr-defined]
    assert "coder: max_concurrent 3, but its llama-server runs 2 of its requests at once" in said, said
    assert "start llama-server with --parallel 3" in said, said
    assert "llama-server runs" not in within.output, within.output  # type: ignore[attr-defined]


# -- 4. a Valkey named as Valkey -----------------------------------------------------------------------------------


def test_a_valkey_without_eval_is_named_valkey_not_redis(tmp_path: Path) -> None:
    """A team's Valkey 8 (Debian's valkey-server) with EVAL renamed away: serve stopped saying "… is not a Redis
    modelyard can use …: this Redis runs no scripts" — the admin looked for a Redis. The server is named as it names
    itself (``INFO server``: ``valkey_version``, ``server_name:valkey``; valkey-io/valkey#306)."""
    from tests.shared.redis_kit import PrivateRedis, free_port
    from tests.shared.test_state_credentials import _config, _run

    with PrivateRedis(tmp_path, "--rename-command", "EVAL", "", "--rename-command", "EVALSHA", "",
                      program="valkey-server", missing="valkey-server is not installed (scripts/bootstrap.sh)") \
            as server:
        done = _run("--config", str(_config(tmp_path, server.url)), "serve", "--port", str(free_port()))
    assert done.returncode == 2, (done.returncode, done.stderr)
    said = " ".join(done.stderr.split())
    assert f"{server.url} is not a Valkey modelyard can use" in said, said
    assert "this Valkey runs no scripts — EVAL renamed or removed" in said, said
    assert "Redis" not in said.replace("redis://", ""), said


def test_a_forks_own_words_name_it_in_the_fault_read_out() -> None:
    """A Valkey restarting answers "LOADING Valkey is loading the dataset in memory" (valkey-io/valkey#306 renamed
    the replies); /healthz and the log then read "… Valkey is loading … — Redis is loading its data set". The fault's
    words name the server its reply names; a server not known stays Redis."""
    from redis.exceptions import BusyLoadingError

    from modelyard.router.shared.link import failure

    said = failure(BusyLoadingError("Valkey is loading the dataset in memory"))
    assert said.endswith("— Valkey is loading its data set after a restart; it answers once loaded"), said
    assert failure(BusyLoadingError("Redis is loading the dataset in memory")).endswith(
        "— Redis is loading its data set after a restart; it answers once loaded")
    assert "Redict is at maxmemory" in failure(Exception("OOM command not allowed when used memory > 'maxmemory'."),
                                               "Redict")


# -- the walk's own findings --------------------------------------------------------------------------------------


def test_ollama_pointed_at_a_llama_server_is_not_said_available(tmp_path: Path) -> None:
    """`provider: ollama` with the endpoint of a llama-server (port 8080, as its README starts it): `models` said
    "available" — the port answered — and `ask` then failed with "HTTP 404 … /api/chat: no such path there?". A server
    whose ``GET /api/tags`` is a 404 is no Ollama (ollama docs/api.md, "List Local Models"); one that lists models at
    ``/v1/models`` (llama.cpp tools/server/README.md, "GET /v1/models") is an OpenAI-compatible server: say what to
    set."""
    with LlamaServer(["qwen2.5-7b-instruct"]) as server:
        config = tmp_path / "config.yaml"
        config.write_text("models:\n  local: {provider: ollama, model: qwen2.5-7b-instruct, "
                          f"endpoint: '{server.url}'}}\n"
                          f"agents:\n  chat: {{primary: local}}\nlog: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        out = invoke("--config", str(config), "models", "--json")
    [row] = json.loads(out.stdout)["models"]  # type: ignore[attr-defined]
    assert row["state"] == "missing on its server", row
    assert row["why"] == (f"the server at {server.url} is not an Ollama (GET /api/tags: HTTP 404): it lists models at "
                          "/v1/models, as an OpenAI-compatible server does (llama-server, vLLM, LM Studio) — set "
                          f"models.local.provider: openai and endpoint: {server.url}/v1"), row


def test_an_agents_timeout_written_singular_is_its_timeouts_not_states(tmp_path: Path) -> None:
    """`timeout: 30` under an agent (as LiteLLM's `timeout:` and most clients' are written): the error said "a setting
    of state, not of agents.chat: move it there" — Redis's call bound, which would have done nothing for the agent.
    A key one letter off one of its own section's is that key."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: x}\nagents:\n  chat:\n    primary: local\n"
                      "    timeout: 30\n")
    out = invoke("--config", str(config), "models", "--no-reach")
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    said = " ".join(out.output.split())  # type: ignore[attr-defined]
    assert f"{config}:6: agents.chat.timeout: unknown key 'timeout' (did you mean 'timeouts'?)" in said, said
    assert "state" not in said, said


@pytest.mark.parametrize(("text", "said"), [
    ("models:\n  a: {provider: ollama, model: x\nagents:\n  chat: {primary: a}\n",
     ":2: not valid YAML: a '{' opened on line 2 is not closed: add the '}' that ends it"),
    ("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a, fallbacks: [a\n  b: {primary: a}\n",
     ":4: not valid YAML: a '[' opened on line 4 is not closed: add the ']' that ends it"),
])
def test_a_brace_left_open_is_said_at_its_line(tmp_path: Path, text: str, said: str) -> None:
    """`a: {provider: ollama, model: x` (the closing brace forgotten): PyYAML said "expected ',' or '}', but got ':'"
    at the NEXT line, where nothing is wrong. Its context mark ("while parsing a flow mapping", pyyaml parser.py
    ``parse_flow_mapping_key``) is the brace: said there, with what to add."""
    config = tmp_path / "c.yaml"
    config.write_text(text)
    out = invoke("--config", str(config), "models", "--no-reach")
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    assert f"{config}{said}" in " ".join(out.output.split()), out.output  # type: ignore[attr-defined]


def test_the_starter_bench_suite_against_a_smaller_config_says_what_to_run(config: Path, tmp_path: Path) -> None:
    """`bench --init` writes a suite of six agents; run against a config of one (`chat`), bench stopped at
    "agent 'orchestrator' is not in the config (agents: chat)" — file, line and key, and nothing of what to do."""
    suite = tmp_path / "bench.yaml"
    assert invoke("--config", str(config), "bench", "--init", str(suite)).exit_code == 0  # type: ignore[attr-defined]
    out = invoke("--config", str(config), "bench", str(suite))
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    said = " ".join(out.output.split())  # type: ignore[attr-defined]
    assert "is not in the config (agents: chat): bench the agents both have with --agents chat, or take its block " \
           "out of the suite" in said, said


def test_an_orchestrator_over_two_agents_routes(tmp_path: Path) -> None:
    """README's own routing set-up with a newcomer's two agents (`orchestrator: {consumers: [chat, writer]}`):
    `route` and every `ask` that named no agent ended in numpy's "ValueError: all the input array dimensions except
    for the concatenation axis must match exactly" — scikit-learn's logistic regression of two classes is one row
    (``coef_`` of shape (1, n_features): scikit-learn docs, LogisticRegression, "coef_ is of shape (1, n_features)
    when the given problem is binary"), its naive Bayes two, and the members were stacked side by side."""
    config = orchestrated_config(tmp_path, ["chat", "writer"])
    out = invoke("--config", str(config), "route", "--json", "write a poem about the sea")
    assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
    assert json.loads(out.stdout)["agent"] in ("chat", "writer"), out.stdout  # type: ignore[attr-defined]


def test_route_without_an_orchestrator_says_what_to_write(config: Path) -> None:
    """`modelyard route …` on a config without one said "set orchestration.agent to an agent whose consumers are
    other agents": the idea, not the lines to write."""
    out = invoke("--config", str(config), "route", "hello")
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    said = " ".join(out.output.split())  # type: ignore[attr-defined]
    assert ("under agents: orchestrator: {primary: llama, consumers: [chat]} — and orchestration: {agent: "
            "orchestrator}") in said, said


def test_ollama_not_running_says_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commonest first failure — Ollama installed, not started — read "nothing listening on 127.0.0.1:11434
    (Connection refused)" and no more. Its own address refusing says to start it (ollama docs, linux.md: `ollama
    serve`, the systemd service). (The refusal is stood in for: this machine's 11434 is not the test's to free.)"""
    from modelyard.config import parse_config
    from modelyard.ops import reach
    from modelyard.providers import build_provider

    cfg = parse_config("models:\n  small: {provider: ollama, model: 'llama3.2:3b'}\n"
                       "  there: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                       "agents:\n  chat: {primary: small}\n", "c.yaml")
    monkeypatch.setattr(reach, "connects", lambda addresses, budget=0: {
        a: f"nothing listening on {a[0]}:{a[1]} (Connection refused)" for a in addresses})
    found = reach.unreachable({n: build_provider(n, m) for n, m in cfg.models.items()})
    assert found["small"] == ("nothing listening on 127.0.0.1:11434 (Connection refused); Ollama is not running "
                              "here: start it (`ollama serve`, `sudo systemctl start ollama`, or the Ollama app), then "
                              "`ollama pull` the model if `ollama list` does not show it"), found
    assert found["there"] == "nothing listening on 127.0.0.1:9 (Connection refused)", found  # not Ollama's own port


def test_a_model_named_as_the_agent_says_which_agent_uses_it_in_english(config: Path) -> None:
    """`ask --agent llama` (the model `models` lists) said "'llama' is a model, not an agent; chat use it"."""
    out = invoke("--config", str(config), "ask", "--agent", "llama", "hi")
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    assert "'llama' is a model, not an agent; chat uses it (chat first: --agent chat)" in out.output, out.output  # type: ignore[attr-defined]


def test_serve_on_port_0_takes_a_free_port_and_says_which(config: Path, tmp_path: Path) -> None:
    """Scripts and tests that start `serve` picked a free port, closed it and passed it (`--port N`), racing every other
    program to it (tests/integration/test_cli_newcomer.py's serve tests flaked once so); `--port 0` was refused
    ("Input should be greater than or equal to 1"). It takes a free port, as uvicorn's own --port 0 does, and the
    start line names it — the port it then serves on, and the one ask/chat borrow through."""
    import re
    import urllib.request

    out = tmp_path / "serve.out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    env.pop("MODELYARD_CONFIG", None)
    with out.open("w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "serve", "--port", "0",
                                 "--no-keep-warm"], stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"modelyard gateway on http://127\.0\.0\.1:(\d+) ", out.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, (out.read_text(), proc.communicate())
            time.sleep(0.05)
        port = int(found.group(1))
        assert port != 0
        while True:  # the start line comes before uvicorn's start-up: the port answers once it is done
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as answer:
                    listed = json.loads(answer.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.1)
        assert "chat" in [m["id"] for m in listed["data"]], listed
        models = invoke("--config", str(config), "models", "--no-reach")
        assert f"shared with `modelyard serve` (pid {proc.pid})" in models.output, models.output  # type: ignore[attr-defined]
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=60)
        proc.kill()
