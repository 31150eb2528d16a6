"""Frictions of the twelfth newcomer walk: README's "Your own models, step by step", the Telegram bot's set-up and the
small team's steps done for real in an empty HOME — the Ollama fake on its usual port, a fake OpenAI-compatible server,
the fake Bot API, the real Redis and PostgreSQL, the embedded model. Each test here failed on the code before it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from tests.fakes import OllamaServer, OpenAIServer, TelegramServer
from tests.frontends.conftest import ALICE, bot_config, eventually, llm, replies_to, running_bot, tg
from tests.helpers import orchestrated_config
from tests.pg import ADMIN_URL
from typer.testing import CliRunner

import modelyard
from modelyard.cli import app

#: the modelyard this test imported (the child runs the same code)
SRC = Path(modelyard.__file__).resolve().parents[1]

__all__ = ["llm", "tg"]  # the Telegram fixtures, used by name below


def invoke(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", **(env or {})})


def ollama_config(tmp_path: Path, url: str, more: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"models:\n  llama3.2-3b: {{provider: ollama, model: 'llama3.2:3b', endpoint: '{url}'}}\n"
                    "agents:\n  chat: {primary: llama3.2-3b}\n"
                    f"log: {{path: '{tmp_path / 'log.sqlite3'}'}}\n{more}")
    return path


# -- 1. a tab between a value and its comment -------------------------------------------------------------------


@pytest.mark.parametrize("line", ["    max_concurrent: 4\t# OLLAMA_NUM_PARALLEL", "    max_concurrent: 4\t",
                                  "    max_concurrent:\t4"])
def test_a_tab_after_a_value_is_not_called_indentation(tmp_path: Path, line: str) -> None:
    """`max_concurrent: 4<TAB># OLLAMA_NUM_PARALLEL` (comments aligned with a tab, as editors do) said "YAML indents
    with spaces: replace the tab" — of a line whose indentation was spaces and right. YAML allows a tab there
    (yaml.org/spec/1.2.2 §6.2, separation spaces); PyYAML does not (yaml/pyyaml#450 "tabs separating values and
    comments", #306 "trailing tab in line", both open). It now says where the tab is and what to write."""
    path = tmp_path / "config.yaml"
    path.write_text(f"models:\n  local:\n    provider: ollama\n    model: llama3.2:3b\n{line}\n"
                    "agents:\n  chat: {primary: local}\n")
    out = invoke("--config", str(path), "models", "--no-reach")
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert out.exit_code == 2, said  # type: ignore[attr-defined]
    assert f"{path}:5: not valid YAML" in said, said
    assert "after a key's colon, after a value or before a comment" in said and "replace it with spaces" in said, said
    assert "indents with spaces" not in said, said


def test_a_tab_in_the_indentation_is_still_said_so(tmp_path: Path) -> None:
    """The indentation case keeps its words: a tab at the start of the line is the indentation."""
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  local:\n\tprovider: ollama\n")
    out = invoke("--config", str(path), "models", "--no-reach")
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert out.exit_code == 2 and "(YAML indents with spaces: replace the tab)" in said, said  # type: ignore[attr-defined]


# -- 2. `log --model` with the id `ollama list` shows -----------------------------------------------------------


def test_log_model_by_its_provider_id_names_the_entry(tmp_path: Path) -> None:
    """`modelyard log --model llama3.2:3b` — the name `ollama list`, `ask`'s server and Open WebUI show — said
    "unknown model 'llama3.2:3b': choose from llama3.2-3b" and no did-you-mean (the names are too far apart for
    one): the log keeps the config's name (`init --detect` writes `llama3.2-3b`). It names the entry and the option."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="ok") as ollama:
        config = ollama_config(tmp_path, ollama.url)
        assert invoke("--config", str(config), "ask", "--agent", "chat", "hi").exit_code == 0  # type: ignore[attr-defined]
    out = invoke("--config", str(config), "log", "--model", "llama3.2:3b")
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert out.exit_code == 2, said  # type: ignore[attr-defined]
    assert "'llama3.2:3b' is the provider's id of 'llama3.2-3b'" in said and "--model llama3.2-3b" in said, said
    assert invoke("--config", str(config), "log", "--model", "llama3.2-3b").exit_code == 0  # type: ignore[attr-defined]


# -- 3. warmup's progress bar in a pipe -------------------------------------------------------------------------


def test_warmup_piped_writes_plain_lines_not_a_bar(tmp_path: Path) -> None:
    """`modelyard warmup 2>warm.log` (or the service's `ExecStartPre`, whose stderr is the journal) wrote the
    progress bar's last frame — "⠋ loading llama3.2-3b ━━━━━━━━ 0:00:00" — into the file. Not a terminal: one plain
    line per model, as it starts; the results on stdout as before."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="ok") as ollama:
        config = ollama_config(tmp_path, ollama.url)
        done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "warmup"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert "✓ llama3.2-3b:" in done.stdout, done.stdout
    assert done.stderr.splitlines() == ["loading llama3.2-3b…"], done.stderr
    assert "━" not in done.stderr and "\x1b" not in done.stderr, done.stderr


# -- 4. the team's log role not created yet ---------------------------------------------------------------------


def test_a_missing_role_is_not_asked_whether_postgresql_runs(tmp_path: Path) -> None:
    """README team step 2 then `modelyard models` before the role was made: the real server's refusal (`FATAL: role
    "…" does not exist`) came with the statement to run — and then "is PostgreSQL running and reachable there
    (log.url)?", of a server that had just answered. A server that answered is not asked about; one that does not
    answer still is."""
    server = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    where = f"{server.get('host', '127.0.0.1')}:{server.get('port', 5432)}"
    config = tmp_path / "team.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: 'llama3.2:3b', endpoint: 'http://127.0.0.1:9'}\n"
                      "agents:\n  chat: {primary: local}\n"
                      f"log: {{url: 'postgresql://nc12_walk_no_such_role@{where}/postgres'}}\n")
    out = invoke("--config", str(config), "models", "--no-reach", env={"MODELYARD_DATA_DIR": str(tmp_path / "data")})
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert out.exit_code == 1, said  # type: ignore[attr-defined]
    assert 'role "nc12_walk_no_such_role" does not exist — create the role as a superuser' in said, said
    assert "is PostgreSQL running" not in said, said
    config.write_text(config.read_text().replace(where, "127.0.0.1:1"))  # nothing listens: the question stays
    out = invoke("--config", str(config), "models", "--no-reach", env={"MODELYARD_DATA_DIR": str(tmp_path / "data")})
    assert "is PostgreSQL running and reachable there (log.url)?" in " ".join(str(out.output).split())  # type: ignore[attr-defined]


# -- 5. `models --no-reach` -------------------------------------------------------------------------------------


def test_models_without_reaching_says_no_server_was_tried(tmp_path: Path) -> None:
    """`modelyard models --no-reach` with Ollama not started said the model "available", exit 0, and nothing of
    the servers not being asked — the state a monitor or a newcomer reads as "it answers". It says so under the
    table (and `servers_tried` in --json); without the option the server is tried and the model is unreachable."""
    config = ollama_config(tmp_path, "http://127.0.0.1:9")
    out = invoke("--config", str(config), "models", "--no-reach")
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert "servers not tried (--no-reach)" in said, said
    reached = invoke("--config", str(config), "models")
    assert reached.exit_code == 3 and "unreachable" in str(reached.output)  # type: ignore[attr-defined]
    assert '"servers_tried": false' in str(invoke("--config", str(config), "models", "--no-reach",  # type: ignore[attr-defined]
                                                  "--json").output)


# -- 6. Telegram's /agent with a model's name -------------------------------------------------------------------


async def test_telegram_agent_named_by_a_model_says_which_agent_uses_it(tmp_path: Path, tg: TelegramServer,
                                                                        llm: OpenAIServer) -> None:
    """In the bot, `/status` lists models (`local (openai, local): available`); `/agent local` then said "Unknown
    agent 'local'. Agents: chat, engineer" — where `ask --agent local` and chat's `/agent local` say it is a model
    and which agent to name; `/agent enginer` had no did-you-mean either. The bot says what the CLI says."""
    config = bot_config(tmp_path, tg, llm)
    async with running_bot(config, tg):
        tg.push_message(ALICE, text="/agent local")
        said = await eventually(lambda: [r for r in replies_to(tg, ALICE) if "local" in r])
        assert "'local' is a model, not an agent; chat, engineer use it (chat, engineer first: /agent chat)" \
            in said[0], said
        tg.push_message(ALICE, text="/agent enginer")
        typo = await eventually(lambda: [r for r in replies_to(tg, ALICE) if "enginer" in r])
        assert typo[0].startswith("Unknown agent 'enginer' (did you mean 'engineer'?)"), typo
        assert "/agent alone for automatic routing" in typo[0], typo


# -- 7. the embedding model `init --detect` leaves out ----------------------------------------------------------


def test_init_detect_says_how_to_serve_the_embedding_model_it_left_out(tmp_path: Path) -> None:
    """`init --detect` said "left out nomic-embed-text:latest: an embedding model, it cannot chat" — and nothing of
    the gateway's /v1/embeddings (README "Embeddings"), which serves only a model of the config: a newcomer with
    Open WebUI's RAG pointed at modelyard got a 404 and no hint. The note gives the entry to paste; pasted under
    `models:` it loads and is listed available, addressed as `model:NAME`."""
    with OllamaServer(models=["llama3.2:3b", "nomic-embed-text:latest"], chat_models=["llama3.2:3b"],
                      embed_models=["nomic-embed-text:latest"], template="{{ .Prompt }}") as ollama:
        config = tmp_path / "c.yaml"
        out = invoke("init", str(config), "--endpoint", ollama.url)
        said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
        assert out.exit_code == 0, said  # type: ignore[attr-defined]
        entry = re.search(r"for the gateway's /v1/embeddings add it under models: \((nomic-embed-text: \{[^}]*\})\) "
                          r"and ask for model:nomic-embed-text", said)
        assert entry, said
        config.write_text(config.read_text().replace("\nmodels:\n", f"\nmodels:\n  {entry.group(1)}\n", 1))
        listed = invoke("--config", str(config), "models", "--json")
    models = {m["model"]: m for m in json.loads(str(listed.output))["models"]}  # type: ignore[attr-defined]
    assert models["nomic-embed-text"]["state"] == "available", models["nomic-embed-text"]
    assert models["nomic-embed-text"]["provider_model"] == "nomic-embed-text:latest"


# -- 8. bench's progress bar in a pipe --------------------------------------------------------------------------


def test_bench_piped_writes_one_line_per_model_not_a_bar(tmp_path: Path) -> None:
    """`modelyard bench bench.yaml > results.txt 2> bench.log` (README "Which model for which agent") left the bar's
    last frame — "bench starter: llama3.2-3b ━━━━━━━━ 18/18 0:00:00" — in the log, as warmup did: one line per model
    as its runs start now, and the results on stdout as before."""
    with OllamaServer(models=["llama3.2:3b"], reply_text="ok") as ollama:
        config = ollama_config(tmp_path, ollama.url)
        suite = tmp_path / "bench.yaml"
        assert invoke("--config", str(config), "bench", str(suite), "--init").exit_code == 0  # type: ignore[attr-defined]
        done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "bench", str(suite),
                               "--models", "llama3.2-3b", "--agents", "chat", "-k", "1"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert "modelyard bench — starter" in done.stdout, done.stdout
    assert "bench starter: llama3.2-3b…" in done.stderr.splitlines(), done.stderr
    assert "━" not in done.stderr and "\x1b" not in done.stderr, done.stderr


# -- 9. a Telegram @name in allowed_users, unquoted ---------------------------------------------------------------


@pytest.mark.parametrize(("written", "line"), [("  allowed_users: [@newcomer]\n", 6),
                                                ("  allowed_users: @newcomer\n", 6),
                                                ("  allowed_users:\n    - @newcomer\n", 7)])
def test_a_telegram_name_in_allowed_users_says_ids_at_once(tmp_path: Path, written: str, line: int) -> None:
    """The README's Telegram step is `allowed_users: [YOUR_ID]`; people write the @name Telegram shows them (other
    bots took usernames: father-bot/chatgpt_telegram_bot#107, n3d1117/chatgpt-telegram-bot#130). Unquoted, YAML
    refuses the '@' and the error said "put the value in quotes" — and quoted, the next run said ids are numbers.
    It says the second at once; an '@' anywhere else keeps the quoting advice."""
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  tiny: {provider: llamacpp}\nagents:\n  chat: {primary: tiny}\ntelegram:\n" + written)
    out = invoke("--config", str(path), "check")
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert out.exit_code == 2, said  # type: ignore[attr-defined]
    assert f"{path}:{line}: not valid YAML" in said and "Telegram user ids are numbers, not @names" in said, said
    assert "put the value in quotes" not in said, said
    path.write_text("models:\n  tiny: {provider: llamacpp, model: @x}\nagents:\n  chat: {primary: tiny}\n")
    elsewhere = " ".join(str(invoke("--config", str(path), "check").output).split())  # type: ignore[attr-defined]
    assert "put the value in quotes" in elsewhere and "Telegram" not in elsewhere, elsewhere


# -- 10. route's two figures ------------------------------------------------------------------------------------


def test_route_names_the_votes_apart_from_the_confidence(tmp_path: Path) -> None:
    """`modelyard route "write a Go HTTP server"` printed "engineer  confidence 1.00 · fast" and under it
    "engineer 0.93  writer 0.06 …": two figures for one agent that disagree, nothing saying what either is (README
    "Routing": the agent is the best mean vote, the confidence the estimated probability that the decision is
    right). The second line says it is the votes, and what the confidence is; the two agree on the agent."""
    config = orchestrated_config(tmp_path, ["chat", "engineer"])
    out = invoke("--config", str(config), "route", "--fast-only", "write a Go HTTP server")
    assert out.exit_code == 0, out.output  # type: ignore[attr-defined]
    decision, votes = str(out.stdout).splitlines()[:2]  # type: ignore[attr-defined]
    assert " confidence " in decision, decision
    assert votes.startswith(f"votes: {decision.split()[0]} "), votes
    assert votes.endswith("(the members' mean; the confidence above is the estimated chance that this route is "
                          "right)"), votes


# -- 11. a choice written another way ---------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "key", "meant"), [
    ("per: daily", "spend_cap.per", "day"), ("per: Monthly", "spend_cap.per", "month")])
