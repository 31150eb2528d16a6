"""Round 14: knowledge questions wrapped in answer-format instructions ("answer Y or N", "respond with only …") and
set-ups of analysts and advisers reach research on the fast path, whatever the output's form (benchmarks/README.md,
round 14; POLICY.md: answering from knowledge and judging is research, utility only changes what the person gives).

The prompts are from tuning sets built from outside collections, labelled before anything routed them, not held-out
sets and not role examples: OpenAI Evals task prompts (routing_eval/evals_dev.jsonl, mkevalsdev.py) and ShareGPT
users' set-ups (persona_dev.jsonl, mkpersona_dev.py). Before round 14's examples every probe below went to chat,
engineer, utility or writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"

#: openings of evals_dev.jsonl prompts (research is acceptable for each, best fit for most)
WRAPPED_QUESTIONS = [
    "You are a helpful assistant.\n\nWas Donald Trump born before Joe Biden? Answer Y or N.",
    "Identify the country or state that is defined by the following WKT. Respond with only the name",
    "You will be prompted with a question in swedish You will be provided with multiple choices",
    "Instructions: You will be presented with a passage and a question about that passage.",
    "You are a jazz musician with expertise in tetrad, or four-note chords",
]
#: openings of persona_dev.jsonl set-ups of advisers (research, chat accepted)
ADVISER_SETUPS = [
    "You're a business consultant and provide training on project management for the clients.",
]


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def find(name: str, opening: str) -> dict:
    return next(row for row in rows(name) if row["text"].startswith(opening))


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    found = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert found is not None
    return found


def test_wrapped_questions_and_adviser_setups_reach_research(orchestrator: Orchestrator) -> None:
    probes = [find("evals_dev.jsonl", o) for o in WRAPPED_QUESTIONS]
    probes += [find("persona_dev.jsonl", o) for o in ADVISER_SETUPS]
    assert all("research" in row["accept"] for row in probes)  # labelled before anything routed them
    decisions = [(row["text"][:60], orchestrator.decide_fast(row["text"]).agent) for row in probes]
    wrong = [(text, agent) for text, agent in decisions if agent != "research"]
    assert wrong == []


def test_evals_dev_stays_above_round_13(orchestrator: Orchestrator) -> None:
    """evals_dev: round 13's fast path 60 of 80 acceptable (round 14: 72)."""
    right = sum(orchestrator.decide_fast(row["text"]).agent in row["accept"] for row in rows("evals_dev.jsonl"))
    assert right >= 68, right
