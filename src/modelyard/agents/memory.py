"""Corrections act where they were made: the fast path with a memory of what the person corrected.

A refit on config examples + corrections also moves decisions far from any correction (measured:
50 corrections of app-style tasks lifted that kind and lowered the others). So a correction acts
only on a message in its territory — a message more similar to that correction than to every
config and role example, by a margin (cosine over the classifier's word and character TF-IDF
views) — and only when the refit on examples + corrections agrees with the correction's agent.
There the refit decides, with its confidence (on the same calibrated scale, so the threshold still
separates decisions to take fast from those to ask the model about); every other message gets the
decision and confidence of the classifier trained without the corrections, unchanged.

Nearer than every example is not near enough: AgentBench's Linux tasks all open with "As a student, you
are required to find the total number of …", and that boilerplate made them nearer than any example to
"You are ChessGPT …", "You are an assistant capable of recognising ASCII art digits …" and "I want you to
act as a real estate agent …" (cosine 0.22–0.30), which they then sent to engineer. So a correction must
also be nearer than every **reference**: the labelled prompts of the tuning sets (benchmarks/routing_eval's
dev, sharegpt_dev, arena_dev, arenaforeign_dev, evals_dev, longdev 1–3; shipped in agents/data, mapped to
the config's agents by role) that do not accept the correction's agent. A reference prompt is never in a
correction's territory unless its label allows the correction, so on the tuning sets learning can flip no
right decision; on other prompts, the references stand in for traffic a correction should not reach.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.agents.classifier import Classifier, Decision, Samples, column_sums, english_side, roles_of
from modelyard.agents.evaluation import Labelled, read_labels
from modelyard.agents.roles import Role, agent_role

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

    from modelyard.config.schema import Config

#: how much more similar to a correction than to any example a message must be for the correction to
#: act (chosen on dev: at 0 the refit overturned 1–3 right dev decisions of other kinds, at 0.05 none)
MARGIN = 0.05
#: the Decision.detail of a decision a correction made
NEAR = "near a correction"
#: the tuning sets shipped as agents/data/routing_<name>.jsonl (copies of benchmarks/routing_eval/<name>.jsonl):
#: prompts that may be tuned on, labelled by role — never a held-out set
TUNING_SETS = ("dev", "sharegpt_dev", "arena_dev", "arenaforeign_dev", "evals_dev", "longdev", "longdev2", "longdev3")


@cache
def _tuning_set(name: str) -> tuple[Labelled, ...]:
    path = Path(str(resources.files("modelyard") / "agents" / "data" / f"routing_{name}.jsonl"))
    return tuple(read_labels(path, set(Role)))


def role_prompts(config: Config, targets: list[str], sets: Sequence[str] = TUNING_SETS) -> list[Labelled]:
    """The shipped tuning prompts, their roles mapped to this config's agents that have them (lines whose
    acceptable roles no target has are left out); each line's kind is ``set/collection``."""
    by_role: dict[str, list[str]] = {}
    for name in targets:
        role = agent_role(config, name)
        if role is not None:
            by_role.setdefault(str(role), []).append(name)
    if not by_role:
        return []
    rows = []
    for name in sets:
        for row in _tuning_set(name):
            accept = [agent for role in row.accept for agent in by_role.get(role, [])]
            if accept:
                rows.append(Labelled(row.text, accept, f"{name}/{row.kind}" if row.kind else name))
    return rows


class CorrectedClassifier:
    """The base classifier, overridden near corrections by the refit that learned them."""

    def __init__(self, samples: dict[str, list[str]], corrections: list[tuple[str, str]],
                 base: Classifier | None = None, references: Sequence[Labelled] = ()):
        """``samples``: agent → training texts (config + role examples); ``corrections``: (text, agent);
        ``references``: labelled prompts a correction must also be nearer than, unless they accept its agent
        (:func:`role_prompts`); never trained on."""
        self.base = base or Classifier(samples)
        refit_samples = Samples({name: list(texts) for name, texts in samples.items()})
        refit_samples.roles = roles_of(samples)
        learned = [(text, agent) for text, agent in corrections if agent in refit_samples]
        for text, agent in learned:
            refit_samples[agent].append(text)
        self.refit = Classifier(refit_samples)
        self.labels = self.base.labels
        self._agents = [agent for _, agent in learned]
        self._vector = self.refit.vector
        known = [t for texts in samples.values() for t in english_side(texts)]
        # features × texts, row-sliced by a message's features: one small sparse product per decision
        self._known = self.refit.embed(known).T.tocsr() if learned and not self.refit._single else None
        self._learned = self.refit.embed([t for t, _ in learned]).T.tocsr() if self._known is not None else None
        import numpy as np

        references = [r for r in references if r.text not in {t for t, _ in learned}]
        self._references = (self.refit.embed([r.text for r in references]).T.tocsr()
                            if references and self._known is not None else None)
        #: per correction agent, the references that do not accept it (the ones its territory must avoid)
        self._avoid = {agent: np.array([agent not in r.accept for r in references], dtype=bool)
                       for agent in set(self._agents)}
        self._reference_at: dict[str, list[int]] = {}
        for i, row in enumerate(references):
            self._reference_at.setdefault(row.text, []).append(i)

    def nearest(self, text: str, *, leave_out: bool = False) -> str | None:
        """The agent of the correction whose territory ``text`` is in, if any. ``leave_out``: as if ``text``
        were not a reference (how ``routing learn`` scores the reference prompts themselves)."""
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
        agent = self._agents[best]
        if self._references is not None:
            avoid = self._avoid[agent]
            if leave_out and text in self._reference_at:
                avoid = avoid.copy()
                avoid[self._reference_at[text]] = False
            if avoid.any():
                to_references = _similarities(self._references, index, weight)
                if to_learned[best] <= to_references[avoid].max() + MARGIN:
                    return None
        return agent

    def near(self, text: str) -> bool:
        """Whether a correction decides ``text`` (it is in its territory and the refit agrees with it)."""
        agent = self.nearest(text)
        return agent is not None and self.refit.decide(text).agent == agent

    def decide(self, text: str, *, leave_out: bool = False) -> Decision:
        t0 = time.perf_counter()
        agent = self.nearest(text, leave_out=leave_out)
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
