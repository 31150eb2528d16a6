"""Round 8b's speed-ups of the fast path change no decision: the fast implementation against the plain one
it replaced (benchmarks/routing_reference.py), on the long and non-English tuning prompts, with and
without corrections, and on texts made to hit the edge cases of each speed-up."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from benchmarks.routing_reference import ReferenceClassifier, reference
from benchmarks.routing_reference import views as reference_views
from scipy.sparse import random as sparse_random

from modelyard.agents import classifier as fast
from modelyard.agents.classifier import Classifier, View, column_sums, training_samples
from modelyard.agents.evaluation import read_labels
from modelyard.agents.memory import CorrectedClassifier
from modelyard.agents.request import views
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"
#: tuning sets only (routing_eval/README.md): never a held-out one
TUNING = ("arena_dev.jsonl", "dev.jsonl", "sharegpt_dev.jsonl", "evals.jsonl")
EDGE_CASES = [
    "", "   \n\t ", "ok", "İstanbul'da İYİ bir otel öner " * 40,  # lower() that changes the length
    "word\u00a0word\u2003word\u3000漢字かなカナ한국어 " * 60,  # Unicode spaces, scripts without spaces
    "```python\ndef f(x):\n    return x\n```\n" * 30 + "Why does this return None?",
    "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n" * 40 + "fix it please",
    "a,b,c,d\n1,2,3,4\n" * 300 + "Summarize the table above.",  # over 8,000 characters: scanned ends
    "x" * 5000, "the the the the " * 300, "I want you to write a poem about rain. " * 30,
    # round 10's reading: a prose fence, quotations (curly, straight, numbered, a stray one), over-long
    # sentences and early colons
    "make flashcards of this:\n```md\n" + "Run tsc --watch in the folder, you will see it compile.\n" * 40 + "```",
    "Rewrite it:\n\n" + "“Will you come?” she asked. \"Why?\" he said. Do you know?\n\n" * 30,
    'Web search results:\n' + '[1] "Can you do it? You can." URL: https://a.b/c?d=1\n' * 40 + "Query: why?",
    'It is 12" wide. Can you help? ' * 60, "summarize this: " + "so you know what i mean and you see " * 60,
]


def long_or_foreign() -> list[str]:
    texts = [json.loads(line)["text"] for name in TUNING for line in (EVAL / name).read_text().splitlines()]
    return [t for t in texts if len(t) > 800 or sum(ord(c) > 0x2FF for c in t) > 0.3 * len(t)] + EDGE_CASES


@pytest.fixture(scope="module")
def samples() -> dict[str, list[str]]:
    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    return training_samples(config, routing_targets(config, name))


@pytest.fixture(scope="module")
def classifier(samples: dict[str, list[str]]) -> Classifier:
    return Classifier(samples)


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12)


def test_the_sample_holds_long_and_non_english_messages() -> None:
    texts = long_or_foreign()
    assert sum(len(t) > 800 for t in texts) >= 60 and sum(len(t) <= 800 for t in texts) >= 40


def test_decisions_and_confidences_equal_the_reference(classifier: Classifier) -> None:
    plain = reference(classifier)
    assert isinstance(plain, ReferenceClassifier)
    for text in long_or_foreign():
        assert views(text) == reference_views(text), text[:80]
        got, expected = classifier.decide(text), plain.decide(text)
        assert got.agent == expected.agent, text[:80]
        assert same(got.confidence, expected.confidence), text[:80]
        signals, reference_signals = classifier.signals(text)[1], plain.signals(text)[1]
        assert all(same(a, b) for a, b in zip(signals, reference_signals, strict=True)), text[:80]


def test_features_are_the_same_bit_for_bit(classifier: Classifier, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = reference(classifier)
    monkeypatch.setattr(fast, "MEMO_WORDS", 20)  # the per-word memory starts afresh many times
    for text in long_or_foreign():
        for read, _ in views(text):
            for view in (View.WORDS, View.CHARS):
                index, weight = classifier._views[view](read)
                expected_index, expected_weight = plain._views[view](read)
                assert np.array_equal(index, expected_index) and np.array_equal(weight, expected_weight)
    assert len(classifier._views[View.CHARS]._hits) <= 21 + max(len(r.split()) for r in long_or_foreign())


def test_corrections_decide_as_the_reference(samples: dict[str, list[str]], classifier: Classifier) -> None:
    config_agents = set(samples)
    corrections = [(r.text, r.accept[0]) for r in read_labels(EVAL / "corrections_clinc.jsonl", config_agents)[:50]]
    corrected = CorrectedClassifier(samples, corrections, base=classifier)
    plain = reference(corrected)
    texts = long_or_foreign() + [t for t, _ in corrections[:20]]
    near = 0
    for text in texts:
        got, expected = corrected.decide(text), plain.decide(text)
        assert (got.agent, got.detail) == (expected.agent, expected.detail), text[:80]
        assert same(got.confidence, expected.confidence), text[:80]
        near += bool(got.detail)
    assert near > 0  # the corrections' own territory was exercised


@pytest.mark.parametrize("picked", [0, 1, 7, 300])
def test_column_sums_equal_scipys_product_bit_for_bit(picked: int) -> None:
    rows = sparse_random(2000, 300, density=0.03, format="csr", random_state=picked)
    rng = np.random.default_rng(picked)
    index = rng.choice(2000, picked, replace=False).astype(np.intp)
    weight = rng.random(picked)
    expected = np.asarray(rows[index].T @ weight).ravel()
    got = column_sums(rows, index, weight)
    assert got.shape == expected.shape == (300,) and np.array_equal(got, expected)
