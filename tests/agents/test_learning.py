"""Learning from use: corrections become labels in the routing log, and `routing learn` keeps a refit
only when it does not score worse. Small configs (no built-in roles) keep every refit fast."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelyard.agents.evaluation import Labelled
from modelyard.agents.learning import correct_routing, learn, learned_labels
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.turn import handle_turn, orchestrator_for
from modelyard.cli import app
from modelyard.config import load_config
from modelyard.ledger.db import connect
from modelyard.ledger.labels import LabelSource, add_label, labels, trusted_upto
from modelyard.types import Message
from tests.agents.conftest import fake_config

runner = CliRunner()

AGENTS = {
    "talker": {"description": "small talk", "examples": ["hi there", "thanks a lot", "how are you", "bye"]},
    "coder": {"description": "writes and fixes code", "examples": ["fix this python bug", "write a function",
                                                                   "my build fails", "refactor this class"]},
    "sorter": {"description": "reformats data", "examples": ["sort this list", "convert csv to json",
                                                             "count the words", "remove duplicates"]},
}
#: the corrected kind: expense questions the examples know nothing about, which belong to sorter
KIND = [f"total up my {item} receipts for {month}" for item in ("grocery", "taxi", "hotel", "fuel", "lunch")
        for month in ("march", "april", "may", "june")]


def write_config(tmp_path: Path) -> Path:
    agents = {name: {**cfg, "primary": "m", "role": "none"} for name, cfg in AGENTS.items()}
    agents["router"] = {"primary": "m", "consumers": ["coder", "sorter"], "role": "none"}
    data = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, "agents": agents,
            "default_agent": "talker", "orchestration": {"agent": "router", "threshold": 0.0},
            "log": {"path": str(tmp_path / "log.sqlite3")}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_labels_from_route_label_improve_the_corrected_kind_and_are_kept(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    config = load_config(path)
    before = Orchestrator.from_config(config)
    held_out = KIND[::4]  # never labelled: the refit must generalise to them
    assert sum(before.decide_fast(t).agent == "sorter" for t in held_out) < len(held_out)
    # with no labels yet, learn says where they come from (it said '0 new of 0 labels', '– → –' and
    # 'no new labels since the last learn' when there had been none)
    empty = runner.invoke(app, ["routing", "learn", "-c", str(path)])
    assert empty.exit_code == 0 and "nothing to learn from: no routing labels yet" in empty.output, empty.output
    assert "0 new of 0" not in empty.output
    for text in (t for i, t in enumerate(KIND) if i % 4):
        result = runner.invoke(app, ["route", text, "--label", "sorter", "-c", str(path)])
        assert result.exit_code == 0 and "recorded" in result.output
    assert learned_labels(config) == []  # recorded, not yet trusted
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps({"text": t, "accept": ["sorter"]}) + "\n" for t in held_out)
                         + json.dumps({"text": "hello, how are you today", "agent": "talker"}) + "\n"
                         + json.dumps({"text": "please fix the bug in my function", "agent": "coder"}) + "\n")
    result = runner.invoke(app, ["routing", "learn", "--eval", str(eval_file), "--json", "-c", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["accepted"] and report["n_new"] == 15
    assert report["eval_after"] > report["eval_before"]
    after = Orchestrator.from_config(config, learned_labels(config))
    assert all(after.decide_fast(t).agent == "sorter" for t in held_out)
    assert after.decide_fast("hello, how are you today").agent == "talker"  # nothing else got worse
    again = runner.invoke(app, ["routing", "learn", "-c", str(path)])
    assert "no new labels" in again.output


def test_a_refit_that_scores_lower_is_not_used(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    conn = connect(tmp_path / "log.sqlite3")
    for text in ("fix the bug in this function", "fix the bug in my python code", "fix this python function",
                 "why does my build fail?", "why does the build fail again", "my build fails, why",
                 "write a function to sort numbers", "write a function to sort names", "write a sort function"):
        add_label(conn, text, "talker", LabelSource.CLI)  # careless: these are coder's
    held_out = [Labelled("fix the bug in this python function", ["coder"]),
                Labelled("why does my build fail", ["coder"]), Labelled("write a function to sort", ["coder"])]
    result = learn(config, "router", conn, held_out)
    assert not result.accepted and "previous model kept" in result.reason
    assert result.eval_after is not None and result.eval_before is not None
    assert result.eval_after < result.eval_before
    assert trusted_upto(conn) == 0 and learned_labels(config) == []
    fits = conn.execute("SELECT accepted, detail FROM routing_fits").fetchall()
    assert [tuple(f) for f in fits] == [(0, result.reason)]


async def test_each_runtime_routes_with_its_own_orchestrator_and_a_new_one_sees_new_labels(
        runtime_for, tmp_path: Path) -> None:
    """The orchestrator (and its trained fast path) lives on the runtime, not in a module cache keyed by
    the config object: a runtime reuses its own, and a new runtime of the very same config object — a
    restarted front-end after `routing learn` — trains on the labels learned meanwhile."""
    config = load_config(write_config(tmp_path))
    first = runtime_for(config)
    before = orchestrator_for(first)
    assert before is not None and orchestrator_for(first) is before and before.labels == []
    conn = connect(tmp_path / "log.sqlite3")
    for text in (t for i, t in enumerate(KIND) if i % 4):
        add_label(conn, text, "sorter", LabelSource.CLI)
    assert learn(config, "router", conn).accepted
    after = orchestrator_for(runtime_for(config))
    assert after is not None and after is not before and len(after.labels) == 15
    assert orchestrator_for(first) is before  # the running one is left alone until it restarts
    held_out = KIND[::4]
    assert sum(after.decide_fast(t).agent == "sorter" for t in held_out) > sum(
        before.decide_fast(t).agent == "sorter" for t in held_out)


async def test_agent_switch_after_an_orchestrated_turn_is_a_label(server, runtime_for, tmp_path: Path) -> None:
    runtime = runtime_for(fake_config(server.url, tmp_path))
    result = await handle_turn(runtime, [Message("user", "sort these names: Zoe, Adam, Mia")])
    assert result.decision is not None and result.decision.method == "fast"
    # the person says it belonged to engineer (as `/agent engineer` does in chat and Telegram)
    assert correct_routing(runtime, result.request_id, "engineer", LabelSource.CHAT)
    assert not correct_routing(runtime, result.request_id, "plumber", LabelSource.CHAT)  # not a target
    conn = connect(runtime.log_path)
    [label] = labels(conn)
    assert (label.text, label.agent, label.source) == ("sort these names: Zoe, Adam, Mia", "engineer", "chat")
    row = conn.execute("SELECT previous FROM routing_labels").fetchone()
    assert row[0] == result.decision.agent


async def test_rating_a_routed_answer_labels_it(server, runtime_for, tmp_path: Path) -> None:
    config = fake_config(server.url, tmp_path)
    config_path = tmp_path / "cfg.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    runtime = runtime_for(config)
    result = await handle_turn(runtime, [Message("user", "write a haiku about rain")])
    runtime.log.flush()
    good = runner.invoke(app, ["rate", result.request_id, "good", "-c", str(config_path)])
    assert good.exit_code == 0 and "routing label recorded" in good.output, good.output
    bad = runner.invoke(app, ["rate", result.request_id, "bad", "--agent", "research", "-c", str(config_path)])
    assert bad.exit_code == 0 and "routing label recorded: research" in bad.output
    conn = sqlite3.connect(runtime.log_path)
    # one label per request: the correction replaced the confirmation
    assert conn.execute("SELECT agent, source FROM routing_labels").fetchall() == [("research", "rate")]
    rated_at = conn.execute("SELECT rated_at FROM requests WHERE id = ?", (result.request_id,)).fetchone()
    wrong = runner.invoke(app, ["rate", result.request_id, "bad", "--agent", "orchestrator", "-c", str(config_path)])
    assert wrong.exit_code == 2 and "not an agent the orchestrator routes to" in wrong.output
    # refused before anything was recorded (it used to print "rated …: bad", then the error)
    assert "rated" not in wrong.output
    assert conn.execute("SELECT rated_at FROM requests WHERE id = ?", (result.request_id,)).fetchone() == rated_at


async def test_a_correction_of_an_answer_nobody_routed_says_no_label_was_made(server, runtime_for,
                                                                              tmp_path: Path) -> None:
    config = fake_config(server.url, tmp_path)
    config_path = tmp_path / "cfg.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    runtime = runtime_for(config)
    result = await handle_turn(runtime, [Message("user", "write a haiku about rain")], agent="writer")
    runtime.log.flush()
    bad = runner.invoke(app, ["rate", result.request_id, "bad", "--agent", "research", "-c", str(config_path)])
    assert bad.exit_code == 0 and "not routed by the orchestrator" in bad.output, bad.output
    assert sqlite3.connect(runtime.log_path).execute("SELECT count(*) FROM routing_labels").fetchone() == (0,)


def test_a_refit_that_lowers_one_kind_is_refused_even_if_the_overall_score_rises(tmp_path: Path) -> None:
    """The guard compares kinds, not the total: careless labels that break coder's prompts are not excused by
    good labels that fix more of sorter's (the old overall-score guard kept this refit)."""
    config = load_config(write_config(tmp_path))
    conn = connect(tmp_path / "log.sqlite3")
    for text in (t for i, t in enumerate(KIND) if i % 4):
        add_label(conn, text, "sorter", LabelSource.CLI)  # right: these are sorter's
    for text in ("fix the bug in this function", "fix the bug in my python code", "fix this python function",
                 "why does my build fail?", "why does the build fail again", "my build fails, why"):
        add_label(conn, text, "talker", LabelSource.CLI)  # careless: these are coder's
    held_out = [*(Labelled(t, ["sorter"]) for t in KIND[::4]),
                Labelled("fix the bug in this python function", ["coder"]),
                Labelled("why does my build fail", ["coder"]), Labelled("fix the bug in my function", ["coder"])]
    result = learn(config, "router", conn, held_out)
    assert result.eval_before is not None and result.eval_after is not None
    assert result.eval_after > result.eval_before  # overall the refit looks better...
    assert not result.accepted and "coder" in result.reason and trusted_upto(conn) == 0
    coder = next(k for k in result.kinds if k.kind == "agent:coder")
    sorter = next(k for k in result.kinds if k.kind == "agent:sorter")
    assert coder.dropped and coder.broke >= 2 and sorter.fixed > coder.broke  # ...but one kind got worse
    # and it says which prompts broke
    assert {(text, was) for text, was, _ in result.broken} >= {("fix the bug in this python function", "coder"),
                                                               ("fix the bug in my function", "coder")}
    assert all(now == "talker" for _, _, now in result.broken)


