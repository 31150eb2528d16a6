"""Fast path of the orchestrator: a text classifier trained on the config, no model call.

Each routing target contributes its ``description`` and its ``examples`` (plus its role's built-in
examples). Five small models vote: logistic regressions over word uni/bi-grams, over character
2–5-grams (robust to typos, code identifiers, inflections and scripts without spaces) and over
both, a multinomial naive Bayes over the character n-grams, and a logistic regression over a static
sentence encoder's vector (agents/encoder.py: related words without shared ones; left out, with the
reason logged, when its package is missing). The agent is the one with the highest mean probability.
The **confidence** is an estimate of how often such a decision is right
(agents/confidence.py): from the members' agreement and from how familiar the prompt is — its
similarity to the nearest training examples, whether those belong to the chosen agent, the share of
its words the examples know — so that a prompt unlike everything the examples cover is left to the
slow path instead of being decided confidently. Training takes a second or two (and scikit-learn, ~77 MiB): its
result is kept on disk (agents/fitted.py), so a process that routes a config it routed before reads the weights
instead, without importing scikit-learn; the classifier is built when a runtime first routes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from itertools import chain, repeat
from typing import TYPE_CHECKING

from modelyard.agents import analyzers, cues
from modelyard.agents import confidence as calibration
from modelyard.agents import encoder as encoding
from modelyard.agents import fitted as stored
from modelyard.agents.request import views
from modelyard.agents.roles import EXAMPLES, ROUND14_FOREIGN_EXAMPLES, ForeignOnly, Role, agent_role, role_of
from modelyard.agents.votes import Features, Member, Stacked, vote
from modelyard.config.schema import Config

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

log = logging.getLogger(__name__)

class RouteMethod(StrEnum):
    """How a :class:`Decision` was made. The values are what the routing log's ``method`` column, ``route --json``
    and a turn's route line hold, so they stay as they are: rows written before the enum read back the same."""

    #: the classifier, at or above the threshold
    FAST = "fast"
    #: the orchestrator's model, first answer
    MODEL = "model"
    #: the orchestrator's model, after one repair round-trip
    MODEL_REPAIRED = "model_repaired"
    #: below the threshold, but the model gave no usable answer, so the classifier's choice stands
    FAST_FALLBACK = "fast_fallback"
    #: the agent was named; only in rows older logs hold (no code makes such a decision now), still read back
    DIRECT = "direct"


@dataclass(slots=True)
class Decision:
    """Which agent gets a task, how sure we are, and how the choice was made (``method``, :class:`RouteMethod`).

    ``confidence`` is always the classifier's estimate that its own choice is right
    (agents/confidence.py), so slow-path decisions can be compared with what the fast path would have done.
    """

    agent: str
    confidence: float
    method: RouteMethod
    ms: float
    task: str = ""
    detail: str = ""

    def describe(self) -> str:
        return f"{self.agent} ({self.method}, {self.confidence:.2f}, {self.ms:.1f}ms)"


class Samples(dict[str, list[str]]):
    """Agent → training texts, knowing each agent's role (for agents/cues.py's nudges; a plain dict's agents have
    the role their name implies, ``roles.role_of``)."""

    roles: dict[str, Role | None]


def roles_of(samples: dict[str, list[str]]) -> dict[str, Role | None]:
    """Each agent's role: as :class:`Samples` knows it, else as its name implies."""
    known = getattr(samples, "roles", {})
    return {name: known[name] if name in known else role_of(name) for name in samples}


def training_samples(config: Config, targets: list[str]) -> Samples:
    """Description + examples per target agent, plus its role's built-in examples — and its role's examples in
    other languages (``roles.ROUND14_FOREIGN_EXAMPLES``), which only the members that vote on a message in another
    language learn from (:func:`english_side`)."""
    samples = Samples()
    samples.roles = {}
    for name in targets:
        cfg = config.agents[name]
        role = agent_role(config, name)
        samples.roles[name] = role
        texts = [t for t in (cfg.description, *cfg.examples, *(EXAMPLES[role] if role else [])) if t.strip()]
        samples[name] = [*(texts or [name]), *(ROUND14_FOREIGN_EXAMPLES[role] if role else [])]
    return samples


