"""How good routing is, measured honestly: accuracy against lists of acceptable agents, precision
above the threshold, coverage, a reliability curve, and confidence intervals (samples are small).

A labelled line is ``{"text", "agent"}`` or ``{"text", "accept": [...]}`` (several agents may be
right; the first is the best fit). The threshold is chosen by cross-validation: on each fold's
training part, the lowest confidence above which precision reaches the target; the figures
reported are those of the held-out parts, so the choice is not graded on the data it was made on; with
several files, each file (a population) is held out whole, as traffic unlike the calibration data would be.
Every figure is also given per **kind of message** (:func:`message_kind`: short, long, non-Latin script):
the fast path was trained on short examples, mostly English, so a file's overall figures can hide where it
is weak.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelyard.ledger.aggregate import wilson


class LabelError(ValueError):
    """A labelled file that cannot be used; the message names the file and line."""


#: a message up to this long is read whole by the fast path (agents/request.py) and counts as short
SHORT = 800
#: how much of a message :func:`message_kind` looks at for its script
SCRIPT_SPAN = 2000


class MessageKind(StrEnum):
    """What kind of message a line is, for the per-kind figures: the kinds the examples cover least."""

    SHORT = "short"
    #: over 800 characters: the fast path reads its request and its first and last 400 characters
    LONG = "long"
    #: most letters outside the Latin script (Cyrillic, CJK, Arabic, …), any length
    NON_LATIN = "non-Latin"


def message_kind(text: str) -> MessageKind:
    """Non-Latin when over half the letters of its first 2,000 characters are beyond Latin (U+024F: accented
    Latin letters are Latin), else long when over 800 characters, else short."""
    letters = [c for c in text[:SCRIPT_SPAN] if c.isalpha()]
    if letters and 2 * sum(ord(c) > 0x24F for c in letters) > len(letters):
        return MessageKind.NON_LATIN
    return MessageKind.LONG if len(text) > SHORT else MessageKind.SHORT


@dataclass(slots=True)
class Labelled:
    text: str
    accept: list[str]
    #: the collection a line comes from (``kind``, else ``source`` up to its first colon), if it says
    kind: str | None = None


@dataclass(slots=True)
class Outcome:
    """One routed line: what was chosen, how sure, and whether it was acceptable."""

    agent: str
    confidence: float
    right: bool


@dataclass(slots=True)
class Threshold:
    value: float
    precision: float | None  # on held-out folds
    coverage: float
    folds: list[float] = field(default_factory=list)
    #: with populations (:func:`choose_threshold`'s ``groups``): each one held out — (right, decided fast, lines)
    held: dict[str, tuple[int, int, int]] = field(default_factory=dict)


#: what other tools' labelled sets call the text and the label (OpenAI evals' ``input``/``ideal``, datasets' ``prompt``,
#: ``label``, ``category``): said as modelyard's names, not as a bare "expected …"
_TEXT_NAMES = ("prompt", "input", "question", "query", "message", "content", "instruction")
_AGENT_NAMES = ("label", "category", "target", "class", "ideal", "output")


def _whole_json(text: str) -> bool:
    """The file is one JSON document (an array, a pretty-printed object) rather than JSON Lines."""
    try:
        return isinstance(json.loads(text), list | dict)
    except ValueError:
        return False


def _shape_hint(item: dict[str, Any]) -> str:
    """What to rename, when a line carries another tool's names for the text or the agent."""
    said = [f"'{name}' → 'text'" for name in _TEXT_NAMES if name in item and "text" not in item][:1]
    said += [f"'{name}' → 'agent'" for name in _AGENT_NAMES
             if name in item and "agent" not in item and "accept" not in item][:1]
    return f" (rename {' and '.join(said)})" if said else ""


def read_labels(file: Path, agents: set[str]) -> list[Labelled]:
    try:
        # utf-8-sig: a file saved by Notepad or Excel starts with a BOM, which json refused ("Unexpected UTF-8 BOM")
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LabelError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise LabelError(f"{file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): save it "
                         "as UTF-8") from None
    lines = text.splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            if line.strip() in ("[", "{") or (number == next(n for n, x in enumerate(lines, 1) if x.strip())
                                               and _whole_json(text)):
                # a pretty-printed array said "not JSON (Expecting value: line 1 column 2 (char 1))" of its '['
                raise LabelError(f"{file}:{number}: JSON written over several lines, not JSON Lines: write each "
                                 "object on one line — jq -c '.[]' FILE > FILE.jsonl for an array, jq -c . FILE for "
                                 "objects") from None
            raise LabelError(f"{file}:{number}: not JSON ({exc})") from None
        if isinstance(item, list):
            raise LabelError(f"{file}:{number}: a JSON array, not one labelled line: JSON Lines takes one object per "
                             "line — jq -c '.[]' FILE > FILE.jsonl")
        accept = item.get("accept", [item.get("agent")]) if isinstance(item, dict) else None
        if (not isinstance(item, dict) or not isinstance(item.get("text"), str) or not isinstance(accept, list)
                or not accept or not all(isinstance(a, str) for a in accept)):
            hint = _shape_hint(item) if isinstance(item, dict) else ""
            raise LabelError(f'{file}:{number}: expected {{"text": "...", "agent": "..."}} '
                             f'or {{"text": "...", "accept": ["...", ...]}}{hint}')
        unknown = [a for a in accept if a not in agents]
        if unknown:
            raise LabelError(f"{file}:{number}: unknown agent '{unknown[0]}' (agents: {', '.join(sorted(agents))})")
        kind = item.get("kind") or str(item.get("source") or "").split(":")[0]
        rows.append(Labelled(item["text"], accept, str(kind) if kind else None))
    if not rows:
        raise LabelError(f"{file} has no labelled lines")
    return rows


