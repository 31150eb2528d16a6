"""Frictions of the eleventh newcomer walk: README and docs/ followed literally as (a) a Mac user with Ollama (the
Ollama fake on loopback), (b) a small team (two gateways, the real Redis and PostgreSQL), (c) someone editing the
config by hand — a server that takes connections and never answers, a plan short of its headroom, a list item
without its space, a replay candidate not written yet, a team database or role not created yet."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.fakes import OllamaServer
from tests.pg import ADMIN_URL
from typer.testing import CliRunner

import modelyard
from modelyard.cli import app

#: the modelyard this test imported (the child runs the same code)
SRC = Path(modelyard.__file__).resolve().parents[1]


def invoke(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", **(env or {})})


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that takes connections and never answers — a whole Ollama hung (ollama/ollama#8348 "API
    Hangs", #2176 "instance stuck and hanging after few hours": requests time out until it is restarted, #3000
    "Server hangs with no response"), or a program on the port that does not speak HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


# -- 1. a server that takes connections and never answers ---------------------------------------------------------


def test_models_calls_a_server_that_never_answers_not_answering(tmp_path: Path, silent_port: int) -> None:
    """`models` connected to each server and, for Ollama, asked its /api/tags bounded to 1 s — a timeout there was
    "cannot tell", so a hung Ollama was `available`; an OpenAI-compatible server got no question at all. Each now
    gets one plain GET (its listing) and is `not answering` when nothing comes back, exit 3 when none can answer."""
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  o: {{provider: ollama, model: 'llama3.2:3b', endpoint: 'http://127.0.0.1:{silent_port}'}}\n"
                      f"  v: {{provider: openai, model: qwen, endpoint: 'http://127.0.0.1:{silent_port}/v1'}}\n"
                      "agents:\n  chat: {primary: o, fallbacks: [v]}\n"
                      f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    out = invoke("--config", str(config), "models", "--json")
    assert out.exit_code == 3, out.output  # type: ignore[attr-defined]
    rows = {r["model"]: r for r in json.loads(out.stdout)["models"]}  # type: ignore[attr-defined]
    assert {r["state"] for r in rows.values()} == {"not answering"}, rows
    assert rows["o"]["why"].startswith(f"http://127.0.0.1:{silent_port} takes connections but did not answer GET "
                                       "/api/tags within 2s"), rows["o"]
    assert "GET /models within 2s" in rows["v"]["why"], rows["v"]


def test_models_still_calls_an_answering_ollama_available(tmp_path: Path) -> None:
    """The question is one GET of the listing: a server that answers it — Ollama, here with the model — stays
    `available` (ollama/ollama#1863: chats hung while /api/tags answered; that is `probe`'s, not this check's)."""
    with OllamaServer(models=["llama3.2:3b"]) as ollama:
        config = tmp_path / "config.yaml"
        config.write_text(f"models:\n  o: {{provider: ollama, model: 'llama3.2:3b', endpoint: '{ollama.url}'}}\n"
                          f"agents:\n  chat: {{primary: o}}\nlog: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
        out = invoke("--config", str(config), "models", "--json")
    assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
    [row] = json.loads(out.stdout)["models"]  # type: ignore[attr-defined]
    assert row["state"] == "available", row


def test_init_detect_says_a_server_that_never_answers_is_there(tmp_path: Path, silent_port: int) -> None:
    """`init --detect --endpoint 127.0.0.1:PORT` at a hung server said `nothing found (connect_error)` — the words of
    a server that is down, and its error sent the user to the host, the port or OLLAMA_HOST=0.0.0.0, all right."""
    out = invoke("init", str(tmp_path / "c.yaml"), "--endpoint", f"127.0.0.1:{silent_port}")
    assert out.exit_code == 1, out.output  # type: ignore[attr-defined]
    said = out.output  # type: ignore[attr-defined]
    assert (f"http://127.0.0.1:{silent_port}: nothing found (no answer): it takes connections but answered nothing "
            "in time") in said, said
    assert "connect_error" not in said.split("error:")[0], said


def test_init_detect_at_the_usual_addresses_says_a_hung_ollama_too(tmp_path: Path, silent_port: int) -> None:
    """Without --endpoint (OLLAMA_HOST naming the hung server, as `ollama serve` reads it) the same words; the
    usual ports where nothing runs keep their short `connect_error`."""
    out = invoke("init", str(tmp_path / "c.yaml"), "--detect", env={"OLLAMA_HOST": f"127.0.0.1:{silent_port}"})
    said = out.output  # type: ignore[attr-defined]
    assert f"http://127.0.0.1:{silent_port}: nothing found (no answer): it takes connections" in said, said


# -- 2. plan short of its headroom -----------------------------------------------------------------------------


def test_plan_does_not_say_free_memory_beside_does_not_fit(tmp_path: Path) -> None:
    """The Total row said "Leaves ~6 GB free" above "does not fit: 17.8 GB needed, 17.7 GB usable": the RAM left is
    inside the headroom kept for the system. It says so when the plan does not fit."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  big: {provider: ollama, model: 'qwen3:14b', endpoint: 'http://127.0.0.1:9', "
                      "memory_gb: 9.0, context: 1024}\nagents:\n  chat: {primary: big}\n"
                      f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    tight = invoke("--config", str(config), "plan", "--ram", "10", "--headroom", "2")
    said = tight.output  # type: ignore[attr-defined]
    assert "does not fit" in said and "Leaves 0.9 GB, less than the 2 GB headroom" in said, said
    assert "GB free" not in said, said
    roomy = invoke("--config", str(config), "plan", "--ram", "64", "--headroom", "8")
    assert "fits" in roomy.output and "GB free" in roomy.output, roomy.output  # type: ignore[attr-defined]


# -- 3. a list item without its space -----------------------------------------------------------------------------


def test_a_dash_glued_to_a_list_item_says_to_add_the_space(tmp_path: Path) -> None:
    """`fallbacks:` then `  -local` on the next line: YAML reads one text, and the error said only "expected a
    list here … got text", the dash in plain sight."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: 'llama3.2:3b'}\n"
                      "  other: {provider: ollama, model: 'qwen3:14b'}\n"
                      "agents:\n  chat:\n    primary: other\n    fallbacks:\n      -local\n")
    out = invoke("--config", str(config), "models", "--no-reach")
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    assert ("agents.chat.fallbacks: expected a list here, e.g. [a, b] (or one item: [a]), got text: a '-' with no "
            "space after it does not start a list item in YAML — write '- NAME'") in out.output, out.output  # type: ignore[attr-defined]


