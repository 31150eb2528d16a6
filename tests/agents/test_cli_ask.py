"""``modelyard ask`` through the orchestrator, and truncation made visible (issue #14.4).

``ask --agent orchestrator`` used to run the orchestrator *as an agent*: its model answered the
task itself and was cut off at its 128-token limit, silently. Now ``ask`` is the same turn
pipeline as ``chat`` and Telegram: the orchestrator (named, ``--agent auto`` or no ``--agent``)
picks the agent, and an answer cut off at ``max_tokens`` says so in the route line and the log.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from modelyard.cli import app
from tests.agents.conftest import agent_of, default_data
from tests.fakes import OpenAIServer

runner = CliRunner()
TASK = "my python script crashes with a TypeError, please fix it"
LONG = " ".join(f"step{i}" for i in range(300))


def write_config(tmp_path: Path, url: str, **agents: dict[str, Any]) -> Path:
    data = default_data()
    data["models"] = {"fake": {"provider": "openai", "endpoint": url, "model": "fake"}}
    for cfg in data["agents"].values():
        cfg["primary"], cfg["fallbacks"] = "fake", []
    for name, changes in agents.items():
        data["agents"][name].update(changes)
    data["log"] = {"path": str(tmp_path / "log.sqlite3")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def log_rows(tmp_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("choice", [["--agent", "orchestrator"], ["--agent", "auto"], []],
                         ids=["orchestrator", "auto", "default"])
def test_ask_lets_the_orchestrator_delegate(choice: list[str], tmp_path: Path) -> None:
    with OpenAIServer(reply_text=lambda body: f"<{agent_of(body)}> fixed it") as fake:
        config = write_config(tmp_path, fake.url)
        result = runner.invoke(app, ["ask", *choice, TASK, "-c", str(config)])
        asked = [agent_of(r.json) for r in fake.requests_to("/v1/chat/completions")]
    assert result.exit_code == 0, result.output
    assert "<engineer> fixed it" in result.stdout
    assert asked == ["engineer"]  # the orchestrator's model never answered the task itself
    assert "orchestrator: engineer (fast" in result.output and "engineer → fake · " in result.output
    assert log_rows(tmp_path, "SELECT agent FROM requests") == [("engineer",)]
    assert log_rows(tmp_path, "SELECT agent, method FROM routing_decisions") == [("engineer", "fast")]


def test_ask_json_names_the_delegate_and_every_step(tmp_path: Path) -> None:
    with OpenAIServer(reply_text=lambda body: f"<{agent_of(body)}> fixed it") as fake:
        config = write_config(tmp_path, fake.url)
        result = runner.invoke(app, ["ask", "--agent", "orchestrator", "--json", TASK, "-c", str(config)])
    out = json.loads(result.stdout)
    assert result.exit_code == 0 and out["agent"] == "engineer" and out["answer"] == "<engineer> fixed it"
    assert out["decision"]["agent"] == "engineer" and [s["agent"] for s in out["steps"]] == ["engineer"]


def test_a_truncated_answer_says_so_in_the_route_line_and_the_log(tmp_path: Path) -> None:
    with OpenAIServer(reply_text=LONG, honour_max_tokens=True) as fake:
        config = write_config(tmp_path, fake.url, engineer={"max_tokens": 12})
        result = runner.invoke(app, ["ask", "--agent", "engineer", TASK, "-c", str(config)])
        as_json = json.loads(runner.invoke(app, ["ask", "--agent", "engineer", "--json", TASK, "-c",
                                                 str(config)]).stdout)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == LONG.split()[:12]
    route = result.output.strip().splitlines()[-1]
    assert route.startswith("engineer → fake") and "TRUNCATED at max_tokens=12" in route
    assert as_json["route"]["finish_reason"] == "length"
    assert log_rows(tmp_path, "SELECT finish_reason FROM requests") == [("length",), ("length",)]


def test_a_complete_answer_is_not_marked(tmp_path: Path) -> None:
    with OpenAIServer(reply_text="short answer", honour_max_tokens=True) as fake:
        config = write_config(tmp_path, fake.url)
        result = runner.invoke(app, ["ask", "--agent", "engineer", TASK, "-c", str(config)])
    assert result.exit_code == 0 and "TRUNCATED" not in result.output
    assert log_rows(tmp_path, "SELECT finish_reason FROM requests") == [("stop",)]


def test_ask_shows_the_draft_then_the_revision_or_why_it_was_not_used(tmp_path: Path) -> None:
    draft = "Our new mug keeps coffee hot for hours. " * 8

    def replies(utility: str):
        return lambda body: draft if agent_of(body) == "writer" else utility

    with OpenAIServer(reply_text=replies(draft.replace("hot", "warm"))) as fake:
        config = write_config(tmp_path, fake.url)
        used = runner.invoke(app, ["ask", "--agent", "writer", "write a blog post about our mug", "-c", str(config)])
    assert used.exit_code == 0, used.output
    out = used.stdout
    assert out.index(draft.strip()) < out.index("── revised ──") < out.index("keeps coffee warm")
    assert "utility (revise) → fake: used" in used.output

    with OpenAIServer(reply_text=replies("Launching Our Mug")) as fake:
        config = write_config(tmp_path, fake.url)
        kept = runner.invoke(app, ["ask", "--agent", "writer", "write a blog post about our mug", "-c", str(config)])
    assert kept.exit_code == 0 and "Launching Our Mug" not in kept.stdout and "revised" not in kept.stdout
    assert "utility (revise) → fake: not used" in kept.output and "kept writer's answer" in kept.output


def test_the_route_line_of_a_cut_answer_names_only_the_models_it_moved_on_from() -> None:
    """Ctrl-C mid-answer printed 'chat → qwen (after qwen: cancelled) · CANCELLED': as if qwen had fallen
    back to itself. The tries it moved on from are the detours; the cut one is the outcome."""
    from modelyard.cli.render import route_line
    from modelyard.errors import Reason
    from modelyard.outcomes import AttemptOutcome, RequestOutcome
    from modelyard.router.records import Attempt, RequestRecord

    record = RequestRecord("r1", "chat", outcome=RequestOutcome.CANCELLED, model="qwen", attempts=[
        Attempt("cloud", "anthropic", AttemptOutcome.SKIPPED, Reason.MISSING_CREDENTIALS),
        Attempt("qwen", "llamacpp", AttemptOutcome.CANCELLED, Reason.CANCELLED)])
    line = route_line(record)
    assert line.startswith("chat → qwen (after cloud: missing_credentials) · CANCELLED"), line


def test_a_retry_that_failed_the_same_way_is_one_detour_counted() -> None:
    """'chat → nobody (after llama: connect_error; llama: connect_error)' read as two models."""
    from modelyard.cli.render import route_line
    from modelyard.errors import Reason
    from modelyard.outcomes import AttemptOutcome, RequestOutcome
    from modelyard.router.records import Attempt, RequestRecord

    record = RequestRecord("r2", "chat", outcome=RequestOutcome.FAILED, attempts=[
        Attempt("llama", "ollama", AttemptOutcome.RETRY, Reason.CONNECT_ERROR),
        Attempt("llama", "ollama", AttemptOutcome.FALLBACK, Reason.CONNECT_ERROR),
        Attempt("cloud", "anthropic", AttemptOutcome.SKIPPED, Reason.MISSING_CREDENTIALS)])
    assert route_line(record).startswith(
        "chat → nobody (after llama: connect_error ×2; cloud: missing_credentials) · FAILED"), route_line(record)


def test_a_terminal_says_what_it_waits_for_until_the_first_token(tmp_path: Path) -> None:
    """The first ask loads the local model: 8-20 s of a silent terminal that looked hung. On a terminal (a pty
    here) a status line says what it waits for until the first token; piped output stays as it was."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.fakes import Fault

    with OpenAIServer(reply_text="late answer") as fake:
        fake.faults.set_default(Fault.delay(1.5))
        config = write_config(tmp_path, fake.url)
        main, child = pty.openpty()
        env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
        proc = subprocess.Popen([sys.executable, "-m", "modelyard", "ask", "--agent", "engineer", "hi", "-c",
                                 str(config)], stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env)
        os.close(child)
        seen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the child closed the pty
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        proc.wait(30)
        os.close(main)
        piped = runner.invoke(app, ["ask", "--agent", "engineer", "hi", "-c", str(config)])
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "engineer: waiting for the first token" in text and "late answer" in text, text
    assert "waiting for the first token" not in piped.output


