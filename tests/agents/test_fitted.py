"""The fast path's fitted weights kept on disk (agents/fitted.py) and its analyzers without scikit-learn
(agents/analyzers.py): a process that routes a config it routed before reads the weights instead of fitting, and
does not import scikit-learn (~77 MiB, ~0.7 s of CPU: benchmarks/README.md, footprint) — deciding the same, bit
for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.agents.classifier import Classifier

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "benchmarks" / "routing_eval"
SAMPLES = {"a": ["fix the bug in my code", "write a function", "stack trace error", "debug this loop"],
           "b": ["write a poem", "draft an email to my boss", "a story about a cat", "a poem for mum"],
           "c": ["hello there", "thanks!", "how are you", "good morning"]}
MESSAGES = ["write a poem about my cat", "my loop never ends, why?", "hi!", "写一首关于猫的诗",
            "Escribe un cuento sobre un robot que aprende a pintar para la hija de su dueño"]


def _prompts() -> list[str]:
    texts = [json.loads(line)["text"] for path in sorted(EVAL.glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [*texts, "", "  tabs\tand\n\nnew  lines  ", "ÉCOLE Straße İstanbul", "a", "x" * 7, "don't stop-me now"]


def test_the_analyzers_cut_as_scikit_learns_on_every_routing_eval_prompt() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from modelyard.agents import analyzers

    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b").build_analyzer()
    chars_vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5))
    chars = chars_vectorizer.build_analyzer()
    for text in _prompts():
        assert analyzers.word_ngrams(text) == words(text)
        assert analyzers.char_analyze(text) == chars(text)
        by_word = [g for w in analyzers.char_words(text) for g in chars_vectorizer._char_wb_ngrams(w)]
        assert by_word == chars(text)


def _decisions(classifier: Classifier) -> list[tuple[str, float]]:
    return [(d.agent, d.confidence) for d in map(classifier.decide, MESSAGES)]


def test_a_second_classifier_reads_the_stored_weights_and_decides_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_CACHE_DIR", str(tmp_path))
    first = Classifier(SAMPLES)
    first.ready_multilingual()
    before = _decisions(first)
    assert len(list((tmp_path / "routing").glob("fastpath-*.npz"))) == 2  # the members and the multilingual

    def no_fit(*_: object) -> None:
        raise AssertionError("fitted again")

    monkeypatch.setattr(Classifier, "_fit", no_fit, raising=False)
    second = Classifier(SAMPLES)
    second.ready_multilingual()
    assert _decisions(second) == before  # bit for bit
    other = {**SAMPLES, "c": [*SAMPLES["c"], "good evening"]}  # other examples: another key, fitted
    with pytest.raises(AssertionError, match="fitted again"):
        Classifier(other)


def test_a_classifier_without_a_confidence_model_keeps_nothing(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``confidence.fit``'s folds (ten sets of ~8 MB for the default config) would push out what routing reads."""
    monkeypatch.setenv("MODELYARD_CACHE_DIR", str(tmp_path))
    Classifier(SAMPLES, calibrated=False, multilingual=None)
    assert not list(tmp_path.glob("routing/fastpath-*.npz"))


def test_an_unreadable_file_is_fitted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_CACHE_DIR", str(tmp_path))
    before = _decisions(Classifier(SAMPLES, multilingual=None))
    for path in (tmp_path / "routing").glob("fastpath-*.npz"):
        path.write_bytes(b"not an npz")
    assert _decisions(Classifier(SAMPLES, multilingual=None)) == before


def test_a_process_that_routed_this_config_before_does_not_import_scikit_learn(tmp_path: Path) -> None:
    """Each process imported scikit-learn and fitted the members at its first routed message (`ask`, `chat`,
    `serve`): 77 MiB and ~1.9 s of CPU for the default config."""
    code = ("import json, sys\n"
            "from tests.agents.test_fitted import SAMPLES, MESSAGES, _decisions\n"
            "from modelyard.agents.classifier import Classifier\n"
            "decided = _decisions(Classifier(SAMPLES))[:3]\n"  # English only: the multilingual member not loaded
            "print(json.dumps([decided, 'sklearn' in sys.modules]))\n")
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "MODELYARD_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run() -> tuple[list[list[object]], bool]:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        decided, imported = json.loads(done.stdout.strip().splitlines()[-1])
        return decided, imported

    (first, imported_first), (second, imported_second) = run(), run()
    assert imported_first and not imported_second
    assert second == first
