"""Learning from use: corrections become labels, and a refit is kept only if it does not score worse.

``record_correction`` is the one hook front-ends call when a person says which agent should have
answered (``/agent X`` after an orchestrated turn, a rating). ``learn`` refits the fast path on
the config's examples plus the new labels and compares it with the fit in use, on data neither
was trained on: each label is scored by a model trained without it (k-fold), and an optional
labelled file (``eval-routing`` format) is scored by both. The new labels are trusted only if
neither score drops; otherwise the previous model stays, and the run says why.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from modelyard.agents.classifier import Classifier, training_samples
from modelyard.agents.evaluation import Labelled
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config.schema import Config
from modelyard.ledger.db import connect
from modelyard.ledger.labels import (
    Label,
    LabelSource,
    add_label,
    decision_of,
    labels,
    record_fit,
    trusted_upto,
)
from modelyard.runtime import Runtime, log_path_for

FOLDS = 5
log = logging.getLogger(__name__)


@dataclass(slots=True)
class LearnResult:
    accepted: bool
    n_new: int
    n_labels: int
    #: accuracy on the labels themselves, each scored by a model that never saw it: in use vs refit
    labels_before: float | None
    labels_after: float | None
    #: accuracy on the held-out labelled file, in use vs refit (None without a file)
    eval_before: float | None
    eval_after: float | None
    reason: str


def record_correction(conn: sqlite3.Connection, request_id: str, agent: str, source: LabelSource,
                      targets: list[str]) -> bool:
    """Label the text behind an orchestrated request with ``agent``; False if there is nothing to learn
    (the request was not routed by the orchestrator, its text was not stored, or ``agent`` is no target)."""
    decision = decision_of(conn, request_id)
    if decision is None or agent not in targets:
        return False
    text, chosen, method = decision
    if not text or method == "direct":
        return False
    add_label(conn, text, agent, source, request_id=request_id, previous=chosen)
    return True


def correct_routing(runtime: Runtime, request_id: str, agent: str, source: LabelSource) -> bool:
    """The front-end hook: the person moved the conversation to ``agent`` right after (or after a 👎 on)
    an answer the orchestrator routed; remember that its text belongs to ``agent``."""
    name = orchestrator_name(runtime.config)
    if name is None:
        return False
    runtime.log.flush()  # the decision and request rows are written off-thread
    try:
        conn = connect(runtime.log_path)
        try:
            return record_correction(conn, request_id, agent, source, routing_targets(runtime.config, name))
        finally:
            conn.close()
    except sqlite3.Error as exc:  # a lost label must never break the conversation
        log.warning("routing: could not record a correction (%s)", exc)
        return False


def samples_with(config: Config, targets: list[str], extra: list[Label]) -> dict[str, list[str]]:
    samples = training_samples(config, targets)
    for label in extra:
        if label.agent in samples:
            samples[label.agent] = [*samples[label.agent], label.text]
    return samples


def trusted_labels(conn: sqlite3.Connection) -> list[Label]:
    """The labels the fast path trains on: those accepted by the last successful ``learn``."""
    upto = trusted_upto(conn)
    return labels(conn, upto) if upto else []


def learned_labels(config: Config) -> list[Label]:
    """Trusted labels from the config's routing log; none if there is no log yet or it cannot be read."""
    path = log_path_for(config)
    if not path.exists():
        return []
    try:
        conn = connect(path)
        try:
            return trusted_labels(conn)
        finally:
            conn.close()
    except (sqlite3.Error, RuntimeError, OSError) as exc:  # routing must work without its memory
        log.warning("routing: learned labels unavailable (%s)", exc)
        return []


def _accuracy(classifier: Classifier, rows: list[tuple[str, list[str]]]) -> float | None:
    if not rows:
        return None
    return sum(classifier.decide(text).agent in accept for text, accept in rows) / len(rows)


def _cross_validated(config: Config, targets: list[str], base: list[Label], candidate: list[Label]
                     ) -> tuple[float | None, float | None]:
    """Each candidate label scored by a model trained without it: with only ``base`` vs with the rest."""
    if len(candidate) < 2:
        return None, None
    right_before = right_after = 0
    for k in range(min(FOLDS, len(candidate))):
        held = [lab for i, lab in enumerate(candidate) if i % FOLDS == k]
        rest = [lab for i, lab in enumerate(candidate) if i % FOLDS != k]
        held_ids = {lab.id for lab in held}
        before = Classifier(samples_with(config, targets, [b for b in base if b.id not in held_ids]))
        after = Classifier(samples_with(config, targets, [b for b in base if b.id not in held_ids] + rest))
        right_before += sum(before.decide(lab.text).agent == lab.agent for lab in held)
        right_after += sum(after.decide(lab.text).agent == lab.agent for lab in held)
    return right_before / len(candidate), right_after / len(candidate)


def learn(config: Config, orchestrator: str, conn: sqlite3.Connection,
          held_out: list[Labelled] | None = None) -> LearnResult:
    """Refit on config examples + all labels; keep it only if it scores no lower than the fit in use."""
    targets = routing_targets(config, orchestrator)
    every = [lab for lab in labels(conn) if lab.agent in targets]
    upto = trusted_upto(conn)
    base = [lab for lab in every if lab.id <= upto]
    new = [lab for lab in every if lab.id > upto]
    if not new:
        return LearnResult(False, 0, len(every), None, None, None, None, "no new labels since the last learn")
    labels_before, labels_after = _cross_validated(config, targets, base, every)
    rows = [(r.text, r.accept) for r in held_out or []]
    eval_before = eval_after = None
    if rows:
        eval_before = _accuracy(Classifier(samples_with(config, targets, base)), rows)
        eval_after = _accuracy(Classifier(samples_with(config, targets, every)), rows)
    worse = [name for name, b, a in (("the labels", labels_before, labels_after),
                                     ("the held-out file", eval_before, eval_after))
             if b is not None and a is not None and a < b]
    accepted = not worse
    reason = ("refit kept: no score dropped" if accepted
              else f"previous model kept: the refit scored lower on {' and '.join(worse)}")
    record_fit(conn, max(lab.id for lab in every) if accepted else upto, accepted,
               eval_before if eval_before is not None else labels_before,
               eval_after if eval_after is not None else labels_after, len(every), reason)
    return LearnResult(accepted, len(new), len(every), labels_before, labels_after, eval_before, eval_after, reason)
