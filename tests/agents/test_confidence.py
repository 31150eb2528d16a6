"""The fast path's confidence knows when a prompt is unlike what the examples cover (agents/confidence.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.agents import confidence
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
    votes = [0.8, 0.85, 0.6]
    familiar = confidence.probability([*votes, 0.6, 0.5, 1.0, 0.9])
    unfamiliar = confidence.probability([*votes, 0.15, 0.12, 0.2, 0.4])
    assert unfamiliar < familiar - 0.05


def test_format_wrapped_questions_go_to_the_slow_path(orchestrator: Orchestrator) -> None:
    """Knowledge questions under answer-format rules: the members agreed (lowest vote above the old 0.6 line,
    so the old confidence took them fast), but the examples cover this style thinly — below the threshold."""
    threshold = load_config(str(REFERENCE)).orchestration.threshold
    for text in ["Respond with the option letter only. Which planet is the largest? A) Mars B) Jupiter",
                 "Which is heavier, a kilo of feathers or a kilo of bricks? One word."]:
        decision = orchestrator.decide_fast(text)
        votes = orchestrator.classifier.votes(text)
        assert votes[:, orchestrator.classifier.classes.index(decision.agent)].min() >= 0.6
        assert decision.confidence < threshold


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
    intercept, weights = confidence.fit(training_samples(config, routing_targets(config, name)))
    assert intercept == pytest.approx(confidence.INTERCEPT, abs=0.02)
    assert weights == pytest.approx(list(confidence.WEIGHTS), abs=0.02)
