"""Round 25: a software task asked as "How do I …?" leans to engineer, a composition asked for by its form or length
("Need 300 words on …", "lyrics") to writer (agents/cues.py: :data:`~modelyard.agents.cues.SYSTEM_HOW`,
:data:`~modelyard.agents.cues.FORM`; figures in benchmarks/routing_eval/ROUNDS.md, round 25).

The probes are lines of tuning sets built from outside collections and labelled before anything routed them, not
held-out lines: the ``cheat`` sheets' comments asked as "How do I …?" (shell_dev.jsonl, mkshell_dev.py; the sheets
are https://github.com/cheat/cheatsheets, e.g. ``git``: "# To push to the tracked master branch:"), Koala's user
requests and CLINC150's test queries (dev.jsonl), and a ShareGPT set-up from awesome-chatgpt-prompts' "Act as a
Rapper" (persona_dev.jsonl; https://github.com/f/awesome-chatgpt-prompts). On main before round 25 the fast path
sent every positive probe below to research.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents import cues
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.roles import Role
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"

#: (set, line's opening, the agent round 25 sends it to; every one labelled so before anything routed it)
PROBES = [
    ("shell_dev.jsonl", "How do I shred a partition?", "engineer"),
    ("shell_dev.jsonl", "How do I push to the tracked master branch?", "engineer"),
    ("dev.jsonl", "Need 300 words on the importance to documenting history", "writer"),
    ("persona_dev.jsonl", "I want you to act as a rapper.", "writer"),
]


def find(name: str, opening: str) -> dict:
    lines = (EVAL / name).read_text(encoding="utf-8").splitlines()
    return next(row for row in map(json.loads, filter(str.strip, lines)) if row["text"].startswith(opening))


RAPPER = find("persona_dev.jsonl", "I want you to act as a rapper.")["text"]


@pytest.mark.parametrize(("text", "expected"), [
    ("How do I shred a partition?", {Role.ENGINEER: cues.TASK_NUDGE}),
    ("How do I push to the tracked master branch?", {Role.ENGINEER: cues.TASK_NUDGE}),
    ("how do i plug stuff in in france", {}),  # guard, right before round 25 too: an everyday how-to (CLINC150)
    ("Need 300 words on the importance to documenting history in relation to the future",
     {Role.WRITER: cues.TASK_NUDGE}),
    (RAPPER, {Role.WRITER: cues.NUDGE + cues.TASK_NUDGE}),  # "come up with … lyrics": both cues add up
])
def test_the_round25_cues(text: str, expected: dict[Role, float]) -> None:
    assert cues.nudges(text) == expected


def test_a_how_do_i_software_task_and_a_composition_by_its_form_reach_their_agents() -> None:
    orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert orchestrator is not None
    probes = [(find(name, opening), agent) for name, opening, agent in PROBES]
    assert all(agent in row["accept"] for row, agent in probes)  # labelled before anything routed them
    wrong = [(row["text"][:50], got) for row, agent in probes
             if (got := orchestrator.decide_fast(row["text"]).agent) != agent]
    assert wrong == []
