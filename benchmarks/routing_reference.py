"""The fast path as it was before round 8b's speed-ups, kept as the straightforward reference.

Round 8b (benchmarks/README.md) made a decision on a long message cheaper without changing it: the
character n-grams are looked up word by word, the similarity to the examples runs scipy's kernels
without building matrices in between, the request is read with fewer passes. This module keeps the
code they replaced, written the plain way (round 8's, copied), so that
``tests/agents/test_fast_path_reference.py`` can check the fast implementation decides exactly as this
one on long and non-English messages, and ``bench_routing.py --compare`` can time both side by side.
:func:`reference` wraps a trained classifier: the same fitted models, read and vectorized the old way,
with caches of its own (so neither implementation profits from the other's). It is round 8's *code*,
not round 8's decisions: both sides train on the current examples (round 9 added some, which changed
decisions for both alike; benchmarks/README.md round 9), and both read a long message by round 10's rules
(a prose fence, quotations, over-long sentences and early colons; written here the plain way).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from modelyard.agents import confidence as calibration
from modelyard.agents.classifier import FOREIGN_VIEW, Classifier, View
from modelyard.agents.encoder import foreign_views
from modelyard.agents.memory import MARGIN, CorrectedClassifier
from modelyard.agents.request import (
    _ASK_LABEL,
    _CODE_END,
    _CODE_START,
    _COLON,
    _CUE_PHRASES,
    _CUE_WORDS,
    _DIGIT,
    _FENCE,
    _KEY_VALUE,
    _LINK,
    _NUMBERED,
    _OPENERS,
    _PROSE_FENCE,
    _QUOTES,
    _SENTENCE,
    _TIMESTAMP,
    _TRACE,
    _VERBS,
    _WORD,
    COLON_SPAN,
    CUE_SPAN,
    EDGE,
    LONG_PARAGRAPH,
    REQUEST_WEIGHT,
    SAMPLE,
    SCAN,
    Material,
    Part,
    clip,
)
from modelyard.agents.request import views as fast_views
from modelyard.agents.votes import Features

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

# ---- agents/request.py, round 8 ------------------------------------------------------------------

def _line_kind(line: str) -> Material | None:
    """The material a single line looks like, or None for prose (judged from its first :data:`CUE_SPAN`
    characters and its end: a long line costs no more than a short one)."""
    head = line[:CUE_SPAN]
    stripped, end = head.strip(), line.rstrip()[-40:]
    if _TRACE.match(head):
        return Material.TRACE
    if _CODE_START.match(head) or (_CODE_END.search(end) and not end.endswith(").")):
        return Material.CODE
    if stripped.startswith("|") or stripped.count("|") >= 2 or stripped.count("\t") >= 2:
        return Material.DATA
    if _TIMESTAMP.match(line):
        return Material.TEXT
    if _LINK.match(line):  # round 28: a link alone, or after a short label, is pasted
        return Material.TEXT
    fields = max(stripped.count(","), stripped.count(";"))
    if fields >= 3 and len(stripped) / (fields + 1) < 25:
        return Material.DATA
    if stripped[:1] in "{[\"" and ":" in stripped:
        return Material.DATA
    if _KEY_VALUE.match(line) and not _asks(stripped):
        return Material.DATA
    visible = len(stripped) - sum(stripped.count(c) for c in " \t")
    if visible and len(_DIGIT.findall(stripped)) / visible > 0.4:
        return Material.DATA
    return None


def _asks(sentence: str) -> bool:
    """Whether a sentence reads as a request: a question, an imperative, second person, a polite form
    (looked for in its first :data:`CUE_SPAN` characters: a request is said early, and the searches cost)."""
    sentence = sentence[:CUE_SPAN]
    if "?" in sentence or "？" in sentence:
        return True
    words = re.findall(r"[a-z']+", sentence.lower()[:80])
    for word in words[:3]:
        if word in _VERBS:
            return True
        if word not in _OPENERS:
            break
    lower = " " + sentence.lower() + " "
    # set look-ups and substring searches: a regular expression of ~200 alternatives cost ~30 µs a sentence
    return not _CUE_WORDS.isdisjoint(_WORD.findall(lower)) or any(cue in lower for cue in _CUE_PHRASES)


def _sentences(paragraph: str) -> list[str]:
    """Round 10's cut after an early colon included (it changes what is read, not how fast)."""
    out: list[str] = []
    for sentence in _SENTENCE.split(paragraph):
        colon = _COLON.search(sentence)
        if colon and colon.start() <= COLON_SPAN:
            out += [sentence[:colon.start()], sentence[colon.start():]]
        else:
            out.append(sentence)
    return [s.strip() for s in out if s.strip()]