def test_routing_learn_prints_the_prompts_a_refused_refit_broke(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    for text in ("fix the bug in this function", "fix the bug in my python code", "fix this python function"):
        assert runner.invoke(app, ["route", text, "--label", "talker", "-c", str(path)]).exit_code == 0
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps({"text": t, "agent": "coder"}) + "\n" for t in (
        "fix the bug in this python function", "fix the bug in my function", "fix this function")))
    result = runner.invoke(app, ["routing", "learn", "--eval", str(eval_file), "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "previous model kept" in result.output
    assert "broke: coder → talker: fix the bug in this python function" in result.output


def test_a_correction_acts_only_near_itself(tmp_path: Path) -> None:
    """Prompts unlike every correction keep the plain classifier's decision and confidence exactly."""
    config = load_config(write_config(tmp_path))
    before = Orchestrator.from_config(config)
    conn = connect(tmp_path / "log.sqlite3")
    for text in (t for i, t in enumerate(KIND) if i % 4):
        add_label(conn, text, "sorter", LabelSource.CLI)
    assert learn(config, "router", conn).accepted
    after = Orchestrator.from_config(config, learned_labels(config))
    assert before is not None and after is not None
    for text in ("hello, how are you today", "please fix the bug in my function", "convert this csv to json",
                 "my build fails on the server"):
        old, new = before.decide_fast(text), after.decide_fast(text)
        assert (new.agent, new.confidence, new.detail) == (old.agent, old.confidence, "")
    near = after.decide_fast("total up my grocery receipts for july")
    assert near.agent == "sorter" and near.detail == "near a correction"


def test_labelled_lines_carry_their_kind(tmp_path: Path) -> None:
    from modelyard.agents.evaluation import read_labels

    file = tmp_path / "eval.jsonl"
    file.write_text("".join(json.dumps(x) + "\n" for x in (
        {"text": "a", "agent": "coder", "source": "koala:12"}, {"text": "b", "accept": ["sorter"], "kind": "chores"},
        {"text": "c", "agent": "talker"})))
    assert [r.kind for r in read_labels(file, {"coder", "sorter", "talker"})] == ["koala", "chores", None]


def test_routing_learn_checks_on_the_built_in_dev_set_by_role_when_no_file_is_given(tmp_path: Path) -> None:
    from modelyard.agents.learning import role_held_out

    config = load_config(write_config(tmp_path))
    assert role_held_out(config, ["talker", "coder", "sorter"]) == []  # no agent has a role: nothing to map
    agents = {"pal": {"primary": "m", "role": "chat"}, "dev": {"primary": "m", "role": "engineer"},
              "router": {"primary": "m"}}
    data = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}}, "agents": agents,
            "default_agent": "pal", "orchestration": {"agent": "router"}}
    path = tmp_path / "roles.yaml"
    path.write_text(yaml.safe_dump(data))
    rows = role_held_out(load_config(path), ["pal", "dev"])
    dev = [json.loads(line) for line in (Path(__file__).parents[2] / "benchmarks" / "routing_eval" / "dev.jsonl")
           .read_text().splitlines()]
    mappable = [d for d in dev if {"chat", "engineer"} & set(d["accept"])]
    assert len(rows) == len(mappable) > 20
    for row, line in zip(rows, mappable, strict=True):
        assert row.text == line["text"] and row.kind == line["source"].split(":")[0]
        names = {"chat": "pal", "engineer": "dev"}
        assert row.accept == [names[a] for a in line["accept"] if a in names]