# -- 4. replay's candidate ----------------------------------------------------------------------------------------


def test_replay_with_no_candidate_yet_says_to_copy_the_config(tmp_path: Path) -> None:
    """README's team step 5 is `modelyard replay --config candidate.yaml`, a file nothing wrote: it said
    "`modelyard init candidate.yaml` writes a starter config there" — the embedded default, not the team's setup
    with one change. It says to copy the current config and edit it."""
    config = tmp_path / "team.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: 'llama3.2:3b'}\nagents:\n  chat: {primary: local}\n"
                      f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n")
    out = invoke("--config", str(config), "replay", "--config", str(tmp_path / "candidate.yaml"))
    assert out.exit_code == 2, out.output  # type: ignore[attr-defined]
    assert (f"candidate.yaml: file not found — a candidate is a copy of your config with the change to try: "
            f"cp {config} {tmp_path / 'candidate.yaml'}, edit it") in out.output, out.output  # type: ignore[attr-defined]
    assert "modelyard init" not in out.output  # type: ignore[attr-defined]


# -- 5. the team's PostgreSQL role and database -------------------------------------------------------------------


def _log_said(tmp_path: Path, user: str | None, database: str) -> str:
    """`modelyard log` (exit 1) with log.url naming ``user`` (None: the admin's) and ``database`` on the real server."""
    server = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    where = f"{user or server.get('user', 'postgres')}@{server.get('host', '127.0.0.1')}:{server.get('port', 5432)}"
    config = tmp_path / "team.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: 'llama3.2:3b'}\nagents:\n  chat: {primary: local}\n"
                      f"log: {{url: 'postgresql://{where}/{database}'}}\n")
    out = invoke("--config", str(config), "log", env={"MODELYARD_DATA_DIR": str(tmp_path / "data")})
    assert out.exit_code == 1, out.output  # type: ignore[attr-defined]
    return str(out.output)  # type: ignore[attr-defined]