def parts(text: str) -> list[Part]:
    """The message as kept sentences and material spans, in order (consecutive material of one kind merged)."""
    out: list[Part] = []

    def add(part: Part) -> None:
        if part.kind is not None and out and out[-1].kind == part.kind:
            out[-1].text += "\n" + part.text
        else:
            out.append(part)

    # blocks: fenced code, runs of material lines, and prose paragraphs (runs of prose lines)
    lines = text.splitlines()
    fenced = prose = False
    paragraph: list[str] = []
    blocks: list[tuple[str, Material | None]] = []

    def flush() -> None:
        if paragraph:
            blocks.append((" ".join(paragraph), None))
            paragraph.clear()

    for line in lines:
        if _FENCE.match(line):
            flush()
            fenced = not fenced
            prose = fenced and _PROSE_FENCE.match(line) is not None  # round 10: ```md holds text
            continue
        if fenced:
            if prose:
                blocks.append((line, Material.TEXT))
            else:
                blocks.append((line, Material.TRACE if _TRACE.match(line) else Material.CODE))
            continue
        if not line.strip():
            flush()
            continue
        kind = _line_kind(line)
        if kind is not Material.TRACE and not paragraph and blocks and line[:1].isspace() \
                and blocks[-1][1] in (Material.CODE, Material.TRACE):
            kind = blocks[-1][1]  # an indented line goes on with the code or the trace above it
        if kind is None:
            paragraph.append(line.strip())
        else:
            flush()
            blocks.append((line, kind))
    flush()
    for block, kind in blocks:
        if kind is not None:
            add(Part(block, kind))
            continue
        sentences = _sentences(block)
        long = len(block) > LONG_PARAGRAPH
        # round 10: a quoted sentence does not ask; one over LONG_PARAGRAPH characters is never kept
        pairs_up = block.count('"') % 2 == 0
        straight = curly = 0
        asked = False  # round 28: the sentence before was an ask's label ("Query:"), so this one is the ask
        for j, sentence in enumerate(sentences):
            numbered = _NUMBERED.match(sentence)
            quoted = (pairs_up and straight % 2 == 1) or curly > 0 or \
                sentence[numbered.end() if numbered else 0:].startswith(_QUOTES)
            straight += sentence.count('"')
            curly = max(0, curly + sentence.count("“") - sentence.count("”"))
            edge = j == 0 or j == len(sentences) - 1
            if len(sentence) > LONG_PARAGRAPH:
                keep = False
            elif asked:
                keep = True
            elif not (edge or not long):
                keep = False
            elif sentence.endswith((":", "：")):
                keep = True
            else:
                keep = not quoted and _asks(sentence)
            asked = sentence.endswith((":", "：")) and _ASK_LABEL.match(sentence) is not None
            add(Part(sentence) if keep else Part(sentence, Material.TEXT))
    return out