def test_the_built_in_tuning_sets_are_the_benchmark_tuning_sets() -> None:
    from modelyard.agents.memory import TUNING_SETS

    root = Path(__file__).parents[2]
    for name in TUNING_SETS:
        assert ((root / "src" / "modelyard" / "agents" / "data" / f"routing_{name}.jsonl").read_bytes()
                == (root / "benchmarks" / "routing_eval" / f"{name}.jsonl").read_bytes()), name
    shipped = {p.name for p in (root / "src" / "modelyard" / "agents" / "data").glob("routing_*.jsonl")}
    assert shipped == {f"routing_{name}.jsonl" for name in TUNING_SETS}  # no held-out set is shipped


def test_routing_labels_shows_what_was_learned_and_forget_undoes_a_mistake(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    empty = runner.invoke(app, ["routing", "labels", "-c", str(path)])
    assert empty.exit_code == 0 and "no routing labels yet" in empty.output
    for text, agent in (("total up my taxi receipts for may", "sorter"), ("hi there, how is it going", "coder"),
                        ("total up my fuel receipts for june", "sorter")):
        assert runner.invoke(app, ["route", text, "--label", agent, "-c", str(path)]).exit_code == 0
    learned = runner.invoke(app, ["routing", "learn", "--json", "-c", str(path)])
    assert learned.exit_code == 0, learned.output
    assert runner.invoke(app, ["route", "sort these names please", "--label", "sorter", "-c", str(path)]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["routing", "labels", "--json", "-c", str(path)]).output)["labels"]
    assert [(e["id"], e["agent"]) for e in listed] == [(4, "sorter"), (3, "sorter"), (2, "coder"), (1, "sorter")]
    assert json.loads(learned.output)["accepted"], learned.output
    assert [e["trusted"] for e in listed] == [False, True, True, True]  # 4 came after the learn
    assert "hi there, how is it going" in {lab.text for lab in learned_labels(load_config(path))}
    table = runner.invoke(app, ["routing", "labels", "-n", "2", "-c", str(path)], env={"COLUMNS": "200"})
    assert "sort these names please" in table.output and "waiting" in table.output and "hi there" not in table.output
    # the greeting labelled 'coder' was a mis-tap: forget it, and an unknown id is an error naming it
    gone = runner.invoke(app, ["routing", "forget", "2", "99", "-c", str(path)])
    assert gone.exit_code == 1 and "forgot 1 label: 2" in gone.output and "no label with id 99" in gone.output
    assert [lab.text for lab in labels(connect(tmp_path / "log.sqlite3"))] == [
        "total up my taxi receipts for may", "total up my fuel receipts for june", "sort these names please"]
    assert "hi there, how is it going" not in {lab.text for lab in learned_labels(load_config(path))}


