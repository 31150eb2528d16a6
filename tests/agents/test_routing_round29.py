"""Round 29: messages in another language are voted on by TF-IDF members that learned the role examples in other
languages too (round 14's and round 29's, ``roles.ROUND14_FOREIGN_EXAMPLES``), in the English members' place — the
English ones never see those examples, so English decisions do not move (figures in
benchmarks/routing_eval/ROUNDS.md, round 29).

The probes are tuning lines, not held-out ones, each labelled by POLICY.md before anything routed it: a Chinese
competitive-programming statement from Chatbot Arena as lmarena/arena-hard-auto publishes it
(``data/arena-hard-v2.0/question.jsonl``, https://github.com/lmarena/arena-hard-auto; arenaforeign_dev.jsonl,
mkarenaforeign.py), labelled engineer, and an OpenAI Evals Chinese literature question answered with a name only
(evals_dev.jsonl, mkevalsdev.py; https://github.com/openai/evals), labelled research. On main before round 29 the
fast path sent the first to research and the second to writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.agents.classifier import View
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.paths import embedded_default_config

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_eval"


def line(name: str, opening: str) -> dict[str, object]:
    """The one line of a tuning set that holds ``opening``."""
    rows = [json.loads(t) for t in (EVAL / name).read_text(encoding="utf-8").splitlines() if t.strip()]
    found = [row for row in rows if opening in row["text"]]
    assert len(found) == 1, (name, opening, len(found))
    return found[0]


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    made = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert made is not None
    return made


@pytest.mark.parametrize(("name", "opening"), [("arenaforeign_dev.jsonl", "矩形面积 II"),
                                               ("evals_dev.jsonl", "小说《啼笑因缘》的作者是谁")])
def test_a_message_in_another_language_reaches_its_role(orchestrator: Orchestrator, name: str, opening: str) -> None:
    row = line(name, opening)
    assert orchestrator.decide_fast(str(row["text"])).agent in row["accept"]  # type: ignore[operator]


def test_the_foreign_members_learned_the_examples_in_other_languages(orchestrator: Orchestrator) -> None:
    """The foreign TF-IDF members know words only the examples in other languages hold; the English ones do not."""
    classifier = orchestrator.classifier
    classifier.ready_multilingual()
    foreign_words = classifier._foreign_views  # type: ignore[attr-defined]
    english_words = classifier._views  # type: ignore[attr-defined]
    assert foreign_words, "the foreign TF-IDF members are trained with the multilingual member"
    for term in ("题目描述", "отсортируй"):
        assert term in foreign_words[View.WORDS].vocabulary and term not in english_words[View.WORDS].vocabulary


def test_a_message_in_another_language_is_analysed_once(orchestrator: Orchestrator) -> None:
    """Round 29b: the English views (the confidence's similarities) read a non-English message's counts from the
    foreign members' views instead of cutting its character n-grams a second time — and get the same features as
    their own analysis would give. The message is arenaforeign_dev's Chinese statement with a word added that no
    earlier decision has cut (so neither view remembers it)."""
    import numpy as np

    from modelyard.agents import analyzers
    from modelyard.agents.classifier import _Vectorizer

    classifier = orchestrator.classifier
    classifier.ready_multilingual()
    text = str(line("arenaforeign_dev.jsonl", "矩形面积 II")["text"]) + " 测试二九乙专用词"
    views = [*classifier._views.values(), *classifier._foreign_views.values()]  # type: ignore[attr-defined]
    cut: list[str] = []

    def counted(word: str) -> list[str]:
        cut.append(word)
        return analyzers.char_wb_ngrams(word)

    for vectorize in views:
        if vectorize.ngrams is not None:
            vectorize.ngrams = counted
    try:
        orchestrator.decide_fast(text)
    finally:
        for vectorize in views:
            if vectorize.ngrams is not None:
                vectorize.ngrams = analyzers.char_wb_ngrams
    assert cut.count("测试二九乙专用词") == 1, cut.count("测试二九乙专用词")
    for view, english in classifier._views.items():  # type: ignore[attr-defined]
        alone = _Vectorizer(english.analyze, english.vocabulary, english.idf, english.words, english.ngrams)
        for read, _ in classifier.read(text):
            mine, theirs = english(read), alone(read)
            assert np.array_equal(mine[0], theirs[0]) and mine[1].tobytes() == theirs[1].tobytes(), view