def _scanned(text: str) -> list[Part]:
    """:func:`parts` of a message, of a very long one only of its first and last :data:`SCAN` characters (a
    request sits near an end; reading 500,000 pasted characters line by line took ~0.8 s): the middle
    counts as material of the kinds a sample of it shows."""
    if len(text) <= 2 * SCAN:
        return parts(text)
    middle = len(text) // 2
    sample = parts(text[middle - SAMPLE // 2:middle + SAMPLE // 2])
    kinds = list(dict.fromkeys(p.kind for p in sample if p.kind is not None)) or [Material.TEXT]
    return [*parts(text[:SCAN]), *(Part("", kind) for kind in kinds), *parts(text[-SCAN:])]


def request(text: str) -> str:
    """The message with each run of pasted material replaced by the markers of its kinds, in order."""
    pieces: list[str] = []
    run: list[Material] = []  # the kinds of a run of material between two kept sentences, each named once
    for part in _scanned(text):
        if part.kind is None:
            pieces.extend(kind.marker for kind in run)
            run.clear()
            pieces.append(part.text)
        elif part.kind not in run:
            run.append(part.kind)
    pieces.extend(kind.marker for kind in run)
    return " ".join(pieces)


def focus(text: str) -> str:
    """A long message's request, capped to its first and last 400 characters; a short message whole."""
    return text if len(text) <= 2 * EDGE else clip(request(text))


#: a view of a message (text to classify) and its weight in the vote
ReadView = tuple[str, float]


@lru_cache(maxsize=16)
def views(text: str) -> tuple[ReadView, ...]:
    """What the fast path reads: a message of up to 800 characters whole; a longer one twice — its
    :func:`focus` with weight :data:`REQUEST_WEIGHT`, and its first and last 400 characters (round 6's
    reading) with the rest — so the request counts however deep in the material it sits, and the
    material still shows where it is the question. Cached: a decision with corrections reads a message
    up to three times (its similarity to the corrections, the refit's vote, the base classifier's)."""
    if len(text) <= 2 * EDGE:
        return ((text, 1.0),)
    return ((focus(text), REQUEST_WEIGHT), (clip(text), 1.0 - REQUEST_WEIGHT))


# ---- agents/classifier.py and agents/memory.py, round 8 --------------------------------------------


class ReferenceVectorizer:
    """Round 8's ``_Vectorizer``: every n-gram of the analysis looked up in the vocabulary."""

    def __init__(self, analyze: Callable[[str], Sequence[str]], vocabulary: dict[str, int], idf: NDArray):
        self.analyze, self.vocabulary, self.idf = analyze, vocabulary, idf

    def __call__(self, text: str) -> tuple[NDArray, NDArray]:
        import numpy as np

        counts = Counter(i for g in self.analyze(text) if (i := self.vocabulary.get(g)) is not None)
        index = np.fromiter(counts, dtype=np.intp, count=len(counts))
        weight = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self.idf[index]
        norm = float(np.sqrt(weight @ weight))
        return index, (weight / norm if norm else weight)


_ANALYZERS: dict[View, Callable[[str], Sequence[str]]] = {}


def _analyzer(view: View) -> Callable[[str], Sequence[str]]:
    """Round 8's shared, cached analyzer per view (a cache of this module's own)."""
    if view not in _ANALYZERS:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = (TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b")
                      if view is View.WORDS else TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)))
        analyze = vectorizer.build_analyzer()
        _ANALYZERS[view] = lru_cache(maxsize=32)(lambda text: tuple(analyze(text)))
    return _ANALYZERS[view]


