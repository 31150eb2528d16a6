"""The sentence encoder (agents/encoder.py): real weights from the wordllama wheel, and routing without it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from modelyard.agents import confidence, encoder
from modelyard.agents.classifier import Classifier, View

SAMPLES = {"a": ["fix the bug in my code", "write a function", "stack trace error", "debug this loop"],
           "b": ["write a poem", "draft an email to my boss", "a story about a cat", "a poem for mum"],
           "c": ["hello there", "thanks!", "how are you", "good morning"]}


@pytest.fixture(scope="module")
def shipped() -> encoder.Encoder:
    found = encoder.shared()
    assert found is not None, "wordllama is a dependency of modelyard: its wheel ships the encoder's weights"
    return found


def test_related_words_are_near_without_shared_words(shipped: encoder.Encoder) -> None:
    """What TF-IDF cannot see: phrases with no word in common, near when their words are related."""
    for text, related, unrelated in [("write a poem", "compose verses", "fix the compiler"),
                                     ("my app crashes", "segfault on startup", "baking a cake"),
                                     ("I feel lonely", "so sad today", "a csv file")]:
        assert shipped(text) @ shipped(related) > shipped(text) @ shipped(unrelated) + 0.15
    vectors = shipped.many(["hello", "", "write a poem"])
    assert vectors.shape == (3, shipped.dim)
    assert np.allclose(np.linalg.norm(vectors[[0, 2]], axis=1), 1.0) and not vectors[1].any()
    assert np.allclose(vectors[2], shipped("write a poem"), atol=1e-6)


def test_a_missing_package_is_named() -> None:
    with pytest.raises(encoder.EncoderUnavailable, match="not installed"):
        encoder.load("modelyard_no_such_encoder_package")


def test_missing_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package without the expected files (another version): the path is in the reason."""
    (tmp_path / "fake_encoder_pkg").mkdir()
    (tmp_path / "fake_encoder_pkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(encoder.EncoderUnavailable, match=r"l2_supercat_256\.safetensors is missing"):
            encoder.load("fake_encoder_pkg")
        weights = tmp_path / "fake_encoder_pkg" / encoder.WEIGHTS
        weights.parent.mkdir()
        weights.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
        tokenizer = tmp_path / "fake_encoder_pkg" / encoder.TOKENIZER
        tokenizer.parent.mkdir()
        tokenizer.write_text("{}")
        with pytest.raises(encoder.EncoderUnavailable, match="cannot read"):
            encoder.load("fake_encoder_pkg")
    finally:
        sys.modules.pop("fake_encoder_pkg", None)


def test_shared_logs_why_it_is_missing_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(encoder, "PACKAGE", "modelyard_no_such_encoder_package")
    monkeypatch.setattr(encoder, "_shared", [])
    with caplog.at_level(logging.WARNING, logger="modelyard.agents.encoder"):
        assert encoder.shared() is None and encoder.shared() is None
    reasons = [r.getMessage() for r in caplog.records]
    assert len(reasons) == 1 and "routing without the sentence encoder" in reasons[0] and "not installed" in reasons[0]
    # and a classifier built meanwhile routes with its four TF-IDF members and the matching confidence weights
    classifier = Classifier(SAMPLES)
    assert classifier.encoder is None and len(classifier.members) == 4
    decision = classifier.decide("please fix this error in my function")
    agent, values = classifier.signals("please fix this error in my function")
    assert decision.agent == agent == "a"
    assert decision.confidence == pytest.approx(confidence.probability(values, *confidence.coefficients(False)))


def test_the_encoder_is_the_fifth_member(shipped: encoder.Encoder) -> None:
    with_encoder, without = Classifier(SAMPLES, encoder=shipped), Classifier(SAMPLES, encoder=None)
    assert len(with_encoder.members) == 5 and View.MEANING in with_encoder.members[4].weights
    assert len(without.members) == 4
    text = "could you compose some verses for my mother"
    assert with_encoder.votes(text).shape == (5, 3) and without.votes(text).shape == (4, 3)
    assert with_encoder.votes(text)[:4] == pytest.approx(without.votes(text))
    with pytest.raises(ValueError, match="encoder"):
        Classifier(SAMPLES, encoder="other")