async def test_a_running_front_end_takes_up_newly_learned_labels_without_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.agents import turn
    from modelyard.runtime import open_runtime

    path = write_config(tmp_path)
    runtime = open_runtime(path)
    try:
        before = await turn.prepare_routing(runtime)
        assert before is not None
        held_out = KIND[::4]
        assert sum(before.decide_fast(t).agent == "sorter" for t in held_out) < len(held_out)
        assert await turn.refresh_routing(runtime) is False  # nothing learned yet: the same orchestrator
        assert await turn.prepare_routing(runtime) is before
        for text in (t for i, t in enumerate(KIND) if i % 4):  # meanwhile, another process learns
            assert runner.invoke(app, ["route", text, "--label", "sorter", "-c", str(path)]).exit_code == 0
        assert json.loads(runner.invoke(app, ["routing", "learn", "--json", "-c", str(path)]).output)["accepted"]
        assert await turn.prepare_routing(runtime) is before  # not looked for yet (every 30 s)
        monkeypatch.setattr(turn, "LABELS_CHECK_EVERY", 0.0)
        assert await turn.prepare_routing(runtime) is before  # the look starts in the background...
        for _ in range(400):
            after = await turn.prepare_routing(runtime)
            if after is not before:
                break
            await asyncio.sleep(0.05)
        assert after is not before  # ...and the next turns route with the retrained fast path
        assert after is not None and all(after.decide_fast(t).agent == "sorter" for t in held_out)
        assert await turn.refresh_routing(runtime) is False
    finally:
        await runtime.aclose()


