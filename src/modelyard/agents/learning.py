"""Learning from use: corrections become labels, and a refit is kept only if no kind of prompt gets worse.

``record_correction`` is the one hook front-ends call when a person says which agent should have
answered (``/agent X`` and the orchestrated question asked again, a rating). Labels act locally (agents/memory.py):
the refit on config examples + labels decides only near a label, everything else keeps the plain
classifier's decision, and never nearer to a reference prompt that does not accept its agent (the
shipped tuning sets by role, memory.role_prompts). ``learn`` compares the model with the new labels and
the one in use on data neither was trained on: each label scored by a model trained without it (k-fold),
and labelled prompts (``eval-routing`` format; by default every shipped tuning set mapped to the agents'
roles, each prompt scored as if it were not a reference; lines that are themselves labels are skipped)
scored **per kind** — each best-fit agent, each set, and each collection when lines name one (``kind`` or
``source``). The new labels are trusted only if the labels' score does not drop and no kind loses more
than one prompt net (1% of it, for kinds over 200); otherwise the previous model stays, and the run says
which kind and which prompts broke.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.agents.classifier import Classifier, RouteMethod, training_samples
from modelyard.agents.decision_log import held_decision
from modelyard.agents.evaluation import Labelled
from modelyard.agents.memory import CorrectedClassifier, role_prompts
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config.schema import Config
from modelyard.ledger.db import connect
from modelyard.ledger.labels import (
    Label,
    LabelSource,
    add_label,
    decision_of,
    label_row,
    labels,
    record_fit,
    team_labels,
    trusted_upto,
)
from modelyard.ledger.store import LogConnection
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
    #: per kind of held-out prompt (best-fit agent; collection when the file names one), before vs after
    kinds: list[KindScore] = field(default_factory=list)
    #: the held-out prompts the refit got wrong that the model in use got right: (text, agent before, after)
    broken: list[tuple[str, str, str]] = field(default_factory=list)


def record_correction(conn: sqlite3.Connection, request_id: str, agent: str, source: LabelSource,
                      targets: list[str], decision: tuple[str | None, str, str] | None = None) -> bool:
    """Label the text behind an orchestrated request with ``agent``; False if there is nothing to learn
    (the request was not routed by the orchestrator, its text was not stored, or ``agent`` is no target).
    ``decision``: the request's, read already (:func:`.labels.decision_of`)."""
    decision = decision or decision_of(conn, request_id)
    if decision is None or agent not in targets or (text := _learnable(decision)) is None:
        return False
    add_label(conn, text, agent, source, request_id=request_id, previous=decision[1])
    return True


def _learnable(decision: tuple[str | None, str, str]) -> str | None:
    """The text a label can be learned from in ``decision`` (text, agent, method); None unless the orchestrator
    chose (not a person naming the agent, ``direct``) and its text was stored."""
    text, _, method = decision
    return text if text and method != RouteMethod.DIRECT else None


def correct_routing(runtime: Runtime, request_id: str, agent: str, source: LabelSource) -> bool:
    """The front-end hook: the person moved the conversation to ``agent`` right after (or after a 👎 on)
    an answer the orchestrator routed; remember that its text belongs to ``agent``.

    While the log's store refuses writes (its disk full, another process's lock) the label goes through the
    runtime's writer, held with the rows it holds and written once the store takes them (kept in its held file at a
    stop): it was dropped with a warning. Its decision may be among those held rows too."""
    name = orchestrator_name(runtime.config)
    if name is None:
        return False
    runtime.log.flush()  # the decision and request rows are written off-thread
    targets = routing_targets(runtime.config, name)
    try:
        conn = connect(runtime.log_path)
    except sqlite3.Error as exc:  # a lost label must never break the conversation
        return _held_correction(runtime, request_id, agent, source, targets, exc)
    try:
        try:
            found = decision_of(conn, request_id)
        except sqlite3.Error as exc:
            return _held_correction(runtime, request_id, agent, source, targets, exc)
        if found is None:  # not in the file: held by the writer, if anywhere
            return _held_correction(runtime, request_id, agent, source, targets, None)
        try:
            return record_correction(conn, request_id, agent, source, targets, found)
        except sqlite3.Error as exc:
            return _held_correction(runtime, request_id, agent, source, targets, exc, found)
    finally:
        conn.close()


def _held_correction(runtime: Runtime, request_id: str, agent: str, source: LabelSource, targets: list[str],
                     exc: BaseException | None, found: tuple[str | None, str, str] | None = None) -> bool:
    """The label of a correction the log's file could not take (``exc``) or whose decision is not in it yet, given
    to the runtime's writer: it is held there with the log's other rows until the store takes it."""
    decision = found or held_decision(runtime.log, request_id)
    if decision is None:
        if exc is not None:
            log.warning("routing: could not record a correction (%s)", exc)
        return False
    if agent not in targets or (text := _learnable(decision)) is None:
        return False
    runtime.log.submit_row(label_row(text, agent, source, request_id=request_id, previous=decision[1]))
    if exc is not None:
        log.warning("routing: the log refused the correction's label now (%s): it is held with the log's rows and "
                    "written once the log takes rows again", exc)
    return True