def test_the_status_line_says_the_multilingual_model_loads_for_the_first_message_in_another_language(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The multilingual routing encoder is loaded by the first message in another language (~1 s of CPU,
    ~108 MiB: benchmarks/README.md, footprint), no longer at start: the wait it adds is named while it happens."""
    from modelyard.agents import encoder
    from modelyard.cli.ask import ROUTED, waiting_words

    plain = "auto: choosing an agent, then its answer (models load on first use)…"
    monkeypatch.setattr(encoder, "_multilingual", [])  # not loaded yet
    other = waiting_words(ROUTED, "写一首关于猫的诗")
    assert other == "auto: choosing an agent (loading the multilingual model), then its answer…"
    assert len(other) + 2 < 80  # with its spinner: a status line wider than the terminal is cut
    assert waiting_words(ROUTED, "write a poem about my cat") == plain
    assert waiting_words("engineer", "写一首关于猫的诗").startswith("engineer: waiting for the first token")
    monkeypatch.setattr(encoder, "_multilingual", [None])  # loaded (or found missing) earlier in this process
    assert waiting_words(ROUTED, "写一首关于猫的诗") == plain


def test_the_status_line_reads_the_language_as_the_fast_path_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """An English request around a pasted German text is routed in English (agents/request.py reads its request
    first; encoder.foreign_views): the status line said the multilingual model loads, because it ran the language
    check on the whole message, whose letters are mostly German — and then nothing loaded (round 29)."""
    from modelyard.agents import encoder
    from modelyard.agents.request import views
    from modelyard.cli.ask import ROUTED, waiting_words

    monkeypatch.setattr(encoder, "_multilingual", [])  # not loaded yet
    pasted = ("Der Zug nach München hatte heute wieder eine Stunde Verspätung, und die Fahrgäste mussten in der Kälte "
              "auf dem Bahnsteig warten. Die Bahn hat sich bei den Reisenden entschuldigt und ihnen einen Gutschein "
              "für die nächste Fahrt angeboten, aber viele waren trotzdem verärgert. ") * 4
    message = f"Please translate the text below into English and keep the names of the places as they are:\n\n{pasted}"
    assert encoder.foreign(message) and not encoder.foreign_views(views(message))  # the two checks disagree here
    assert waiting_words(ROUTED, message) == "auto: choosing an agent, then its answer (models load on first use)…"
    # a request in German around the same text is read in German by both
    german = f"Bitte fasse den folgenden Text in drei Sätzen zusammen, ich habe keine Zeit:\n\n{pasted}"
    assert waiting_words(ROUTED, german) == "auto: choosing an agent (loading the multilingual model), then its answer…"