def test_corrections_do_not_reach_a_tuning_prompt_they_would_have_broken(tmp_path: Path) -> None:
    """Measured (2026-11-29): 50 corrections of AgentBench's Linux tasks ("As a student, you are required to find
    the total number of lines …", engineer) also sent evals_dev's "You are an assistant capable of recognizing
    ASCII art digits …" (right: research) to engineer — their boilerplate was nearer to it than any example — and
    `routing learn`, checking on dev alone, kept them. Here corrections share that prompt's own boilerplate, so
    they are nearer to it than any example whatever the examples are. A correction now also has to be nearer than
    every shipped tuning prompt that does not accept its agent, so that prompt keeps its decision, and the
    corrections still decide their own kind."""
    from modelyard.agents.evaluation import read_labels
    from modelyard.paths import embedded_default_config

    config = load_config(str(embedded_default_config()))
    before = Orchestrator.from_config(config)
    assert before is not None
    root = Path(__file__).parents[2] / "benchmarks" / "routing_eval"
    ascii_art = next(r for r in read_labels(root / "evals_dev.jsonl", set(config.agents))
                     if "ASCII art digits" in r.text)
    assert before.decide_fast(ascii_art.text).agent in ascii_art.accept
    conn = connect(tmp_path / "log.sqlite3")
    tasks = ("counting the files in a Linux directory", "counting the running processes on a Linux server",
             "finding the largest log file under /var/log", "counting the lines of the .txt files in a folder",
             "finding which process listens on a port", "summing the sizes of the files in a directory tree")
    taught = [f"You are an assistant capable of {task}. Your response only contains a single number.\n\n"
              f"Run the shell commands you need. In your response, please provide your final answer in brackets, "
              f"like so {{answer here}}." for task in tasks]
    for text in taught:
        add_label(conn, text, "engineer", LabelSource.CLI)
    after = Orchestrator.from_config(config, labels(conn))
    assert after is not None
    assert after.decide_fast(ascii_art.text).agent in ascii_art.accept  # was sent to engineer
    assert all(after.decide_fast(t).agent == "engineer" for t in taught)
    near = after.decide_fast("You are an assistant capable of counting the users logged in to a Linux machine. "
                             "Your response only contains a single number.")
    assert near.agent == "engineer"
