"""Re-ask detection (frontends/reask.py): a question retyped after `/agent X` is the same question whatever its case,
punctuation, apostrophes, accents or a typo per word — and "same question again" asks it again. Comparing words
exactly took "What is teh capital of Frnace?" (two typos in six words, 4/6 < 80%) for a new question, and a
request to repeat it for nothing, so the correction a person made by re-asking was lost. Retyping with typos is
how people re-ask (Park et al., arXiv 2010.12251: Alexa learns from rephrases, not copies)."""

from __future__ import annotations

import pytest

from modelyard.frontends.reask import reasks

QUESTION = "What is the capital of France?"


@pytest.mark.parametrize("text", [
    "what is the capital of france",                 # case and punctuation
    "WHAT IS THE CAPITAL OF FRANCE???",
    "What is teh capital of Frnace?",                 # two typos: swapped letters
    "What is the captial of Farnce",
    "What is the capitol of France?",                 # one letter changed in a long word
    "Waht is the capital of France",
    "same question again",                            # asked again without retyping it
    "Same question, again.",
    "try again please",
    "ask it again",
    "again",
])
def test_the_same_question_retyped_or_asked_for_again(text: str) -> None:
    assert reasks(text, QUESTION), text


@pytest.mark.parametrize(("text", "question"), [
    ("Don't panic!", "dont panic"),                    # an apostrophe typed or not
    ("Où est le café ?", "ou est le cafe"),                # accents typed or not
    ("fix thsi bug", "Fix this bug"),                      # one swap in a three-word question
])
def test_short_questions_with_an_apostrophe_an_accent_or_a_swap(text: str, question: str) -> None:
    assert reasks(text, question)


@pytest.mark.parametrize("text", [
    "thanks",
    "ok",
    "What is the population of Spain?",
    "Write a long essay about the capital of France, its history, its culture and its food, in detail please",
    "is it",
])
def test_another_question_or_a_longer_request_is_not_a_reask(text: str) -> None:
    assert not reasks(text, QUESTION), text


def test_short_words_need_the_same_letters() -> None:
    """One letter changed in a short word is another word ('cat'/'car', 'is'/'it'): only a swap is a typo there."""
    assert not reasks("fix that car", "fix this cat")
    assert not reasks("again and again: what about Spain?", QUESTION)