def english_side(texts: list[str]) -> list[str]:
    """``texts`` without the examples only the members that vote on another language learn from
    (``roles.ForeignOnly``: the multilingual member and, since round 29, the foreign TF-IDF members): what the
    English TF-IDF and sentence-encoder members, the confidence's similarities and the corrections' neighbours see
    — so that those examples change no decision on a message in English."""
    return [t for t in texts if not isinstance(t, ForeignOnly)]


class View(StrEnum):
    """What a member model of the ensemble reads."""

    WORDS = "words"
    CHARS = "chars"
    #: the sentence encoder's vector (agents/encoder.py): meaning beyond shared words
    MEANING = "meaning"
    #: the multilingual encoder's vector (agents/encoder.py), of a message in another language only: there its
    #: member takes the place of :attr:`MEANING`'s in the vote
    MULTILINGUAL = "multilingual"
    #: the word and character views of the TF-IDF members that vote on a message in another language (round 29):
    #: the same analyzers, their own vocabularies (:data:`FOREIGN_VIEW`)
    FOREIGN_WORDS = "foreign words"
    FOREIGN_CHARS = "foreign chars"


@dataclass(slots=True)
class _Vectorizer:
    """A fitted TF-IDF (sublinear tf, l2 norm) applied to one text without scikit-learn's per-call
    overhead (~1.5 ms of validation and sparse-matrix building for a 0.1 ms analysis): the features
    a text has, as column indices (in the order the analyzer first meets them) and weights.

    ``words``, when given, splits a text into the units the analyzer cuts n-grams from independently
    (the whitespace-separated words of ``char_wb``): each unit's vocabulary hits are remembered, so a
    long message costs a dictionary look-up per word instead of one per character n-gram — the same
    n-grams in the same order, so the same features bit for bit. The last texts' features are
    remembered too (read-only arrays): a decision with corrections vectorizes one view up to twice.

    ``within`` (round 29b): a vectorizer of the same analyzer whose vocabulary holds all of this one's, and the
    column here of each of its columns (-1: not here) — the foreign members' view, fitted on every example, of an
    English view. A text it has just counted is not analysed again: its counts, kept to this vocabulary's terms
    (in the order first met, as they would be counted here), are this view's — the same features bit for bit, for
    a fraction of the second analysis (CPU p50 −0.33 ms short, −1.23 ms long on arenaforeign_dev messages never
    seen before: benchmarks/routing_eval/ROUNDS.md, round 29b)."""

    analyze: Callable[[str], Sequence[str]]
    vocabulary: dict[str, int]
    idf: NDArray
    words: Callable[[str], Sequence[str]] | None = None
    ngrams: Callable[[str], Sequence[str]] | None = None
    within: tuple[_Vectorizer, NDArray] | None = None
    _hits: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _last: Callable[[str], tuple[NDArray, NDArray]] | None = None
    #: the last text counted, with its columns and counts (what ``within`` reads)
    _counted: tuple[str, NDArray, NDArray] | None = None

    def __call__(self, text: str) -> tuple[NDArray, NDArray]:
        if self._last is None:
            self._last = lru_cache(maxsize=8)(self._vectorize)
        return self._last(text)

    def _counts(self, text: str) -> Counter[int]:
        get = self.vocabulary.get
        if self.words is None or self.ngrams is None:
            found: Counter[int | None] = Counter(map(get, self.analyze(text)))
            found.pop(None, None)  # dropping a key keeps the others' order (first met first)
            return found  # type: ignore[return-value]
        hits, ngrams = self._hits, self.ngrams
        if len(hits) > MEMO_WORDS:
            hits.clear()
        runs = []
        for word in self.words(text):
            run = hits.get(word)
            if run is None:
                run = hits[word] = tuple(i for g in ngrams(word) if (i := get(g)) is not None)
            runs.append(run)
        return Counter(chain.from_iterable(runs))

    def _vectorize(self, text: str) -> tuple[NDArray, NDArray]:
        import numpy as np

        within = self.within
        wider = within[0]._counted if within is not None else None
        if within is not None and wider is not None and wider[0] == text:
            mapped = within[1][wider[1]]
            kept = mapped >= 0
            index, n = mapped[kept], wider[2][kept]
        else:
            counts = self._counts(text)
            index = np.fromiter(counts, dtype=np.intp, count=len(counts))
            n = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            self._counted = (text, index, n)
        weight = (1.0 + np.log(n)) * self.idf[index]
        norm = float(np.sqrt(weight @ weight))
        weight = weight / norm if norm else weight
        index.setflags(write=False)
        weight.setflags(write=False)
        return index, weight