def test_a_log_role_not_created_yet_says_how_to_create_it(tmp_path: Path) -> None:
    """The README's step is `CREATE DATABASE modelyard OWNER modelyard`, which fails on a server without that role
    (`role "modelyard" does not exist`), and `log` then repeated libpq's words alone. The real PostgreSQL's refusal
    of an unknown role now comes with the statement to run."""
    said = _log_said(tmp_path, "nc11_walk_no_such_role", "postgres")
    assert ('role "nc11_walk_no_such_role" does not exist — create the role as a superuser (psql: CREATE ROLE '
            '"nc11_walk_no_such_role" LOGIN PASSWORD') in said, said


def test_a_log_database_not_created_yet_says_modelyard_makes_only_its_tables(tmp_path: Path) -> None:
    """"modelyard creates its tables" (README) — not the database: a URL naming one not created said libpq's
    `database "…" does not exist` and nothing of who makes it."""
    said = _log_said(tmp_path, None, "nc11_walk_no_such_db")
    assert ('database "nc11_walk_no_such_db" does not exist — modelyard creates its tables, not the database: create '
            'it (psql: CREATE DATABASE "nc11_walk_no_such_db" OWNER') in said, said


# -- 6. the Ollama fake's /api/show -----------------------------------------------------------------------------


def test_init_detect_leaves_out_an_embedding_model_the_fake_shows(tmp_path: Path) -> None:
    """The Ollama fake's /api/show said `capabilities: ["completion"]` of every model, nomic-embed-text too (the
    real one says ["embedding"]: docs.ollama.com/api/show), and `init --detect` against it made the embedding model
    the chat agents' primary — a walk with the fake saw a failure no real Ollama gives."""
    with OllamaServer(models=["llama3.2:3b", "nomic-embed-text:latest"], chat_models=["llama3.2:3b"],
                      template="{{ .Prompt }}") as ollama:
        out = invoke("init", str(tmp_path / "c.yaml"), "--endpoint", ollama.url)
    said = out.output  # type: ignore[attr-defined]
    assert out.exit_code == 0, said
    assert "left out nomic-embed-text:latest: an embedding model, it cannot chat" in said, said
    assert "chat: llama3.2-3b" in said, said


# -- 7. NO_COLOR on a terminal ------------------------------------------------------------------------------------


def _on_a_terminal(tmp_path: Path, **env: str) -> bytes:
    """What a terminal shows of `modelyard --config missing.yaml models` (an error line, styled on a terminal)."""
    environment = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "PYTHONPATH": str(SRC),
                   "TERM": "xterm-256color", **env}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its standard input, output and error
        os.execve(sys.executable, [sys.executable, "-m", "modelyard", "--config", str(tmp_path / "missing.yaml"),
                                   "models"], environment)
    shown = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child ended and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    return shown


def test_no_color_on_a_terminal_writes_no_styling(tmp_path: Path) -> None:
    """`NO_COLOR=1` on a terminal: rich dropped the colours and kept bold, dim and strike — `error:` in bold, the
    tables' headers bold. The no-color.org convention names colour; GNU libtextstyle reads it as "colors and other
    text styling" (its manual, "The environment variable NO_COLOR"), and a user who sets it asks for plain text."""
    plain = _on_a_terminal(tmp_path, NO_COLOR="1")
    assert b"error:" in plain and b"\x1b[" not in plain, plain
    styled = _on_a_terminal(tmp_path)  # the same terminal without it: styled, so the terminal is one
    assert b"\x1b[" in styled and b"error:" in styled, styled