def test_a_choice_written_another_way_says_the_one_it_is_near(tmp_path: Path, written: str, key: str,
                                                               meant: str) -> None:
    """README "Spend caps": `spend_cap: {usd: 2, per: day}`; written `per: daily` (LiteLLM's `budget_duration`
    takes "1d", OpenRouter's key limits "daily"), it said "expected 'day' or 'month' here, got text" — not which.
    The choice near what was written is named; the value itself is still not repeated (a choice is a known word,
    the value might be anything pasted)."""
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  tiny: {provider: llamacpp}\n  claude: {provider: anthropic, model: claude-haiku-4-5, "
                    "api_key_env: ANTHROPIC_API_KEY, price: {input: 1, output: 5}, "
                    f"spend_cap: {{usd: 2, {written}}}}}\nagents:\n  chat: {{primary: claude, fallbacks: [tiny]}}\n")
    out = invoke("--config", str(path), "models", "--no-reach")
    said = " ".join(str(out.output).split())  # type: ignore[attr-defined]
    assert out.exit_code == 2, said  # type: ignore[attr-defined]
    assert (f"{path}:3: models.claude.{key}: expected 'day' or 'month' here, got text (did you mean '{meant}'?)"
            in said), said
    far = path.read_text().replace(written, "per: week")
    path.write_text(far)
    said = " ".join(str(invoke("--config", str(path), "models", "--no-reach").output).split())  # type: ignore[attr-defined]
    assert "got text" in said and "did you mean" not in said, said