def was_routed(runtime: Runtime, request_id: str) -> bool:
    """Whether the orchestrator chose the agent that answered ``request_id`` (not a person's ``/agent``)."""
    runtime.log.flush()
    failed: sqlite3.Error | None = None
    try:
        conn = connect(runtime.log_path)
        try:
            decision = decision_of(conn, request_id)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        decision, failed = None, exc
    if decision is None:  # not in the file (or it could not be read): held by the writer, if anywhere
        decision = held_decision(runtime.log, request_id)
    if decision is None and failed is not None:
        log.warning("routing: could not read a decision (%s)", failed)
    return decision is not None and _learnable(decision) is not None


def trusted_labels(conn: sqlite3.Connection) -> list[Label]:
    """The labels the fast path trains on: those accepted by the last successful ``learn``."""
    upto = trusted_upto(conn)
    return labels(conn, upto) if upto else []


def learned_labels(config: Config) -> list[Label]:
    """Trusted labels from the config's routing log; none if there is no log yet or it cannot be read (said).
    With ``log.url`` they are the team's (every host's labels, trusted by the last ``routing learn`` on
    PostgreSQL), read from the copy the forwarder keeps in this host's file: never a wait on the database."""
    try:
        return read_learned_labels(config)
    except LabelsUnavailable as exc:  # routing must work without its memory
        log.warning("routing: learned labels unavailable (%s); the fast path starts without them and takes them up "
                    "once the log can be read", exc)
        return []


class LabelsUnavailable(RuntimeError):
    """The log's file could not be read for its labels (not: it has none)."""


def read_learned_labels(config: Config) -> list[Label]:
    """:func:`learned_labels`, raising :class:`LabelsUnavailable` when the file cannot be read — a running front-end
    keeps the labels it routes with then (turn.refresh_routing): read as none, a full disk at one look retrained the
    fast path without any. A file that cannot be opened as usual for a state that passes (its disk full: SQLite
    cannot make its ``-shm``) is read as it lies on disk when it has no write-ahead log beside it (a clean stop
    leaves none, so the file holds every label): the labels were missing at every start on a full disk."""
    path = log_path_for(config)
    if not path.exists():
        return []
    try:
        try:
            conn = connect(path)
        except sqlite3.Error as exc:
            conn = _as_on_disk(path, exc)
        try:
            return team_labels(conn) if config.log.url else trusted_labels(conn)
        finally:
            conn.close()
    except (sqlite3.Error, RuntimeError, OSError) as exc:
        raise LabelsUnavailable(str(exc)) from exc


def _as_on_disk(path: Path, exc: sqlite3.Error) -> sqlite3.Connection:
    """``path`` opened read-only as it lies on disk (SQLite's ``immutable``: no lock, no ``-shm`` made), when no
    write-ahead log with frames lies beside it (it would hold rows the file lacks); else ``exc`` is raised."""
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise exc
    return sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)


Model = Classifier | CorrectedClassifier


def _model(base: Classifier, samples: dict[str, list[str]], with_labels: list[Label],
           references: list[Labelled]) -> Model:
    """What the fast path would route with, given these trusted labels (see agents/memory.py)."""
    if not with_labels:
        return base
    return CorrectedClassifier(samples, [(lab.text, lab.agent) for lab in with_labels], base=base,
                               references=references)


def _agent(model: Model, text: str) -> str:
    """``model``'s agent for ``text``, a reference prompt scored as if it were not one."""
    return (model.decide(text, leave_out=True) if isinstance(model, CorrectedClassifier) else model.decide(text)).agent


def _cross_validated(base: Classifier, samples: dict[str, list[str]], trusted: list[Label],
                     candidate: list[Label], references: list[Labelled]) -> tuple[float | None, float | None]:
    """Each candidate label scored by a model that never saw it: with only the trusted labels vs with
    the other candidates too."""
    if len(candidate) < 2:
        return None, None
    right_before = right_after = 0
    for k in range(min(FOLDS, len(candidate))):
        held = [lab for i, lab in enumerate(candidate) if i % FOLDS == k]
        rest = [lab for i, lab in enumerate(candidate) if i % FOLDS != k]
        held_ids = {lab.id for lab in held}
        kept = [b for b in trusted if b.id not in held_ids]
        before, after = _model(base, samples, kept, references), _model(base, samples, kept + rest, references)
        right_before += sum(before.decide(lab.text).agent == lab.agent for lab in held)
        right_after += sum(after.decide(lab.text).agent == lab.agent for lab in held)
    return right_before / len(candidate), right_after / len(candidate)