class ReferenceClassifier(Classifier):
    """A trained :class:`Classifier`'s models, read and vectorized as round 8 did."""

    def __init__(self, fitted: Classifier):  # no training: the fitted classifier's models are shared
        if not fitted._single:
            fitted.ready_multilingual()  # round 11: loaded at the first message in another language; here now
        self.__dict__.update(fitted.__dict__)
        if fitted.read is fast_views:
            self.read = views
        if not self._single:
            self._views = {view: ReferenceVectorizer(_analyzer(view), v.vocabulary, v.idf)  # type: ignore[misc]
                           for view, v in fitted._views.items()}
            # round 29: the TF-IDF members that vote on a message in another language have views of their own
            self._foreign_views = {view: ReferenceVectorizer(_analyzer(view), v.vocabulary, v.idf)  # type: ignore[misc]
                                   for view, v in fitted._foreign_views.items()}
            if self.encoder is not None:  # the whole message through the tokenizer (agents/word_ids.py: word by word)
                encoder = self.encoder
                self._encode = lru_cache(maxsize=32)(
                    lambda text: encoder._pool(encoder.tokenizer.encode(text, add_special_tokens=False).ids))

    def _votes(self, features: dict[View, Features]) -> NDArray:
        """Each member's probabilities in turn (agents/votes.py scores the TF-IDF members together since round 23)."""
        import numpy as np

        members = self.foreign_members if View.MULTILINGUAL in features else self.members
        return np.vstack([member.proba(features) for member in members])

    def _features(self, read: str, other: NDArray | None = None) -> dict[View, Features]:
        import numpy as np

        features: dict[View, Features] = {view: vectorize(read) for view, vectorize in self._views.items()}
        if other is not None:  # round 11: a message in another language, read by the multilingual encoder
            features[View.MULTILINGUAL] = (np.arange(other.size), other)
            for view, vectorize in self._foreign_views.items():  # round 29: and by its own TF-IDF members
                features[FOREIGN_VIEW[view]] = vectorize(read)
        elif self.encoder is not None:
            features[View.MEANING] = (np.arange(self.encoder.dim), self._encode(read))
        return features

    def signals(self, text: str) -> tuple[str, list[float]]:
        import numpy as np

        votes: NDArray | float = 0.0
        similarities: NDArray | float = 0.0
        reads = self.read(text)
        main = max(reads, key=lambda view: view[1])[0]
        other = self.multilingual._encode(main) if self.multilingual is not None and foreign_views(reads) else None
        for read, share in reads:
            features = self._features(read, other)
            votes = votes + share * self._votes(features)
            parts, offset = [], 0
            for view, vectorize in self._views.items():
                index, weight = features[view]
                assert index is not None  # a TF-IDF view: sparse
                parts.append((index + offset, weight))
                offset += len(vectorize.vocabulary)
            index = np.concatenate([i for i, _ in parts])
            weight = np.concatenate([w for _, w in parts]) / math.sqrt(len(self._views))
            similarities = similarities + share * np.asarray(self._examples[index].T @ weight).ravel()
        assert isinstance(votes, np.ndarray) and isinstance(similarities, np.ndarray)
        # round 16's nudges, and round 26's composition cue where the multilingual encoder read it, as the fast path
        # round 28: a long message's compose and chore cues with their own size (``long``)
        best = int(self.nudged(votes.mean(axis=0), main, foreign=other is not None, long=len(reads) > 1).argmax())
        words = [g for g in self._views[View.WORDS].analyze(self._main(text)) if " " not in g]
        known = sum(g in self._views[View.WORDS].vocabulary for g in words) / len(words) if words else 0.0
        return self.classes[best], calibration.signals(votes, best, similarities, self._example_class, known)


class ReferenceCorrected(CorrectedClassifier):
    """A :class:`CorrectedClassifier` with both of its classifiers and its similarities done as in round 8."""

    def __init__(self, fitted: CorrectedClassifier):
        self.__dict__.update(fitted.__dict__)
        self.base = ReferenceClassifier(fitted.base)
        self.refit = ReferenceClassifier(fitted.refit)
        self._vector = self.refit.vector

    def nearest(self, text: str, *, leave_out: bool = False) -> str | None:  # round 8's: no references
        if self._known is None or self._learned is None:
            return None
        index, weight = self._vector(text)
        to_learned = _similarities(self._learned, index, weight)
        best = int(to_learned.argmax())
        if to_learned[best] <= MARGIN:
            return None
        to_known = _similarities(self._known, index, weight)
        if to_learned[best] <= (to_known.max() if to_known.size else 0.0) + MARGIN:
            return None
        return self._agents[best]


def _similarities(columns: csr_matrix, index: NDArray, weight: NDArray) -> NDArray:
    import numpy as np

    return np.asarray(columns[index].T @ weight).ravel()


def reference(model: Any) -> ReferenceClassifier | ReferenceCorrected:
    """Round 8's implementation of a trained classifier (plain or with corrections)."""
    if isinstance(model, CorrectedClassifier):
        return ReferenceCorrected(model)
    if isinstance(model, Classifier):
        return ReferenceClassifier(model)
    raise TypeError(f"not a fast-path classifier: {type(model).__name__}")
