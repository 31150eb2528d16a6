"""Round 16: a composition leans to writer, a change to given text to utility (agents/cues.py).

A bag of words lets the topic outvote the verb ("write a blog post about the history of vaccines" → research); the
cue conjunctions nudge the mean vote of the agent whose *role* they name — found through the config's roles, not
the agent's name. Figures: benchmarks/README.md, round 16.
"""

from __future__ import annotations

import pytest

from modelyard.agents import cues
from modelyard.agents.classifier import Classifier, Samples, roles_of, training_samples
from modelyard.agents.roles import Role
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

SCHOLAR = ["the history of vaccines", "how do vaccines work", "history of medicine and of vaccines",
           "explain the immune system", "who invented the first vaccine", "why did smallpox vanish"]
SCRIBE = ["a poem about the sea", "a birthday card message for my aunt", "a love letter", "lyrics for a song"]
CHATTER = ["hi there", "thanks a lot", "good night", "how are you today"]
ASK = "write a blog post about the history of vaccines"


@pytest.mark.parametrize(("text", "expected"), [
    (ASK, {Role.WRITER: cues.NUDGE}),
    ("Draft a short email to my landlord about the broken heater", {Role.WRITER: cues.NUDGE}),
    ("Translate the following text into French:\nThe meeting is moved to Monday.", {Role.UTILITY: cues.NUDGE}),
    ("Turn this list into a table (pasted data)", {Role.UTILITY: cues.NUDGE}),
    ("What is the capital of Mongolia?", {}),
    ("How do I create a symlink?", {Role.ENGINEER: cues.TASK_NUDGE}),  # round 25: a how-to naming a system object
    ("fix this", {}),  # a verb of change with nothing given: no cue
])
def test_the_cues_name_the_role_of_what_the_request_does(text: str, expected: dict[Role, float]) -> None:
    assert cues.nudges(text) == expected


def _decide(samples: dict[str, list[str]], nudge: float, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(cues, "NUDGE", nudge)
    return Classifier(samples, calibrated=False, encoder=None, multilingual=None).decide(ASK).agent


def test_the_nudge_reaches_the_agent_with_the_role_whatever_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = Samples(scholar=SCHOLAR, scribe=SCRIBE, chatter=CHATTER)
    samples.roles = {"scholar": Role.RESEARCH, "scribe": Role.WRITER, "chatter": Role.CHAT}
    assert _decide(samples, 0.0, monkeypatch) == "scholar"  # the topic's words win alone
    assert _decide(samples, 10.0, monkeypatch) == "scribe"


def test_no_role_no_nudge(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = {"scholar": SCHOLAR, "scribe": SCRIBE, "chatter": CHATTER}  # names that imply no role
    assert roles_of(plain) == {"scholar": None, "scribe": None, "chatter": None}
    assert _decide(plain, 10.0, monkeypatch) == "scholar"
    # a plain dict's agents have the role their name implies
    named = {"research": SCHOLAR, "writer": SCRIBE, "chat": CHATTER}
    assert _decide(named, 10.0, monkeypatch) == "writer"


def test_the_default_configs_samples_know_their_roles() -> None:
    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    samples = training_samples(config, routing_targets(config, name))
    assert roles_of(samples)["writer"] is Role.WRITER and roles_of(samples)["utility"] is Role.UTILITY
