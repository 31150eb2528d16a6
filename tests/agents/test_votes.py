"""The members' votes scored together (agents/votes.py): each member's own probabilities, to float noise.

Round 23 stacks the four TF-IDF members' weights per view and scores them with one gather and one product per view;
each member must still vote exactly as its own softmax over its own weights (the arithmetic of
``tests/agents/test_orchestrator.py``'s check against scikit-learn), the float32 sentence-encoder member in float32
as before, and the weights must be held once.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.agents.classifier import Classifier, View, training_samples
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.agents.votes import Member, Stacked, vote
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

TEXTS = ["please fix this error in my function", "Write A Poem!!", "unseen zzz words", "x" * 2000,
         "write a poem about my cat\n\n" + "The cat sat on the mat all day long. " * 40 + "\n\nthanks!",
         "Traceback (most recent call last):\n  File \"a.py\", line 3\nKeyError: 'x'\nwhy?"]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    return Classifier(training_samples(config, routing_targets(config, name)))


def test_stacked_votes_are_each_members_own(classifier: Classifier) -> None:
    for text in TEXTS:
        for read, _ in classifier.read(text):
            features = classifier._features(read)
            together = classifier._votes(features)
            alone = np.vstack([member.proba(features) for member in classifier.members])
            assert together.shape == alone.shape == (len(classifier.members), len(classifier.classes))
            assert np.allclose(together, alone, rtol=0.0, atol=1e-12), read[:60]
            assert np.array_equal(together[4:], alone[4:])  # the encoder's member: computed as it always was
            assert together.dtype == np.float64 and np.allclose(together.sum(axis=1), 1.0)


def test_the_weights_are_held_once(classifier: Classifier) -> None:
    stacked = classifier._stacked
    assert stacked.members == classifier.members[:4]
    for member in stacked.members:
        for view, matrix in member.weights.items():
            assert view in (View.WORDS, View.CHARS)
            assert any(np.shares_memory(matrix, weights) for _, weights, _ in stacked._views)


def test_members_scored_together_in_any_mix() -> None:
    """Members reading different views, with and without members outside the stack, on hand-made weights."""
    rng = np.random.default_rng(3)
    one = Member({"a": rng.normal(size=(3, 20))}, rng.normal(size=3))
    two = Member({"a": rng.normal(size=(3, 20)), "b": rng.normal(size=(3, 7))}, rng.normal(size=3))
    three = Member({"b": rng.normal(size=(3, 7))}, rng.normal(size=3))
    dense = Member({"c": rng.normal(size=(3, 4)).astype(np.float32)}, rng.normal(size=3).astype(np.float32))
    expected = [m.proba for m in (one, two, three)]
    features = {"a": (np.array([4, 0, 19]), rng.random(3)), "b": (np.array([6, 2]), rng.random(2)),
                "c": (None, rng.random(4).astype(np.float32))}
    before = np.vstack([p(features) for p in expected] + [dense.proba(features)])
    stacked = Stacked([one, two, three])
    got = vote(stacked, [dense], features)
    assert np.allclose(got, before, rtol=0.0, atol=1e-12) and np.array_equal(got[3], dense.proba(features))
    assert np.allclose(vote(stacked, [], features), before[:3], rtol=0.0, atol=1e-12)