def proportion(successes: int, n: int) -> dict[str, Any]:
    low, high = wilson(successes, n)
    return {"value": successes / n if n else None, "n": n, "ci95": [round(low, 4), round(high, 4)]}


def reliability(outcomes: list[Outcome], bins: int = 5) -> list[dict[str, Any]]:
    """Accuracy per confidence bin: a calibrated router is right about as often as it is sure."""
    out = []
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        inside = [o for o in outcomes if low <= o.confidence < high or (i == bins - 1 and o.confidence == 1.0)]
        right = sum(o.right for o in inside)
        out.append({"confidence": [low, high], **proportion(right, len(inside)),
                    "mean_confidence": (sum(o.confidence for o in inside) / len(inside)) if inside else None})
    return out


def lowest_threshold(outcomes: list[Outcome], target: float, min_support: int = 5, *, bound: bool = False) -> float:
    """Lowest confidence such that decisions at or above it are right at least ``target`` of the time —
    with ``bound``, such that the lower end of the 95% Wilson interval of that share reaches ``target``
    (a promise that survives the sample's luck: a point estimate of 97% on 100 decisions is also
    consistent with 92%)."""
    ranked = sorted(outcomes, key=lambda o: -o.confidence)
    best, right = 1.0, 0
    for count, o in enumerate(ranked, 1):
        right += o.right
        share = wilson(right, count)[0] if bound else right / count
        if count >= min_support and share >= target:
            best = o.confidence
    return best


def choose_threshold(outcomes: list[Outcome], target: float = 0.95, folds: int = 5, *,
                     bound: bool = False, groups: Sequence[str] | None = None) -> Threshold:
    """Cross-validated: each held-out fold is judged with the threshold its complement chose.
    ``bound``: each threshold is chosen on the lower confidence bound of precision (:func:`lowest_threshold`).
    ``groups``: each outcome's population (the file it came from); with two or more, each population is held
    out in turn instead of a fifth of the lines. Five folds mix populations, so every held-out line has its
    siblings in the part that chose the threshold; a population held out whole is what unfamiliar traffic is
    (round 12: on the eight tuning sets 5-fold promised what a held-out set then did not reach)."""
    population = list(groups) if groups is not None else []
    if groups is not None and len(population) != len(outcomes):
        raise ValueError("groups: one per outcome")
    keys = list(dict.fromkeys(population))
    parts = [[i for i, g in enumerate(population) if g == key] for key in keys] if len(keys) > 1 else \
        [[i for i in range(len(outcomes)) if i % folds == k] for k in range(folds)]
    held: list[Outcome] = []
    chosen: list[float] = []
    per: dict[str, tuple[int, int, int]] = {}
    for k, part in enumerate(parts):
        inside = set(part)
        value = lowest_threshold([o for i, o in enumerate(outcomes) if i not in inside], target, bound=bound)
        chosen.append(value)
        above = [outcomes[i] for i in part if outcomes[i].confidence >= value]
        held.extend(above)
        if len(keys) > 1:
            per[keys[k]] = (sum(o.right for o in above), len(above), len(part))
    value = lowest_threshold(outcomes, target, bound=bound)
    return Threshold(value, (sum(o.right for o in held) / len(held)) if held else None,
                     len(held) / len(outcomes) if outcomes else 0.0, chosen, per)


def summarise(rows: list[Labelled], outcomes: list[Outcome], threshold: float, targets: list[str]) -> dict[str, Any]:
    """Accuracy, above-threshold precision, coverage, per-agent figures, confusion, reliability curve."""
    n = len(rows)
    right = sum(o.right for o in outcomes)
    above = [o for o in outcomes if o.confidence >= threshold]
    # the "truth" of a line for per-agent figures: the chosen agent when acceptable, else the best fit
    truth = [o.agent if o.right else r.accept[0] for r, o in zip(rows, outcomes, strict=True)]
    predicted = [o.agent for o in outcomes]
    order = {a: i for i, a in enumerate(targets)}
    labels = sorted(set(truth) | set(predicted), key=lambda a: (order.get(a, len(order)), a))
    per_agent = {}
    for a in labels:
        tp = sum(t == a and p == a for t, p in zip(truth, predicted, strict=True))
        n_pred, n_true = predicted.count(a), truth.count(a)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_agent[a] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    matrix = [[sum(t == a and p == b for t, p in zip(truth, predicted, strict=True)) for b in labels] for a in labels]
    by_kind = {}
    for kind in MessageKind:
        inside = [o for r, o in zip(rows, outcomes, strict=True) if message_kind(r.text) is kind]
        if inside:
            kind_above = [o for o in inside if o.confidence >= threshold]
            by_kind[kind.value] = {"accuracy": proportion(sum(o.right for o in inside), len(inside)),
                                   "coverage": len(kind_above) / len(inside),
                                   "above_threshold": proportion(sum(o.right for o in kind_above), len(kind_above))}
    return {
        "n": n, "accuracy": right / n, "accuracy_ci95": list(wilson(right, n)),
        "threshold": threshold, "coverage": len(above) / n, "below_threshold": n - len(above),
        "accuracy_above_threshold": (sum(o.right for o in above) / len(above)) if above else None,
        "above_threshold": proportion(sum(o.right for o in above), len(above)),
        "by_kind": by_kind, "labels": labels, "per_agent": per_agent, "confusion": {"labels": labels, "matrix": matrix},
        "reliability": reliability(outcomes),
        "errors": [{"text": r.text, "accept": r.accept, "predicted": o.agent, "confidence": round(o.confidence, 3)}
                   for r, o in zip(rows, outcomes, strict=True) if not o.right],
    }
