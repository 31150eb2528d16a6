"""Round 39: role examples in the six languages round 38 taught the language check (``roles._ROUND39_FOREIGN``,
learned only by the members that vote on a message in another language; figures in
benchmarks/routing_eval/ROUNDS.md, round 39).

Round 38 made the check read Vietnamese, Finnish, Czech, Polish, Turkish and Indonesian, but the multilingual member
had next to no role example in them — a Vietnamese poem request, read as Vietnamese, still went to chat. The probes
are tuning lines (benchmarks/routing_eval/langs_dev.jsonl, mklangs_dev.py: written in the kinds of the Aya dataset,
CohereForAI/aya_dataset, and Open Assistant's first messages; labelled by POLICY.md), none of them an example's text;
each went to another agent on main before round 39.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents.encoder import foreign_message
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.roles import ROUND14_FOREIGN_EXAMPLES, Role

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"


def line(opening: str) -> str:
    """The text of the one langs_dev.jsonl line that starts with ``opening``."""
    rows = [json.loads(t) for t in (EVAL / "langs_dev.jsonl").read_text(encoding="utf-8").splitlines() if t.strip()]
    found = [row for row in rows if str(row["text"]).startswith(opening)]
    assert len(found) == 1, (opening, len(found))
    return str(found[0]["text"])


@pytest.mark.parametrize(("opening", "agent"), [
    ("Viết một bài thơ ngắn về mùa thu", "writer"),  # Vietnamese: a poem (main: chat)
    ("Hãy gợi ý 5 tên cho một quán cà phê", "writer"),  # Vietnamese: names for a café (main: research)
    ("Kerro minulle vitsi", "chat"),  # Finnish: tell me a joke, I'm down (main: utility)
    ("Korjaa kielioppivirheet", "utility"),  # Finnish: fix the grammar of given text (main: research)
    ("Aşağıdaki metindeki yazım hatalarını", "utility"),  # Turkish: fix the spelling (main: chat)
])
def test_a_request_in_these_languages_reaches_its_agent(default_orchestrator: Orchestrator, opening: str,
                                                         agent: str) -> None:
    text = line(opening)
    assert foreign_message(text)  # round 38's check reads it as another language: the foreign members vote
    assert text not in ROUND14_FOREIGN_EXAMPLES[Role(agent)]  # not learned verbatim
    assert default_orchestrator.decide_fast(text).agent == agent

