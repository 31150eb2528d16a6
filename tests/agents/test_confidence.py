"""The fast path's confidence knows when a prompt is unlike what the examples cover (agents/confidence.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.agents import confidence, encoder
from modelyard.agents.classifier import Classifier, training_samples
from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

REFERENCE = Path(confidence.__file__).resolve().parent.parent / "examples" / "reference-mac64.yaml"


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    found = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert found is not None
    return found


def test_signals_are_what_they_say() -> None:
    """Nearest-example similarity, neighbours' agreement and known words, checked against a brute-force count."""
    samples = {"a": ["fix the bug in my code", "write a function", "stack trace error", "debug this loop"],
               "b": ["write a poem", "draft an email to my boss", "a story about a cat", "a poem for mum"],
               "c": ["hello there", "thanks!", "how are you", "good morning"]}
    classifier = Classifier(samples)
    texts = [t for name in classifier.labels for t in samples[name]]
    owners = [name for name in classifier.labels for _ in samples[name]]
    examples = classifier.embed(texts).toarray()
    for text in ["write a poem about my cat", "zzz qqq fix", "hello, how are you doing?"]:
        agent, values = classifier.signals(text)
        found = dict(zip(confidence.SIGNALS, values, strict=True))
        similarity = examples @ classifier.embed([text]).toarray()[0]
        nearest = np.argsort(-similarity, kind="stable")[:confidence.NEIGHBOURS]
        assert found["nearest"] == pytest.approx(similarity.max())
        assert found["nearest5"] == pytest.approx(similarity[nearest].mean())
        # ties at the fifth place may pick either example; the share is over the five most similar
        assert found["neighbours_agree"] == pytest.approx(np.mean([owners[i] == agent for i in nearest]), abs=0.2)
        words = text.lower().replace(",", " ").replace("?", " ").split()
        known = {w for t in texts for w in t.lower().replace("!", " ").split()}
        assert found["known_words"] == pytest.approx(sum(w in known for w in words) / len(words))


def test_less_familiar_means_less_confident() -> None:
    """Same votes, a prompt further from the examples and their agent: a lower estimate of being right."""
    votes = [0.5, 0.6, 0.3]
    for encoded in (True, False):
        coefficients = confidence.coefficients(encoded)
        familiar = confidence.probability([*votes, 0.6, 0.5, 1.0, 0.9], *coefficients)
        unfamiliar = confidence.probability([*votes, 0.15, 0.12, 0.2, 0.4], *coefficients)
        assert unfamiliar < familiar - 0.05


def test_format_wrapped_questions_are_not_taken_fast_elsewhere(orchestrator: Orchestrator) -> None:
    """Knowledge questions under answer-format rules (the evals set's style, which round 4's confidence took
    fast to ``utility``): decided fast only when the decision is ``research``; anything else is left to the
    slow path."""
    threshold = load_config(str(REFERENCE)).orchestration.threshold
    for text in ["Respond with the option letter only. Which planet is the largest? A) Mars B) Jupiter",
                 "Which is heavier, a kilo of feathers or a kilo of bricks? One word.",
                 'Answer with Y or N only: is "Schadenfreude" a German word?',
                 "Reply with the number only: how many legs does a spider have?"]:
        decision = orchestrator.decide_fast(text)
        assert decision.agent == "research" or decision.confidence < threshold, (text, decision)


def test_familiar_prompts_stay_fast(orchestrator: Orchestrator) -> None:
    threshold = load_config(str(REFERENCE)).orchestration.threshold
    for text, agent in [("write a poem about the sea", "writer"), ("hello, how are you today?", "chat"),
                        ("fix this error: TypeError: 'NoneType' object is not subscriptable", "engineer")]:
        decision = orchestrator.decide_fast(text)
        assert decision.agent == agent and decision.confidence >= threshold


def test_shipped_weights_are_what_fit_gives() -> None:
    """The coefficients in confidence.py are refitted whenever the built-in examples change."""
    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    samples = training_samples(config, routing_targets(config, name))
    assert encoder.shared() is not None, "the sentence encoder (wordllama) is a dependency: install it"
    for encoded, kind in ((True, "shared"), (False, None)):
        intercept, weights = confidence.fit(samples, encoder=kind)
        shipped_intercept, shipped_weights = confidence.coefficients(encoded)
        assert intercept == pytest.approx(shipped_intercept, abs=0.02)
        assert weights == pytest.approx(list(shipped_weights), abs=0.02)