# -- 8. the team's gateway as a service ---------------------------------------------------------------------------


def test_install_service_says_a_keyed_gateway_would_listen_on_loopback(tmp_path: Path) -> None:
    """README's team: `serve --host 0.0.0.0` on each gateway host, then "As a service (`modelyard install-service`
    on each gateway host)". The unit runs `modelyard serve` with the config's host — 127.0.0.1 unless set — and the
    laptops reached nothing. A gateway given keys for other callers that would listen on loopback is said, with the
    line to write; one that listens beyond it is not."""
    def said(host: str) -> str:
        config = tmp_path / f"team-{host}.yaml"
        config.write_text("models:\n  local: {provider: ollama, model: 'llama3.2:3b'}\n"
                          "agents:\n  chat: {primary: local}\n"
                          f"gateway: {{host: '{host}', api_keys_env: WALK11_KEYS}}\n")
        out = invoke("--config", str(config), "install-service", "--dry-run", "--platform", "linux",
                     "--dir", str(tmp_path / "units"))
        assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
        return " ".join(out.output.split())  # type: ignore[attr-defined]

    assert ("note: the service's gateway listens on 127.0.0.1 (gateway.host), so only this machine reaches it, though "
            "it has keys for other callers (gateway.api_keys_env): for the other hosts, set gateway: {host: 0.0.0.0} "
            "in the config") in said("127.0.0.1")
    assert "note: the service's gateway listens" not in said("0.0.0.0")


# -- 9. more of the hand-edited config ----------------------------------------------------------------------------


def _config_said(tmp_path: Path, agents: str, model: str = "'llama3.2:3b'") -> str:
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  local: {{provider: ollama, model: {model}}}\n"
                      "  big: {provider: ollama, model: 'qwen3:14b'}\n" + agents)
    out = invoke("--config", str(config), "models", "--no-reach")
    return str(out.output)  # type: ignore[attr-defined]


def test_a_value_in_curly_quotes_is_refused_by_its_key(tmp_path: Path) -> None:
    """`model: “llama3.2:3b”` pasted from a document or a chat loaded as the model “llama3.2:3b”, quotes and all,
    which no server has. It is refused at its line (prose — a system prompt, examples — may quote as it likes)."""
    said = _config_said(tmp_path, "agents:\n  chat: {primary: local, system: “Be brief.”}\n", model="“llama3.2:3b”")
    assert ("config.yaml:2: models.local.model: written in curly quotes (“…” or ‘…’, as a word processor or a chat "
            "writes them), which YAML keeps as part of the value") in said, said
    prose = _config_said(tmp_path, "agents:\n  chat: {primary: local, system: “Be brief.”}\n")
    assert "error" not in prose, prose


def test_fallbacks_with_their_items_commented_out_say_how_to_write_none(tmp_path: Path) -> None:
    """`fallbacks:` left with its one item commented out said "expected a list here … got nothing" — the user meant
    none."""
    said = _config_said(tmp_path, "agents:\n  chat:\n    primary: local\n    fallbacks:\n    #  - big\n")
    assert "agents.chat.fallbacks: expected a list here" in said and "for none, write [] or delete the line" in said


def test_a_model_twice_in_a_chain_is_not_called_a_cycle(tmp_path: Path) -> None:
    """`primary: local` and `fallbacks: [local, big]` said "appears twice in the chain of 'chat' (a cycle)": a
    repeat, not a cycle, and nothing of what to do."""
    said = _config_said(tmp_path, "agents:\n  chat: {primary: local, fallbacks: [local, big]}\n")
    assert ("model 'local' appears twice in the chain of 'chat': a model is tried once in a chain — take this one "
            "out") in said, said
