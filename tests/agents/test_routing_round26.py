"""Round 26: a composition asked for in another language — a poem, a song, a fairy tale, a haiku, a rhyme, a story or
a dialogue to make — leans to writer (agents/cues.py: :data:`~modelyard.agents.cues.FOREIGN_FORM`, searched only in
a message the multilingual encoder reads; figures in benchmarks/routing_eval/ROUNDS.md, round 26).

The probes are tuning lines, not held-out ones: people's own non-English prompts to Chatbot Arena as
lmarena/arena-hard-auto publishes them (``data/arena-hard-v2.0/question.jsonl``,
https://github.com/lmarena/arena-hard-auto; arena_dev.jsonl and arenaforeign_dev.jsonl, mkarena.py and
mkarenaforeign.py), and an OpenAI Evals Chinese literature question (evals_dev.jsonl, mkevalsdev.py;
https://github.com/openai/evals), each labelled by POLICY.md before anything routed it. On main before round 26
the fast path sent every positive probe below to research or chat.
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

#: (set, line's opening): compositions in Russian, Persian, Korean, Greek, Spanish, Italian and Japanese, each
#: labelled writer (or writer first) before anything routed it
PROBES = [
    ("arenaforeign_dev.jsonl", "Придумай песню про Саурона"),
    ("arenaforeign_dev.jsonl", "срифмуй продолжение"),
    ("arenaforeign_dev.jsonl", "یک شعر فارسی بساز"),
    ("arenaforeign_dev.jsonl", "나는 고아원에 봉사활동해."),
    ("arenaforeign_dev.jsonl", "\nΘΕΛΩ ΕΝ ΠΟΙΟΤΙΚΟ ΠΟΙΗΜΑ"),
    ("arenaforeign_dev.jsonl", "Agisci come unosceneggiatore"),
    ("arena_dev.jsonl", "CUENTO PARA NIÑOS"),
    ("arena_dev.jsonl", "「あなたは日本語のAI詩人として"),
]


def find(name: str, opening: str) -> dict:
    lines = (EVAL / name).read_text(encoding="utf-8").splitlines()
    return next(row for row in map(json.loads, filter(str.strip, lines)) if row["text"].startswith(opening))


#: evals_dev's question about which poem a passage comes from: research, and no composition
POEM_QUESTION = find("evals_dev.jsonl", "下面这段内容出自哪位中国现当代作家的哪一部诗歌作品")["text"]


@pytest.mark.parametrize(("name", "opening"), PROBES)
def test_a_composition_in_another_language_is_nudged_to_writer(name: str, opening: str) -> None:
    row = find(name, opening)
    assert row["accept"][0] == "writer"
    assert cues.nudges(row["text"], foreign=True) == {Role.WRITER: cues.FOREIGN_NUDGE}


def test_the_cue_is_searched_only_in_a_message_in_another_language() -> None:
    """Guard: with ``foreign`` False (English, or no multilingual encoder) no decision may change."""
    assert all(cues.nudges(find(name, opening)["text"]) == {} for name, opening in PROBES)


def test_a_question_about_a_poem_is_no_composition() -> None:
    """Guard (no cue before round 26 either): "which poem by which author is this from?" names a poem without a
    verb of writing before it — an early draft of the cue took 作 (in 作家, author) for one and fired here."""
    assert cues.nudges(POEM_QUESTION, foreign=True) == {}


def test_compositions_in_other_languages_reach_writer() -> None:
    orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert orchestrator is not None
    decided = {opening: orchestrator.decide_fast(find(name, opening)["text"]).agent for name, opening in PROBES}
    assert decided == {opening: "writer" for _, opening in PROBES}
