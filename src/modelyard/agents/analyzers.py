"""The fast path's two text analyzers, as scikit-learn's ``TfidfVectorizer`` cuts a text — without importing it.

scikit-learn costs a routing process ~77 MiB and ~0.7 s of CPU to import (benchmarks/README.md, footprint); with
the fitted weights kept on disk (agents/fitted.py) a process needs it only to fit, not to route. These are the
same steps as its analyzers for the settings the classifier uses (``analyzer="word"``, ``ngram_range=(1, 2)``,
``token_pattern=r"(?u)\\b\\w+\\b"``; ``analyzer="char_wb"``, ``ngram_range=(2, 5)``; lower-casing, no accent
stripping, no stop words: ``sklearn/feature_extraction/text.py``, 1.x), so the same n-grams in the same order:
tests/agents/test_fitted.py compares them with scikit-learn's own on every routing_eval prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TOKEN = re.compile(r"(?u)\b\w+\b")
#: scikit-learn's ``_VectorizerMixin._white_spaces``
WHITE_SPACES = re.compile(r"\s\s+")
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)


def word_ngrams(text: str) -> list[str]:
    """Lower-cased word tokens, then the bigrams of neighbouring tokens joined by a space."""
    tokens = TOKEN.findall(text.lower())
    out = list(tokens)
    low, high = WORD_NGRAMS
    for n in range(low + 1, min(high + 1, len(tokens) + 1)):
        # the n-grams as zipped shifted copies of the tokens, joined: a quarter less CPU than slicing each
        out.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
    return out


def unigrams(ngrams: Sequence[str]) -> Sequence[str]:
    """The single words of :func:`word_ngrams`'s n-grams: its first ones (each bigram has a space, no word has),
    taken without a test per n-gram when the n-grams are uni- and bigrams (one bigram fewer than words)."""
    if WORD_NGRAMS == (1, 2):
        return ngrams[:(len(ngrams) + 1) // 2]
    return [g for g in ngrams if " " not in g]


def char_words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words ``char_wb`` cuts n-grams from, each independently."""
    return tuple(WHITE_SPACES.sub(" ", text.lower()).split())


def char_wb_ngrams(text: str) -> list[str]:
    """Character 2–5-grams inside each word padded with a space on both sides (a word shorter than n: once)."""
    low, high = CHAR_NGRAMS
    out: list[str] = []
    append = out.append
    for word in WHITE_SPACES.sub(" ", text).split():
        w = " " + word + " "
        size = len(w)
        for n in range(low, high + 1):
            offset = 0
            append(w[offset:offset + n])
            while offset + n < size:
                offset += 1
                append(w[offset:offset + n])
            if offset == 0:
                break
    return out


def char_analyze(text: str) -> list[str]:
    """``char_wb_ngrams`` of the lower-cased text."""
    return char_wb_ngrams(text.lower())