_ANALYZERS: dict[View, Callable[[str], Sequence[str]]] = {}
#: each view's analyzer (agents/analyzers.py: scikit-learn's, without importing it)
_ANALYZE: dict[View, Callable[[str], list[str]]] = {View.WORDS: analyzers.word_ngrams,
                                                    View.CHARS: analyzers.char_analyze}


def _shared_analyzer(view: View) -> Callable[[str], Sequence[str]]:
    """``view``'s analyzer, one per view for the process and remembering its last texts.

    An analyzer depends on its settings only (the same for every classifier), not on what it was
    fitted to, and a decision with corrections analyses one message in each view up to three times
    (the base classifier, the refit, the similarity to the corrections): its character n-grams — a
    third of a long message's decision — are cut once."""
    if view not in _ANALYZERS:
        analyze = _ANALYZE[view]
        _ANALYZERS[view] = lru_cache(maxsize=32)(lambda text: tuple(analyze(text)))
    return _ANALYZERS[view]


#: how many distinct words a character view remembers the vocabulary hits of before starting afresh (~5 MB)
MEMO_WORDS = 20_000
_WORDS: list[Callable[[str], Sequence[str]]] = []


def _shared_words() -> Callable[[str], Sequence[str]]:
    """The words ``char_wb`` analysis cuts n-grams from, for the process and remembering its last texts
    (``char_wb_ngrams`` of each word is then that of the text, word by word)."""
    if not _WORDS:
        _WORDS.append(lru_cache(maxsize=32)(analyzers.char_words))
    return _WORDS[0]


def column_sums(rows: csr_matrix, index: NDArray, weight: NDArray) -> NDArray:
    """``rows[index].T @ weight`` — each column's sum of the selected rows, weighted — by the two kernels
    scipy itself runs for it (row slicing, then a CSC product), without building the sparse matrices in
    between (a long message's view: ~0.2 → ~0.07 ms): the same arithmetic in the same order, so the same
    result bit for bit. scipy's ordinary path when its private kernels are not there."""
    import numpy as np

    try:  # scipy's compiled sparse kernels: private, so their absence only costs speed
        from scipy.sparse import _sparsetools
        row_index, matvec = _sparsetools.csr_row_index, _sparsetools.csc_matvec
    except (ImportError, AttributeError):  # pragma: no cover - a scipy without them
        return np.asarray(rows[index].T @ weight).ravel()
    indptr = rows.indptr
    index = index.astype(indptr.dtype, copy=False)
    starts = np.zeros(len(index) + 1, dtype=indptr.dtype)
    np.cumsum(indptr[index + 1] - indptr[index], out=starts[1:])
    size = int(starts[-1])
    columns, values = np.empty(size, dtype=rows.indices.dtype), np.empty(size, dtype=rows.data.dtype)
    row_index(len(index), index, indptr, rows.indices, rows.data, columns, values)
    out = np.zeros(rows.shape[1], dtype=np.result_type(rows.data.dtype, weight.dtype))
    matvec(rows.shape[1], len(index), starts, columns, values, weight.astype(out.dtype, copy=False), out)
    return out


#: how many votes the multilingual member casts on a message in another language, against one for each TF-IDF
#: member — whose word and character n-grams know little of other languages (round 14, chosen on the tuning
#: sets' 166 foreign messages: 1 vote 131, 2 votes 136, 3 votes 135, 5 votes 132 right; benchmarks/README.md)
MULTILINGUAL_VOTES = 2

#: ``encoder=`` default: the process's shared sentence encoder, if it can be loaded
SHARED = "shared"