@dataclass(slots=True)
class KindScore:
    """Held-out prompts of one kind (best-fit agent, or source collection), before and after the refit."""

    kind: str
    n: int
    before: int  # right with the model in use
    after: int  # right with the refit
    fixed: int  # wrong before, right after
    broke: int  # right before, wrong after

    @property
    def dropped(self) -> bool:
        """Lower beyond noise: more than one prompt (or 1% of the kind, if more) lost net. Only flips
        count, so a kind is compared with itself on the same prompts."""
        return self.broke - self.fixed > max(1, self.n // 100)


def kinds_of(row: Labelled) -> list[str]:
    """The groups a held-out line is scored in: its best-fit agent, its set (a shipped tuning set's lines are of
    kind ``set/collection``) and its collection when it names one."""
    sets = [f"set:{row.kind.split('/', 1)[0]}"] if row.kind and "/" in row.kind else []
    return [f"agent:{row.accept[0]}", *sets, *([f"kind:{row.kind}"] if row.kind else [])]


def per_kind(rows: list[Labelled], before: Model, after: Model,
             broken: list[tuple[str, str, str]] | None = None) -> list[KindScore]:
    """Each kind's score before and after; ``broken`` collects the prompts right before and wrong after."""
    scores: dict[str, KindScore] = {}
    for row in rows:
        old, new = _agent(before, row.text), _agent(after, row.text)
        was, now = old in row.accept, new in row.accept
        if was and not now and broken is not None:
            broken.append((row.text, old, new))
        for kind in kinds_of(row):
            score = scores.setdefault(kind, KindScore(kind, 0, 0, 0, 0, 0))
            score.n += 1
            score.before += was
            score.after += now
            score.fixed += now and not was
            score.broke += was and not now
    return sorted(scores.values(), key=lambda k: k.kind)


def role_held_out(config: Config, targets: list[str]) -> list[Labelled]:
    """benchmarks/routing_eval/dev.jsonl (public prompts labelled by role, the set the role examples were tuned
    on — never a test set), its roles mapped to this config's agents that have them; lines whose acceptable
    roles no target has are left out."""
    return [Labelled(r.text, r.accept, r.kind.split("/", 1)[1] if r.kind and "/" in r.kind else None)
            for r in role_prompts(config, targets, ("dev",))]


def learn(config: Config, orchestrator: str, conn: LogConnection,
          held_out: list[Labelled] | None = None, references: list[Labelled] | None = None) -> LearnResult:
    """Refit on config examples + all labels; keep it only if no kind of held-out prompt drops beyond
    noise and the labels themselves are not scored lower. ``references``: the prompts corrections must be
    nearer than (memory.py; by default the shipped tuning sets by role, as the fast path uses)."""
    targets = routing_targets(config, orchestrator)
    every = [lab for lab in labels(conn) if lab.agent in targets]
    upto = trusted_upto(conn)
    trusted = [lab for lab in every if lab.id <= upto]
    new = [lab for lab in every if lab.id > upto]
    if not new:
        return LearnResult(False, 0, len(every), None, None, None, None, "no new labels since the last learn")
    samples = training_samples(config, targets)
    base = Classifier(samples)
    if references is None:
        references = role_prompts(config, targets)
    labels_before, labels_after = _cross_validated(base, samples, trusted, every, references)
    # held out means never trained on: a labelled line that is also a correction is not scored
    taught = {lab.text for lab in every}
    rows = [r for r in held_out or [] if r.text not in taught]
    eval_before = eval_after = None
    kinds: list[KindScore] = []
    broken: list[tuple[str, str, str]] = []
    if rows:
        in_use, refit = _model(base, samples, trusted, references), _model(base, samples, every, references)
        kinds = per_kind(rows, in_use, refit, broken)
        overall = [k for k in kinds if k.kind.startswith("agent:")]
        eval_before = sum(k.before for k in overall) / len(rows)
        eval_after = sum(k.after for k in overall) / len(rows)
    worse = [f"{k.kind.split(':', 1)[1]} ({k.before}→{k.after} of {k.n})" for k in kinds if k.dropped]
    if labels_before is not None and labels_after is not None and labels_after < labels_before:
        worse.append("the labels")
    accepted = not worse
    reason = ("refit kept: no kind of held-out prompt dropped" if accepted
              else f"previous model kept: the refit scored lower on {', '.join(worse)}")
    record_fit(conn, max(lab.id for lab in every) if accepted else upto, accepted,
               eval_before if eval_before is not None else labels_before,
               eval_after if eval_after is not None else labels_after, len(every), reason)
    return LearnResult(accepted, len(new), len(every), labels_before, labels_after, eval_before, eval_after,
                       reason, kinds, broken)
