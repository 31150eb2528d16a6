"""Round 38: the language check reads short requests in Vietnamese, Finnish, Polish, Turkish and Czech — function
words of those languages, words with Latin Extended letters read whole, and two rules for requests too short to hold
three function words (``encoder.foreign``; figures in benchmarks/routing_eval/ROUNDS.md, round 38).

The probes are tuning lines (benchmarks/routing_eval/langs_dev.jsonl, mklangs_dev.py: written in the kinds of the Aya
dataset, CohereForAI/aya_dataset, of the Vietnamese Alpaca translations telexyz/GPT4VN lists and of Open Assistant's
first messages; labelled by POLICY.md when written), not held-out ones. On main before round 38 each was read as
English — WordLlama's English space voted on it — and the four routed ones went to chat or research.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents.encoder import foreign, foreign_message
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"


def line(opening: str) -> dict[str, object]:
    """The one line of langs_dev.jsonl that holds ``opening``."""
    rows = [json.loads(t) for t in (EVAL / "langs_dev.jsonl").read_text(encoding="utf-8").splitlines() if t.strip()]
    found = [row for row in rows if opening in row["text"]]
    assert len(found) == 1, (opening, len(found))
    return found[0]


@pytest.mark.parametrize("text", [
    "Ahoj, jak se máš?",  # Czech: two function words, no English one
    "Mikä on ero sähköauton ja hybridiauton välillä?",  # Finnish: the same
    "Merhaba, nasılsın?",  # Turkish: dotless ı twice (Latin Extended-A)
    "Cześć! Jak się masz?",  # Polish: ś, ę
    "Tại sao bầu trời có màu xanh?",  # Vietnamese: ạ, ầ, ờ (Latin Extended Additional)
    "Kuka kirjoitti Seitsemän veljestä ja milloin se julkaistiin?",  # Finnish: three function words now listed
])
def test_a_short_request_in_these_languages_is_read_as_another_language(text: str) -> None:
    assert foreign(text)
    assert foreign_message(text)


@pytest.mark.parametrize("text", [
    "how do i do a tuple comprehension in python",  # Portuguese "do" twice: one word, not two
    "Review my résumé for a data analyst job",  # é is borrowed by English: not counted
    "Play something by Dvořák",  # one Latin Extended letter
    "que sera sera — who sang it first and when?",
])
def test_english_stays_english(text: str) -> None:
    assert not foreign(text)


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    made = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert made is not None
    return made


@pytest.mark.parametrize(("opening", "agent"), [
    ("Deniz kenarında geçen kısa bir hikaye", "writer"),  # Turkish: a story to write (main: chat)
    ("Wypisz wszystkie daty z poniższego tekstu", "utility"),  # Polish: dates to extract (main: research)
    ("Jaký je rozdíl mezi virem a bakterií?", "research"),  # Czech: a knowledge question (main: chat)
    ("Dịch câu sau sang tiếng Anh", "utility"),  # Vietnamese: a sentence to translate (main: chat)
])
def test_a_request_in_these_languages_reaches_its_agent(orchestrator: Orchestrator, opening: str, agent: str) -> None:
    row = line(opening)
    assert agent in row["accept"]  # type: ignore[operator]
    assert orchestrator.decide_fast(str(row["text"])).agent == agent
