"""``modelyard route`` and ``modelyard eval-routing``: the orchestrator's decisions, inspected.

``route`` shows where a task would go without running it. ``eval-routing`` measures the fast
path (and, with ``--with-model``, the full decision) against a labelled JSONL file.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.turn import orchestrator_for
from modelyard.cli.common import ConfigOption, console, fail, load_or_exit, run
from modelyard.config import Config
from modelyard.runtime import open_runtime


def _orchestrator_or_exit(config: Config) -> Orchestrator:
    orchestrator = orchestrator_for(config)
    if orchestrator is None:
        raise fail("this config has no orchestrator (set orchestration.agent to an agent whose consumers "
                   "are other agents)")
    return orchestrator


def route(
    text: Annotated[str, typer.Argument(help="The task to route")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    fast_only: Annotated[bool, typer.Option("--fast-only", help="Never ask the orchestrator's model")] = False,
) -> None:
    """Show which agent would take TEXT (agent, confidence, method, ms) without running the task."""
    if not text.strip():
        raise fail("the text is empty")
    cfg, path = load_or_exit(config)
    orchestrator = _orchestrator_or_exit(cfg)
    fast = orchestrator.decide_fast(text)
    if fast_only or fast.confidence >= cfg.orchestration.threshold:
        decision = fast
    else:
        runtime = open_runtime(path, config=cfg)

        async def slow() -> Any:
            try:
                return await orchestrator.decide(runtime.router, text)
            finally:
                await runtime.aclose()

        decision = run(slow)
    scores = orchestrator.classifier.scores(text)
    if as_json:
        out = {**asdict(decision), "threshold": cfg.orchestration.threshold,
               "scores": {k: round(v, 4) for k, v in sorted(scores.items(), key=lambda kv: -kv[1])}}
        console.out(json.dumps(out, indent=2), highlight=False)
        return
    console.print(f"[bold cyan]{decision.agent}[/]  confidence {decision.confidence:.2f} · {decision.method} · "
                  f"{decision.ms:.1f} ms" + (f" · task: {decision.task}" if decision.task else "")
                  + (f" · {decision.detail}" if decision.detail else ""), highlight=False)
    console.print("[dim]" + "  ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))
                  + "[/]", highlight=False)


def _read_labels(file: Path, agents: set[str]) -> list[tuple[str, str]]:
    rows = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise fail(f"{file}:{number}: not JSON ({exc})") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not isinstance(
                item.get("agent"), str):
            raise fail(f'{file}:{number}: expected {{"text": "...", "agent": "..."}}')
        if item["agent"] not in agents:
            raise fail(f"{file}:{number}: unknown agent '{item['agent']}' (agents: {', '.join(sorted(agents))})")
        rows.append((item["text"], item["agent"]))
    if not rows:
        raise fail(f"{file} has no labelled lines")
    return rows


def evaluate(orchestrator: Orchestrator, rows: list[tuple[str, str]], predictions: list[str] | None = None,
             confidences: list[float] | None = None) -> dict[str, Any]:
    """Accuracy, per-agent precision/recall and the confusion matrix (rows: truth, columns: predicted)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    if predictions is None:
        decisions = [orchestrator.decide_fast(text) for text, _ in rows]
        predictions = [d.agent for d in decisions]
        confidences = [d.confidence for d in decisions]
    truth = [agent for _, agent in rows]
    labels = sorted(set(truth) | set(predictions), key=lambda a: (a not in orchestrator.targets, a))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predictions, labels=labels,
                                                                     zero_division=0)
    matrix = confusion_matrix(truth, predictions, labels=labels)
    correct = sum(t == p for t, p in zip(truth, predictions, strict=True))
    threshold = orchestrator.config.orchestration.threshold
    confident = [(t == p) for t, p, c in zip(truth, predictions, confidences or [], strict=False) if c >= threshold]
    return {
        "n": len(rows), "accuracy": correct / len(rows), "labels": labels,
        "per_agent": {a: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "support": int(support[i])} for i, a in enumerate(labels)},
        "confusion": {"labels": labels, "matrix": matrix.tolist()},
        "threshold": threshold,
        "below_threshold": len(rows) - len(confident),
        "accuracy_above_threshold": (sum(confident) / len(confident)) if confident else None,
        "errors": [{"text": text, "agent": t, "predicted": p}
                   for (text, t), p in zip(rows, predictions, strict=True) if t != p],
    }


def eval_routing(
    file: Annotated[Path, typer.Argument(help='JSONL file, one {"text": …, "agent": …} per line')],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    with_model: Annotated[bool, typer.Option("--with-model",
                                             help="Ask the orchestrator's model below the threshold")] = False,
) -> None:
    """Measure routing on labelled lines: accuracy, per-agent precision/recall, confusion matrix."""
    cfg, path = load_or_exit(config)
    orchestrator = _orchestrator_or_exit(cfg)
    rows = _read_labels(file, set(cfg.agents))
    predictions = confidences = None
    if with_model:
        runtime = open_runtime(path, config=cfg)

        async def decide_all() -> list[Any]:
            try:
                return [await orchestrator.decide(runtime.router, text) for text, _ in rows]
            finally:
                await runtime.aclose()

        decisions = run(decide_all)
        predictions, confidences = [d.agent for d in decisions], [d.confidence for d in decisions]
    report = evaluate(orchestrator, rows, predictions, confidences)
    report["method"] = "fast+model" if with_model else "fast"
    if as_json:
        console.out(json.dumps(report, indent=2), highlight=False)
        return
    console.print(f"[bold]{report['n']}[/] labelled lines · accuracy [bold]{report['accuracy']:.1%}[/] "
                  f"({report['method']})", highlight=False)
    if report["accuracy_above_threshold"] is not None:
        console.print(f"[dim]{report['below_threshold']} below the threshold {report['threshold']:.2f}; accuracy "
                      f"above it {report['accuracy_above_threshold']:.1%}[/]", highlight=False)
    per = Table(title="per agent")
    for column in ("agent", "precision", "recall", "f1", "support"):
        per.add_column(column, justify="left" if column == "agent" else "right")
    for agent, m in report["per_agent"].items():
        per.add_row(agent, f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}", str(m["support"]))
    console.print(per)
    confusion = Table(title="confusion matrix (rows: labelled, columns: predicted)")
    confusion.add_column("")
    for label in report["labels"]:
        confusion.add_column(label, justify="right")
    for label, counts in zip(report["labels"], report["confusion"]["matrix"], strict=True):
        confusion.add_row(label, *[f"[bold]{c}[/]" if label == other else (str(c) if c else "[dim]0[/]")
                                   for other, c in zip(report["labels"], counts, strict=True)])
    console.print(confusion)