#: what the foreign TF-IDF members' features are named in a message's features (round 29): the English members'
#: features keep their views' names (the similarity to the examples reads those)
FOREIGN_VIEW: dict[View, View] = {View.WORDS: View.FOREIGN_WORDS, View.CHARS: View.FOREIGN_CHARS}


def _tfidf(arrays: dict[str, NDArray], vocabularies: dict[View, dict[str, int]],
           names: Mapping[View, View] | None = None) -> tuple[dict[View, _Vectorizer], list[Member]]:
    """The fitted TF-IDF views and the four members over them; ``names``: what each view's features are called in
    the members' weights (the views themselves by default)."""
    out = {view: _Vectorizer(_shared_analyzer(view), vocabulary, arrays[f"{view}_idf"])
           for view, vocabulary in vocabularies.items()}
    by_word = out[View.CHARS]
    by_word.words, by_word.ngrams = _shared_words(), analyzers.char_wb_ngrams
    n_words = len(out[View.WORDS].vocabulary)
    both = arrays["both_coef"]
    words, chars = (names[View.WORDS], names[View.CHARS]) if names else (View.WORDS, View.CHARS)
    return out, [
        Member({words: arrays["words_coef"]}, arrays["words_bias"]),
        Member({chars: arrays["chars_coef"]}, arrays["chars_bias"]),
        Member({words: both[:, :n_words], chars: both[:, n_words:]}, arrays["both_bias"]),
        Member({chars: arrays["bayes_coef"]}, arrays["bayes_bias"]),
    ]


def _narrow(views: dict[View, _Vectorizer], wider: dict[View, _Vectorizer]) -> None:
    """Let each of ``views`` read a text's counts from ``wider``'s view of it (``_Vectorizer.within``) when that
    vocabulary holds all of its terms (the foreign members' views hold every English example's terms)."""
    import numpy as np

    for view, vectorize in views.items():
        if (other := wider.get(view)) is None:
            continue
        size = len(other.vocabulary)
        here = np.full(size, -1, dtype=np.intp)
        here[np.fromiter(other.vocabulary.values(), dtype=np.intp, count=size)] = np.fromiter(
            map(vectorize.vocabulary.get, other.vocabulary, repeat(-1, size)), dtype=np.intp, count=size)
        if int(np.count_nonzero(here >= 0)) == len(vectorize.vocabulary):
            vectorize.within = (other, here)


