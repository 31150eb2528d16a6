"""Round 13: shell and Linux tasks asked in words reach engineer, and set-ups that are writing jobs ("act as a
… author", "you are a … writer") reach writer, on the fast path (benchmarks/README.md, round 13).

The prompts are from outside collections, not fresh_* (held out) and not role examples: InterCode-Bash's NL2Bash
tasks (the ``icalfa`` wheel) and the ``cheat`` cheatsheets' "To …" comments as questions (routing_eval/
shell_dev.jsonl, mkshell_dev.py), and ShareGPT users' set-ups (persona_dev.jsonl, mkpersona_dev.py) — tuning sets,
labelled before anything routed them. Before round 13's examples every probe below went to research or utility."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"

SHELL = [
    "Count number of users logged in",  # icalfa nl2bash_fs_*.json
    "Print percentage of the space used on the /workspace directory.",
    "print the system uptime",
    "List all files in the directory /testbed/dir1 and sort them by size in human-readable format",
    "How do I show the last 10 lines of file?",  # cheat: "# To show the last 10 lines of file"
    "How do I locate the system's php.ini files?",
]
#: openings of ShareGPT first messages in persona_dev.jsonl (best fit writer)
WRITING_SETUPS = [
    "Act as my children's author.",
    "You are an experienced TV writer. Write the opening scene",
    "You are a CEO. You are working with your team to implement OKRs",
]


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    found = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert found is not None
    return found


def test_shell_tasks_in_words_reach_engineer(orchestrator: Orchestrator) -> None:
    known = {row["text"] for row in rows("shell_dev.jsonl")}
    assert set(SHELL) <= known  # outside prompts, as the collection has them
    decisions = [(text, orchestrator.decide_fast(text).agent) for text in SHELL]
    wrong = [(text, agent) for text, agent in decisions if agent != "engineer"]
    assert wrong == []


def test_writing_setups_reach_writer(orchestrator: Orchestrator) -> None:
    texts = [next(row["text"] for row in rows("persona_dev.jsonl") if row["text"].startswith(opening))
             for opening in WRITING_SETUPS]
    decisions = [(text[:60], orchestrator.decide_fast(text).agent) for text in texts]
    wrong = [(text, agent) for text, agent in decisions if agent != "writer"]
    assert wrong == []


def test_round_13_tuning_sets_stay_above_round_12(orchestrator: Orchestrator) -> None:
    """shell_dev: round 12's fast path 231 of 400 acceptable (round 13: 337); persona_dev 64 of 80 (round 13: 67)."""
    shell = sum(orchestrator.decide_fast(row["text"]).agent in row["accept"] for row in rows("shell_dev.jsonl"))
    persona = sum(orchestrator.decide_fast(row["text"]).agent in row["accept"] for row in rows("persona_dev.jsonl"))
    assert shell >= 320, shell
    assert persona >= 65, persona
