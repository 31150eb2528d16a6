"""Round 40: Indonesian function words for the language check and role examples in Vietnamese and Indonesian
(``encoder.FUNCTION_WORDS["id"]``, ``roles._ROUND40_FOREIGN``, learned only by the members that vote on a message in
another language; figures in benchmarks/routing_eval/ROUNDS.md, round 40).

Round 40's held-out read of fresh_seabench (SeaBench's requests, DAMO-NLP-SG/SeaBench) found Vietnamese knowledge
questions and word problems scattered to utility, chat and writer, and short Indonesian requests read as English.
The probes are tuning lines (benchmarks/routing_eval/seabench_dev.jsonl — SeaBench requests fresh_seabench did not
take — and langs_dev.jsonl; labelled by POLICY.md), none of them an example's text; each went to another agent on
main before round 40.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents.encoder import foreign, foreign_message
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.roles import ROUND14_FOREIGN_EXAMPLES, Role

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"


def line(name: str, opening: str) -> str:
    """The text of the one line of ``name``.jsonl that starts with ``opening``."""
    rows = [json.loads(t) for t in (EVAL / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if t.strip()]
    found = [row for row in rows if str(row["text"]).startswith(opening)]
    assert len(found) == 1, (opening, len(found))
    return str(found[0]["text"])


@pytest.mark.parametrize("text", [
    "Buatkan puisi tentang hujan di bulan Desember.",  # langs_dev: "tentang", "di" — read as English on main
    "Tuliskan cerita pendek tentang persahabatan seorang anak dan kucingnya.",
])
def test_a_short_indonesian_request_is_read_as_another_language(text: str) -> None:
    assert foreign(text)


@pytest.mark.parametrize("text", [
    "how do i do a tuple comprehension in python",
    "I'd like to go to the cafe di Napoli, is it worth it?",  # one Indonesian word beside English ones: English
])
def test_english_stays_english(text: str) -> None:
    assert not foreign(text)


@pytest.mark.parametrize(("name", "opening", "agent"), [
    ("langs_dev", "Buatkan puisi tentang hujan", "writer"),  # Indonesian: a poem (main: research, read as English)
    ("langs_dev", "Buatkan fungsi PHP", "engineer"),  # Indonesian: a PHP function (main: research)
    ("seabench_dev", "Liệt kê và phân tích các ảnh hưởng", "research"),  # Vietnamese: list and analyse (main: chat)
    ("seabench_dev", "Giá niêm yết ban đầu", "research"),  # Vietnamese: a discount word problem (main: chat)
    ("seabench_dev", "Tại sao các thung lũng", "research"),  # Vietnamese: why floods come (main: writer)
])
def test_a_request_in_these_languages_reaches_its_agent(default_orchestrator: Orchestrator, name: str, opening: str,
                                                         agent: str) -> None:
    text = line(name, opening)
    assert foreign_message(text)  # the foreign members vote on it
    assert text not in ROUND14_FOREIGN_EXAMPLES[Role(agent)]  # not learned verbatim
    assert default_orchestrator.decide_fast(text).agent == agent