class Classifier:
    def __init__(self, samples: dict[str, list[str]], *, calibrated: bool = True,
                 encoder: encoding.Encoder | str | None = SHARED,
                 multilingual: encoding.Multilingual | str | None = SHARED,
                 read: Callable[[str], Sequence[tuple[str, float]]] = views):
        """``calibrated=False``: no confidence model (only :meth:`signals` — what fitting one needs); its weights
        are not kept on disk (``confidence.fit``'s folds: ten sets of ~8 MB that no routing process reads).
        ``encoder``: the sentence encoder of the fifth member; None leaves it out (four TF-IDF members).
        ``multilingual``: the encoder whose member votes instead of the fifth on a text in another language
        (``encoding.foreign``); None, or no ``encoder``, leaves it out (the fifth member reads those too). The
        shared one (~108 MiB resident, ~1 s of CPU) is loaded, and its member trained, by the first message in
        another language, which waits for it (never decided without it): a process that routes only English
        never holds it. Once the process holds it, a classifier built later trains its member in a background
        thread (a retrain with new labels). One given is trained at once.
        ``read``: what of a message is classified, as weighted views (agents/request.py: a long message's
        request, its pasted material as markers, and its head and tail; ``head_and_tail`` is round 6's)."""
        if not samples:
            raise ValueError("the classifier needs at least one agent")
        self.read = read
        self.labels = list(samples)
        self.roles = roles_of(samples)
        self._single = self.labels[0] if len(self.labels) == 1 else None
        self.encoder: encoding.Encoder | None = None
        self.multilingual: encoding.Multilingual | None = None
        #: the shared multilingual encoder is not loaded or its member not trained yet (the first foreign message does)
        self._multilingual_pending = False
        self._multilingual_lock = threading.Lock()
        if self._single:
            return
        for given in (encoder, multilingual):
            if isinstance(given, str) and given != SHARED:
                raise ValueError(f"encoder: expected an encoder, None or {SHARED!r}")
        self.encoder = encoding.shared() if encoder == SHARED else encoder  # type: ignore[assignment]
        if self.encoder is not None:
            if multilingual == SHARED:
                self._multilingual_pending = True
            else:
                self.multilingual = multilingual  # type: ignore[assignment]
        # the multilingual member learns from every text; the others not from the foreign-only examples
        self._training = ([t for name in self.labels for t in samples[name]],
                          [name for name in self.labels for _ in samples[name]])
        texts = [t for name in self.labels for t in english_side(samples[name])]
        y = [name for name in self.labels for _ in english_side(samples[name])]
        import numpy as np

        # kept on disk only with the process's own encoder (or none): another one's vectors are not in the key
        name = (stored.key("members", self.labels, texts, y,
                           [self._main(t) for t in texts] if self.encoder is not None else None)
                if calibrated and (self.encoder is None or encoding.is_shared(self.encoder)) else None)
        arrays = stored.load(name) if name else None
        if arrays is not None:
            vocabularies = {view: stored.vocabulary(arrays[f"{view}_terms"]) for view in (View.WORDS, View.CHARS)}
        else:
            arrays, vocabularies = self._fit(texts, y)
            if name and all(f"{view}_terms" in arrays for view in vocabularies):  # else not kept exactly
                stored.save(name, arrays)
        self._views, self.members = _tfidf(arrays, vocabularies)
        #: round 29: the TF-IDF views and members fitted with the examples in other languages too, which vote in the
        #: English ones' place on a message the multilingual encoder reads (set when its member is trained)
        self._foreign_views: dict[View, _Vectorizer] = {}
        self._foreign_stacked: Stacked | None = None
        #: the TF-IDF members, scored together (agents/votes.py); the first members of both lists below
        self._stacked = Stacked(self.members)
        if "meaning_coef" in arrays:  # the same weight in the vote as each TF-IDF member (chosen on dev + sharegpt_dev)
            self.members.append(Member({View.MEANING: arrays["meaning_coef"]}, arrays["meaning_bias"]))
        #: the members that vote on a text in another language (those of English the same list)
        self.foreign_members = self.members
        if self.multilingual is not None:
            self._train_multilingual(self.multilingual)
        elif self._multilingual_pending and encoding.multilingual_loaded():
            # its memory already paid: train now, off this thread; a message that comes first waits for it
            threading.Thread(target=self.ready_multilingual, name="multilingual-encoder", daemon=True).start()
        self.classes = [str(c) for c in arrays["classes"].tolist()]
        self.calibrated = calibrated
        # features × training texts: a message's similarity to every example is one small sparse product
        self._examples = self.embed(texts).T.tocsr()
        index = {c: i for i, c in enumerate(self.classes)}
        self._example_class = np.array([index[name] for name in y], dtype=np.intp)
        #: the class of each role agents/cues.py may nudge towards (the first agent with it)
        self._role_class: dict[Role, int] = {}
        for c, name in enumerate(self.classes):
            if (role := self.roles.get(name)) is not None:
                self._role_class.setdefault(role, c)

    def _fit(self, texts: list[str], y: list[str], *, with_meaning: bool = True
             ) -> tuple[dict[str, NDArray], dict[View, dict[str, int]]]:
        """Fit the members (scikit-learn): their weights as named arrays (with each view's terms, when an array
        keeps them exactly), and each view's vocabulary. ``with_meaning=False``: the TF-IDF members only."""
        # scikit-learn is imported here, not at module level: it costs ~0.7 s and ~77 MiB, and processes that
        # never route, or route with stored weights, should not pay it.
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import MultinomialNB
        from threadpoolctl import threadpool_limits

        vectorizers = {
            View.WORDS: TfidfVectorizer(analyzer="word", ngram_range=analyzers.WORD_NGRAMS, sublinear_tf=True,
                                        token_pattern=analyzers.TOKEN.pattern),
            View.CHARS: TfidfVectorizer(analyzer="char_wb", ngram_range=analyzers.CHAR_NGRAMS, sublinear_tf=True),
        }
        x = {view: vec.fit_transform(texts) for view, vec in vectorizers.items()}
        # One BLAS thread: on a shared 2-core machine, threads fighting other processes made the same fit
        # 15× slower. SAGA to a 1e-3 tolerance trains in a fraction of L-BFGS's time with the same held-out
        # accuracy (seeded, so a config always gets the same model). No class balancing: the roles'
        # example counts follow what real traffic looks like.
        def regression() -> LogisticRegression:
            return LogisticRegression(C=10.0, solver="saga", tol=1e-3, max_iter=3000, random_state=0)

        with threadpool_limits(1):
            words = regression().fit(x[View.WORDS], y)
            chars = regression().fit(x[View.CHARS], y)
            both = regression().fit(hstack([x[View.WORDS], x[View.CHARS]]).tocsr(), y)
            bayes = MultinomialNB(alpha=0.05).fit(x[View.CHARS], y)
            meaning = (regression().fit(self.encoder.many([self._main(t) for t in texts]), y)
                       if self.encoder is not None and with_meaning else None)
        arrays: dict[str, NDArray] = {"classes": words.classes_.astype(str)}
        for view, vec in vectorizers.items():
            if (found := stored.terms(vec.vocabulary_)) is not None:
                arrays[f"{view}_terms"] = found
            arrays[f"{view}_idf"] = vec.idf_
        for part, model in (("words", words), ("chars", chars), ("both", both)):
            arrays[f"{part}_coef"], arrays[f"{part}_bias"] = model.coef_, model.intercept_
        arrays["bayes_coef"], arrays["bayes_bias"] = bayes.feature_log_prob_, bayes.class_log_prior_
        if meaning is not None:
            arrays["meaning_coef"], arrays["meaning_bias"] = meaning.coef_, meaning.intercept_
        return arrays, {view: vec.vocabulary_ for view, vec in vectorizers.items()}

    def _train_multilingual(self, multilingual: encoding.Multilingual) -> None:
        """Train the multilingual member (one BLAS thread, as the others) and let it vote on other languages; its
        weights are kept on disk as the other members' are."""
        texts, y = self._training
        mains = [self._main(t) for t in texts]
        name = stored.key("multilingual", self.labels, texts, y, mains) if encoding.is_shared(multilingual) else None
        arrays = stored.load(name) if name else None
        if arrays is None:
            from sklearn.linear_model import LogisticRegression
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                other = LogisticRegression(C=10.0, solver="saga", tol=1e-3, max_iter=3000, random_state=0).fit(
                    multilingual.many(mains), y)
            arrays = {"coef": other.coef_, "bias": other.intercept_}
            if name:
                stored.save(name, arrays)
        member = Member({View.MULTILINGUAL: arrays["coef"]}, arrays["bias"])
        stacked = self._stacked
        if any(isinstance(t, ForeignOnly) for t in texts):
            # round 29: TF-IDF members that learned the examples in other languages too (the English ones never see
            # them, so that English decisions do not move): on the tuning files' messages in another language, 167 →
            # 171 of 186 right (benchmarks/routing_eval/ROUNDS.md). Fitted at the first such message, kept on disk
            name = stored.key("foreign-members", self.labels, texts, y) if encoding.is_shared(multilingual) else None
            found = stored.load(name) if name else None
            if found is not None:
                vocabularies = {view: stored.vocabulary(found[f"{view}_terms"]) for view in (View.WORDS, View.CHARS)}
            else:
                found, vocabularies = self._fit(list(texts), list(y), with_meaning=False)
                if name and all(f"{view}_terms" in found for view in vocabularies):
                    stored.save(name, found)
            self._foreign_views, members = _tfidf(found, vocabularies, FOREIGN_VIEW)
            stacked = Stacked(members)
            _narrow(self._views, self._foreign_views)
        self._foreign_stacked = stacked
        # the TF-IDF members (the stacked ones, always first), then the multilingual member's votes in the place of the
        # meaning member's (there is one: a multilingual encoder is only taken with a sentence encoder). Named, not
        # "all but the last member", so the list does not rest on the meaning member being last (round 26)
        self.foreign_members = [*stacked.members, *[member] * MULTILINGUAL_VOTES]
        self.multilingual = multilingual

    def ready_multilingual(self) -> encoding.Multilingual | None:
        """The multilingual encoder, its member trained — loading the shared one first if still pending."""
        if self._multilingual_pending:
            with self._multilingual_lock:
                if self._multilingual_pending:
                    try:
                        found = encoding.shared_multilingual()
                        if found is not None:
                            self._train_multilingual(found)
                    except Exception:  # routing goes on without it, as without the package
                        log.exception("routing messages in other languages without the multilingual encoder")
                    finally:
                        self._multilingual_pending = False
        return self.multilingual

    def _main(self, text: str) -> str:
        """The view of ``text`` that weighs most (the whole of a short message)."""
        return max(self.read(text), key=lambda view: view[1])[0]

    def other_language(self, reads: Sequence[tuple[str, float]]) -> NDArray | None:
        """The multilingual encoder's vector of a message in another language — of its main view, for all its
        views (one encoding, ~4 ms of CPU, per message) — or None (English, or no multilingual encoder)."""
        if self.multilingual is None and not self._multilingual_pending:
            return None
        if not encoding.foreign_views(reads):
            return None
        main = max(reads, key=lambda view: view[1])[0]
        multilingual = self.ready_multilingual()
        return multilingual(main) if multilingual is not None else None

    def _features(self, read: str, other: NDArray | None = None) -> dict[View, Features]:
        """The features of one view of a message (a dense vector's indices None); ``other``:
        :meth:`other_language` of the message."""
        # a message in another language: its foreign views first, which the English ones then read their counts
        # from (``_Vectorizer.within``) instead of analysing it again
        foreign = {FOREIGN_VIEW[view]: vectorize(read) for view, vectorize in self._foreign_views.items()
                   } if other is not None else {}
        features: dict[View, Features] = {view: vectorize(read) for view, vectorize in self._views.items()}
        if other is not None:
            features[View.MULTILINGUAL] = (None, other)
            features.update(foreign)
        elif self.encoder is not None:
            features[View.MEANING] = (None, self.encoder(read))
        return features

    def _votes(self, features: dict[View, Features]) -> NDArray:
        """Each member's probabilities on one view: the foreign members on a view the multilingual encoder read."""
        stacked, members = ((self._foreign_stacked or self._stacked, self.foreign_members)
                             if View.MULTILINGUAL in features else (self._stacked, self.members))
        # both lists open with the stacked TF-IDF members (scored together by ``vote``); the rest — the meaning
        # member, or the multilingual member's votes — are each scored on their own
        return vote(stacked, members[len(stacked.members):], features)

    def votes(self, text: str) -> NDArray:
        """Each member's probability per class (members × classes): the weighted mean over the views of ``text``."""
        import numpy as np

        reads = self.read(text)
        other = self.other_language(reads)
        return np.sum([weight * self._votes(self._features(view, other)) for view, weight in reads], axis=0)

    def signals(self, text: str) -> tuple[str, list[float]]:
        """The chosen agent and what its confidence is estimated from (agents/confidence.py)."""
        import numpy as np

        # votes and similarity to the examples: the weighted mean over the message's views
        votes: NDArray | float = 0.0
        vectors: list[tuple[NDArray, NDArray, float]] = []
        reads = self.read(text)
        other = self.other_language(reads)
        for read, share in reads:
            features = self._features(read, other)
            votes = votes + share * self._votes(features)
            parts, offset = [], 0
            for view, vectorize in self._views.items():
                index, weight = features[view]
                assert index is not None  # a TF-IDF view: sparse
                parts.append((index + offset, weight))
                offset += len(vectorize.vocabulary)
            vectors.append((np.concatenate([i for i, _ in parts]),
                            np.concatenate([w for _, w in parts]) / math.sqrt(len(self._views)), share))
        assert isinstance(votes, np.ndarray)
        similarities = self._similarities(vectors)
        main = self._main(text)
        best = int(self.nudged(votes.mean(axis=0), main, foreign=other is not None, long=len(reads) > 1).argmax())
        words = analyzers.unigrams(self._views[View.WORDS].analyze(main))
        known = sum(map(self._views[View.WORDS].vocabulary.__contains__, words)) / len(words) if words else 0.0
        return self.classes[best], calibration.signals(votes, best, similarities, self._example_class, known)

    def _similarities(self, vectors: list[tuple[NDArray, NDArray, float]]) -> NDArray:
        """The weighted mean of each view's similarity to every example (``vectors``: a view's features, weights and
        share). A long message's two views share most of their n-grams (its first and last 400 characters, and its
        request): their weighted vectors are added first, so each shared feature's examples are summed once — the
        same sum, in another order (float noise; round 23)."""
        import numpy as np

        if len(vectors) == 1:
            index, weight, share = vectors[0]
            return share * column_sums(self._examples, index, weight)
        index = np.concatenate([i for i, _, _ in vectors])
        weight = np.concatenate([share * w for _, w, share in vectors])
        unique, at = np.unique(index, return_inverse=True)
        return column_sums(self._examples, unique, np.bincount(at, weights=weight, minlength=len(unique)))

    def nudged(self, mean: NDArray, main: str, *, foreign: bool = False, long: bool = False) -> NDArray:
        """The members' mean vote with agents/cues.py's nudges for ``main`` (the message's main view) added to the
        agents of the roles they name (round 16: a composition leans to writer, a change to given text to utility).
        The confidence is still estimated from the votes themselves: a nudged choice has a small or negative margin.
        ``foreign``: the multilingual encoder read ``main`` (a message in another language), where round 26's
        composition cue is searched too (``cues.FOREIGN_FORM``). ``long``: ``main`` is a long message's request, where
        a composition leans harder (round 28, ``cues.LONG_COMPOSE``)."""
        mean = mean.copy()
        for role, extra in cues.nudges(main, foreign=foreign, long=long).items():
            if role in self._role_class:
                mean[self._role_class[role]] += extra
        return mean

    def vector(self, text: str) -> tuple[NDArray, NDArray]:
        """The unit vector of ``text`` as (feature indices, weights): the word and character TF-IDF views
        side by side, each weighted 1/√2, so a dot product is the mean of the two views' cosines."""
        import numpy as np

        read, offset = self._main(text), 0
        indices, weights = [], []
        for vectorize in self._views.values():
            index, weight = vectorize(read)
            indices.append(index + offset)
            weights.append(weight)
            offset += len(vectorize.vocabulary)
        return np.concatenate(indices), np.concatenate(weights) / math.sqrt(len(self._views))

    def embed(self, texts: list[str]) -> csr_matrix:
        """:meth:`vector` of each text, as the rows of a sparse matrix."""
        import numpy as np
        from scipy.sparse import csr_matrix

        vectors = [self.vector(text) for text in texts]
        starts = np.cumsum([0, *(len(index) for index, _ in vectors)])
        width = sum(len(v.vocabulary) for v in self._views.values())
        if not vectors:
            return csr_matrix((0, width))
        return csr_matrix((np.concatenate([w for _, w in vectors]), np.concatenate([i for i, _ in vectors]), starts),
                          shape=(len(texts), width))

    @classmethod
    def from_config(cls, config: Config, targets: list[str]) -> Classifier:
        return cls(training_samples(config, targets))

    def scores(self, text: str) -> dict[str, float]:
        """Probability per agent (the members' mean)."""
        if self._single:
            return {self._single: 1.0}
        proba = self.votes(text).mean(axis=0)
        return {c: float(p) for c, p in zip(self.classes, proba, strict=True)}

    def decide(self, text: str) -> Decision:
        t0 = time.perf_counter()
        if self._single:
            agent, confidence = self._single, 1.0
        else:
            agent, values = self.signals(text)
            confidence = (calibration.probability(values, *calibration.coefficients(self.encoder is not None))
                          if self.calibrated else values[0])
        return Decision(agent, confidence, RouteMethod.FAST, (time.perf_counter() - t0) * 1000)
