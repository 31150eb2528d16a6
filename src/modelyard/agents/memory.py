"""Corrections act where they were made: the fast path with a memory of what the person corrected.

A refit on config examples + corrections also moves decisions far from any correction (measured:
50 corrections of app-style tasks lifted that kind and lowered the others). So a correction acts
only on a message in its territory — a message more similar to that correction than to every
config and role example, by a margin (cosine over the classifier's word and character TF-IDF
views) — and only when the refit on examples + corrections agrees with the correction's agent.
There the refit decides, with its confidence (on the same calibrated scale, so the threshold still
separates decisions to take fast from those to ask the model about); every other message gets the
decision and confidence of the classifier trained without the corrections, unchanged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from modelyard.agents.classifier import Classifier, Decision, column_sums

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

#: how much more similar to a correction than to any example a message must be for the correction to
#: act (chosen on dev: at 0 the refit overturned 1–3 right dev decisions of other kinds, at 0.05 none)
MARGIN = 0.05
#: the Decision.detail of a decision a correction made
NEAR = "near a correction"


class CorrectedClassifier:
    """The base classifier, overridden near corrections by the refit that learned them."""

    def __init__(self, samples: dict[str, list[str]], corrections: list[tuple[str, str]],
                 base: Classifier | None = None):
        """``samples``: agent → training texts (config + role examples); ``corrections``: (text, agent)."""
        self.base = base or Classifier(samples)
        refit_samples = {name: list(texts) for name, texts in samples.items()}
        learned = [(text, agent) for text, agent in corrections if agent in refit_samples]
        for text, agent in learned:
            refit_samples[agent].append(text)
        self.refit = Classifier(refit_samples)
        self.labels = self.base.labels
        self._agents = [agent for _, agent in learned]
        self._vector = self.refit.vector
        known = [t for texts in samples.values() for t in texts]
        # features × texts, row-sliced by a message's features: one small sparse product per decision
        self._known = self.refit.embed(known).T.tocsr() if learned and not self.refit._single else None
        self._learned = self.refit.embed([t for t, _ in learned]).T.tocsr() if self._known is not None else None

    def nearest(self, text: str) -> str | None:
        """The agent of the correction whose territory ``text`` is in, if any."""
        if self._known is None or self._learned is None:
            return None
        index, weight = self._vector(text)
        to_learned = _similarities(self._learned, index, weight)
        best = int(to_learned.argmax())
        if to_learned[best] <= MARGIN:  # unlike every correction: no need to look at the examples
            return None
        to_known = _similarities(self._known, index, weight)
        if to_learned[best] <= (to_known.max() if to_known.size else 0.0) + MARGIN:
            return None
        return self._agents[best]

    def near(self, text: str) -> bool:
        """Whether a correction decides ``text`` (it is in its territory and the refit agrees with it)."""
        agent = self.nearest(text)
        return agent is not None and self.refit.decide(text).agent == agent

    def decide(self, text: str) -> Decision:
        t0 = time.perf_counter()
        agent = self.nearest(text)
        decision = self.refit.decide(text) if agent is not None else None
        if decision is None or decision.agent != agent:
            decision = self.base.decide(text)
        else:
            decision.detail = NEAR
        decision.ms = (time.perf_counter() - t0) * 1000
        return decision

    def scores(self, text: str) -> dict[str, float]:
        return (self.refit if self.near(text) else self.base).scores(text)


def _similarities(columns: csr_matrix, index: NDArray, weight: NDArray) -> NDArray:
    return column_sums(columns, index, weight)
