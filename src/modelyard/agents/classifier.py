"""Fast path of the orchestrator: a text classifier trained on the config, no model call.

Each routing target contributes its ``description`` and its ``examples``; a TF-IDF over word
uni/bi-grams plus character 2–5-grams (robust to typos, code identifiers and inflections) feeds
a multinomial logistic regression, whose top probability is the confidence. Training takes
tens of milliseconds, so the classifier is built when a runtime first routes, never stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from modelyard.agents.roles import EXAMPLES, Role, role_of
from modelyard.config.schema import Config

_EDGE = 400


@dataclass(slots=True)
class Decision:
    """Which agent gets a task, how sure we are, and how the choice was made.

    ``method``: ``fast`` (classifier), ``model`` (orchestrator's model), ``model_repaired`` (model,
    after one repair round-trip), ``fast_fallback`` (below the threshold, but the model gave no usable
    answer, so the classifier's choice stands), ``direct`` (agent named).
    ``confidence`` is always the classifier's top probability, so slow-path decisions can be
    compared with what the fast path would have done.
    """

    agent: str
    confidence: float
    method: str
    ms: float
    task: str = ""
    detail: str = ""

    def describe(self) -> str:
        return f"{self.agent} ({self.method}, {self.confidence:.2f}, {self.ms:.1f}ms)"


def agent_role(config: Config, name: str) -> Role | None:
    """The agent's built-in routing role: ``role:`` in the config, else its name if that is a role."""
    declared = config.agents[name].role
    if declared == "none":
        return None
    return Role(declared) if declared else role_of(name)


def training_samples(config: Config, targets: list[str]) -> dict[str, list[str]]:
    """Description + examples per target agent, plus its role's built-in examples."""
    samples: dict[str, list[str]] = {}
    for name in targets:
        cfg = config.agents[name]
        role = agent_role(config, name)
        texts = [t for t in (cfg.description, *cfg.examples, *(EXAMPLES[role] if role else [])) if t.strip()]
        samples[name] = texts or [name]
    return samples


def clip(text: str, edge: int = _EDGE) -> str:
    """Head and tail of a long message: the request is almost always at one end of a pasted document,
    and the middle (the document itself) is what misleads a bag-of-words model — and costs time."""
    return text if len(text) <= 2 * edge else f"{text[:edge]} … {text[-edge:]}"


class Classifier:
    def __init__(self, samples: dict[str, list[str]]):
        if not samples:
            raise ValueError("the classifier needs at least one agent")
        self.labels = list(samples)
        self._single = self.labels[0] if len(self.labels) == 1 else None
        if self._single:
            return
        texts = [t for name in self.labels for t in samples[name]]
        y = [name for name in self.labels for _ in samples[name]]
        # scikit-learn is imported here, not at module level: it costs ~1 s, and CLI commands that
        # never route should not pay it.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion

        self.features = FeatureUnion([
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                     token_pattern=r"(?u)\b\w+\b")),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ])
        x = self.features.fit_transform(texts)
        # no class balancing: the roles' example counts follow what real traffic looks like
        self.model = LogisticRegression(C=10.0, max_iter=3000)
        self.model.fit(x, y)
        self.classes = [str(c) for c in self.model.classes_]

    @classmethod
    def from_config(cls, config: Config, targets: list[str]) -> Classifier:
        return cls(training_samples(config, targets))

    def scores(self, text: str) -> dict[str, float]:
        """Probability per agent."""
        if self._single:
            return {self._single: 1.0}
        proba = self.model.predict_proba(self.features.transform([clip(text)]))[0]
        return {c: float(p) for c, p in zip(self.classes, proba, strict=True)}

    def decide(self, text: str) -> Decision:
        t0 = time.perf_counter()
        if self._single:
            agent, confidence = self._single, 1.0
        else:
            proba = self.model.predict_proba(self.features.transform([clip(text)]))[0]
            best = int(proba.argmax())
            agent, confidence = self.classes[best], float(proba[best])
        return Decision(agent, confidence, "fast", (time.perf_counter() - t0) * 1000)
