"""``modelyard route`` and ``modelyard eval-routing``: the orchestrator's decisions, inspected.

``route`` shows where a task would go without running it. ``eval-routing`` measures the fast
path (and, with ``--with-model``, the full decision) against a labelled JSONL file. ``routing``
shows (``labels``), undoes (``forget``) and weighs (``learn``) what routing learned from use.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelyard.agents.classifier import Decision
from modelyard.agents.evaluation import LabelError, Labelled, Outcome, choose_threshold, read_labels, summarise
from modelyard.agents.learning import LearnResult, learn, learned_labels
from modelyard.agents.memory import role_prompts
from modelyard.agents.orchestrator import Orchestrator
from modelyard.cli.common import (
    ConfigOption,
    argument_text,
    console,
    err,
    fail,
    load_or_exit,
    local_log_or_exit,
    log_or_exit,
    run,
)
from modelyard.config import Config
from modelyard.config.names import did_you_mean
from modelyard.ledger.forward import Forwarder, copy_team_labels
from modelyard.ledger.labels import LabelSource, add_label, forget_labels, recent_labels
from modelyard.ledger.store import LogStore, LogUnavailable
from modelyard.runtime import Runtime, log_path_for, open_runtime


def _orchestrator_or_exit(config: Config) -> Orchestrator:
    orchestrator = Orchestrator.from_config(config, learned_labels(config))  # one command, one training
    if orchestrator is None:
        # "an agent whose consumers are other agents" named the idea, not the lines to write
        agents = list(config.agents)
        model = next(iter(config.models), "MODEL")
        raise fail("this config has no orchestrator, so nothing is routed (every turn goes to the default agent): "
                   f"to route, add an agent that hands turns to the others — under agents: orchestrator: {{primary: "
                   f"{model}, consumers: [{', '.join(agents)}]}} — and orchestration: {{agent: orchestrator}} "
                   "(the shipped default config has one: `modelyard init --force` writes it)")
    return orchestrator


LOADING_ROUTING = "loading the routing model (once per process: seconds)…"


def load_note(seconds: float) -> str | None:
    """What a route's printed milliseconds leave out: the routing model's load before the decision, when it took
    long enough to be noticed (a process that keeps it — serve, chat, telegram — pays it once)."""
    if seconds < 1:
        return None
    return (f"the routing model took {seconds:.1f} s to load before this decision: "
            "once per process (`serve`, `chat` and `telegram` keep it loaded)")


def route(
    words: Annotated[list[str], typer.Argument(metavar="TEXT", show_default=False,
                                               help="The task to route (quoted, or as several words)")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    fast_only: Annotated[bool, typer.Option("--fast-only", help="Never ask the orchestrator's model")] = False,
    label: Annotated[str | None, typer.Option(
        "--label", help="Record that TEXT belongs to this agent (used by `routing learn`); nothing is routed")] = None,
) -> None:
    """Show which agent would take TEXT (agent, confidence, method, ms) without running the task."""
    # `route fix my parser` as `route "fix my parser"`: unquoted words were refused
    text = argument_text(words, "the text")
    if not text.strip():
        raise fail("the text is empty")
    cfg, path = load_or_exit(config)
    started = time.monotonic()
    # the routing model loads here (15 s at load 13, 25 s at load 8 here) and the answer then said '1.0 ms'
    status = err.status(LOADING_ROUTING) if err.is_terminal and not as_json else None
    if status is not None:
        status.start()
    try:
        orchestrator = _orchestrator_or_exit(cfg)
        fast = orchestrator.decide_fast(text)
    finally:
        if status is not None:
            status.stop()
    loaded = time.monotonic() - started
    if label is not None:
        if label not in orchestrator.targets:
            targets = orchestrator.targets
            raise fail(f"'{label}' is not an agent the orchestrator routes to{did_you_mean(label, targets)}"
                       f" ({', '.join(targets)})")
        conn = local_log_or_exit(cfg)
        try:
            number = add_label(conn, text, label, LabelSource.CLI, previous=fast.agent)
        finally:
            conn.close()
        console.print(f"label {number} recorded: {label}. `modelyard routing learn` decides whether routing uses it.")
        return
    if fast_only or fast.confidence >= cfg.orchestration.threshold:
        decision = fast
    else:
        runtime = _runtime_or_exit(path, cfg)

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
    # named: bare, "engineer 0.93" under "confidence 1.00" read as two figures of one thing that disagreed
    console.print("[dim]votes: " + "  ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))
                  + " (the members' mean; the confidence above is the estimated chance that this route is right)[/]",
                  highlight=False)
    if (note := load_note(loaded)) is not None:  # after the decision: what its milliseconds leave out
        err.print(note, style="dim", highlight=False, markup=False)


def _read_labels(file: Path, agents: set[str]) -> list[Labelled]:
    try:
        return read_labels(file, agents)
    except LabelError as exc:
        raise fail(str(exc)) from None


def evaluate(orchestrator: Orchestrator, rows: list[Labelled], decisions: list[Decision] | None = None
             ) -> dict[str, Any]:
    """Accuracy (a line is right when the chosen agent is one of its acceptable ones), above-threshold
    precision, coverage, per-agent precision/recall, confusion matrix and reliability curve."""
    if decisions is None:
        decisions = [orchestrator.decide_fast(row.text) for row in rows]
    outcomes = [Outcome(d.agent, d.confidence, d.agent in row.accept) for d, row in zip(decisions, rows, strict=True)]
    return summarise(rows, outcomes, orchestrator.config.orchestration.threshold, orchestrator.targets)


def eval_routing(
    files: Annotated[list[Path], typer.Argument(
        help='JSONL, one {"text": …, "agent": …} or {"text": …, "accept": [...]} per line; several files are '
             'read as one set, each a population of its own for --calibrate')],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    with_model: Annotated[bool, typer.Option("--with-model",
                                             help="Ask the orchestrator's model below the threshold")] = False,
    calibrate: Annotated[float | None, typer.Option(
        "--calibrate", help="Choose the threshold for this precision (e.g. 0.95) by cross-validation: 5-fold, "
                            "or with several files each file held out in turn")] = None,
    lower_bound: Annotated[bool, typer.Option(
        "--lower-bound", help="With --calibrate: the precision's 95% lower confidence bound must reach it, "
                              "not its point estimate")] = False,
) -> None:
    """Measure routing on labelled lines: accuracy, above-threshold precision, coverage, reliability."""
    twice = next((file for n, file in enumerate(files) if file.resolve() in {f.resolve() for f in files[:n]}), None)
    if twice is not None:  # its lines would count twice: a narrower interval for nothing
        raise fail(f"{twice} is named twice: name each file once")
    if calibrate is not None and not 0 < calibrate <= 1:
        # `--calibrate 95` ran the whole evaluation and said "calibrated for 9500%: threshold 1.000", a threshold that
        # decides nothing fast, ready to paste into a config (which refuses `threshold: 35` the same way)
        hint = f": write {calibrate / 100:g} for {calibrate:g}%" if 1 < calibrate <= 100 else ""
        raise fail(f"--calibrate takes a precision as a share between 0 and 1, got {calibrate:g}{hint}")
    cfg, path = load_or_exit(config)
    read = [(file, _read_labels(file, set(cfg.agents))) for file in files]  # a bad file is said before the fit
    orchestrator = _orchestrator_or_exit(cfg)
    rows = [row for _, lines in read for row in lines]
    names = [file.name for file in files] if len({file.name for file in files}) == len(files) else list(map(str, files))
    populations = [name for name, (_, lines) in zip(names, read, strict=True) for _ in lines]
    decisions = None
    if with_model:
        runtime = _runtime_or_exit(path, cfg)

        async def decide_all() -> list[Any]:
            try:
                return [await orchestrator.decide(runtime.router, row.text) for row in rows]
            finally:
                await runtime.aclose()

        decisions = run(decide_all)
    report = evaluate(orchestrator, rows, decisions)
    report["method"] = "fast+model" if with_model else "fast"
    if calibrate is not None:
        fast = [orchestrator.decide_fast(row.text) for row in rows]
        chosen = choose_threshold([Outcome(d.agent, d.confidence, d.agent in row.accept)
                                   for d, row in zip(fast, rows, strict=True)], calibrate, bound=lower_bound,
                                  groups=populations)
        report["calibration"] = {"target": calibrate, "lower_bound": lower_bound, "threshold": round(chosen.value, 4),
                                 "held_out": "each file" if chosen.held else "5-fold",
                                 "held_out_precision": chosen.precision, "held_out_coverage": chosen.coverage,
                                 "fold_thresholds": [round(v, 4) for v in chosen.folds],
                                 "files": {name: {"threshold": round(value, 4), "right": right, "decided_fast": fast_n,
                                                  "n": n}
                                           for (name, (right, fast_n, n)), value in zip(
                                               chosen.held.items(), chosen.folds[:len(chosen.held)], strict=True)}}
    if as_json:
        console.out(json.dumps(report, indent=2), highlight=False)
        return
    low, high = report["accuracy_ci95"]
    console.print(f"[bold]{report['n']}[/] labelled lines · acceptable [bold]{report['accuracy']:.1%}[/] "
                  f"(95% CI {low:.1%}–{high:.1%}, {report['method']})", highlight=False)
    above = report["above_threshold"]
    if above["n"]:
        console.print(f"threshold {report['threshold']:.2f}: coverage {report['coverage']:.1%} decided fast, "
                      f"right {above['value']:.1%} of those (95% CI {above['ci95'][0]:.1%}–{above['ci95'][1]:.1%}); "
                      f"{report['below_threshold']} below it go to the orchestrator's model", highlight=False)
    if "calibration" in report:
        cal = report["calibration"]
        held = "n/a" if cal["held_out_precision"] is None else f"{cal['held_out_precision']:.1%}"
        how = "lower 95% bound of precision" if cal["lower_bound"] else "precision"
        folds = "each file held out, judged with the threshold the others chose" if cal["files"] else \
            "held-out folds"
        console.print(f"calibrated for {how} {cal['target']:.0%}: threshold [bold]{cal['threshold']:.3f}[/] "
                      f"({folds}: precision {held}, coverage {cal['held_out_coverage']:.1%})", highlight=False)
        for name, m in cal["files"].items():
            share = f"{m['right']} of {m['decided_fast']} right" if m["decided_fast"] else "none decided fast"
            console.print(f"  {name}: threshold {m['threshold']:.3f} from the others, {share} "
                          f"({m['decided_fast'] / m['n']:.1%} of {m['n']} decided fast)", highlight=False)
        if cal["held_out_precision"] is None:  # a number with nothing behind it: say so before anyone uses it
            console.print(f"[yellow]not measured:[/] no held-out line cleared its fold's threshold — "
                          f"{report['n']} lines are too few to choose one (use a few hundred)", highlight=False)
    curve = Table(title="reliability (is it right as often as it is sure?)")
    for column in ("confidence", "n", "right", "95% CI"):
        curve.add_column(column, justify="right")
    for b in report["reliability"]:
        value = "–" if b["value"] is None else f"{b['value']:.0%}"
        curve.add_row(f"{b['confidence'][0]:.1f}–{b['confidence'][1]:.1f}", str(b["n"]), value,
                      f"{b['ci95'][0]:.0%}–{b['ci95'][1]:.0%}")
    console.print(curve)
    kinds = Table(title=f"by kind of message (threshold {report['threshold']:.2f})")
    for column in ("kind", "n", "acceptable", "95% CI", "decided fast", "right of those", "95% CI "):
        kinds.add_column(column, justify="left" if column == "kind" else "right")
    for kind, m in report["by_kind"].items():
        acc, above = m["accuracy"], m["above_threshold"]
        right = "–" if above["value"] is None else f"{above['value']:.1%} of {above['n']}"
        kinds.add_row(kind, str(acc["n"]), f"{acc['value']:.1%}", f"{acc['ci95'][0]:.0%}–{acc['ci95'][1]:.0%}",
                      f"{m['coverage']:.1%}", right, f"{above['ci95'][0]:.0%}–{above['ci95'][1]:.0%}")
    console.print(kinds)
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


routing_app = typer.Typer(no_args_is_help=True, help="What routing learned from use.")


def _learn_where_the_labels_are(cfg: Config, orchestrator: str, rows: list[Labelled] | None) -> LearnResult:
    """In this host's file; with ``log.url`` in PostgreSQL, over every host's labels (this host's are sent
    first), and the trusted set is copied back here at once (other hosts get it from their forwarders)."""
    path = log_path_for(cfg)
    if not cfg.log.url:
        conn = local_log_or_exit(cfg)
        try:
            return learn(cfg, orchestrator, conn, rows)
        finally:
            conn.close()
    forwarder = Forwarder(path, cfg.log.url)
    try:
        sent = forwarder.flush(timeout=15.0)
    finally:
        forwarder.close(timeout=2.0)
    if not sent:
        console.print(f"[yellow]some of this host's labels have not reached {LogStore.of(cfg).where} yet: "
                      "they wait for the next learn[/]", highlight=False)
    try:
        shared = LogStore.of(cfg).connect()
    except LogUnavailable as exc:
        raise fail(f"{exc} (routing learn needs it: the labels of every host are there)") from None
    try:
        result = learn(cfg, orchestrator, shared, rows)
        spool = local_log_or_exit(cfg)
        try:
            copy_team_labels(shared, spool)
        finally:
            spool.close()
        return result
    finally:
        shared.close()


@routing_app.command("labels")
def routing_labels(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("-n", "--limit", help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """The corrections routing learns from, newest first: trusted (the fast path uses them) or waiting for
    `routing learn`. With log.url, every host's (a host's newest may still be on their way)."""
    cfg, _ = load_or_exit(config)
    conn = log_or_exit(cfg)
    try:
        entries = recent_labels(conn, limit)
    finally:
        conn.close()
    if as_json:
        console.out(json.dumps({"labels": [asdict(e) for e in entries]}, indent=2), highlight=False)
        return
    if not entries:
        console.print(NO_LABELS)
        return
    table = Table(title=f"routing labels in {LogStore.of(cfg).where}")
    for column in ("id", "when", "agent", "was", "from", "state", "text"):
        table.add_column(column, justify="right" if column == "id" else "left",
                         overflow="ellipsis" if column == "text" else "fold", no_wrap=column == "text")
    for e in entries:
        table.add_row(str(e.id), time.strftime("%Y-%m-%d %H:%M", time.localtime(e.ts)), e.agent, e.previous or "–",
                      e.source, "trusted" if e.trusted else "[yellow]waiting[/]", e.text.replace("\n", " ")[:200])
    console.print(table)


@routing_app.command("forget")
def routing_forget(
    ids: Annotated[list[int], typer.Argument(help="Label ids, as `routing labels` shows them")],
    config: ConfigOption = None,
) -> None:
    """Delete labels (a correction made by mistake). Running front-ends stop using a trusted one within
    30 s (with log.url, other hosts' within a minute: their forwarder's copy, then their next look)."""
    cfg, _ = load_or_exit(config)
    conn = log_or_exit(cfg)
    try:
        gone = forget_labels(conn, ids)
        if cfg.log.url and gone:  # this host's copy of the team's trusted labels now, the others' within 30 s
            spool = local_log_or_exit(cfg)
            try:
                copy_team_labels(conn, spool)
            finally:
                spool.close()
    finally:
        conn.close()
    missing = sorted(set(ids) - set(gone))
    if gone:
        console.print(f"forgot {len(gone)} label{'s' if len(gone) != 1 else ''}: {', '.join(map(str, gone))}")
    if missing:
        raise fail(f"no label with id {', '.join(map(str, missing))} in {LogStore.of(cfg).where}", code=1)


#: what an empty set of labels says: where labels come from
NO_LABELS = ("no routing labels yet: `/agent X` after a routed answer in chat or Telegram, then that question again, "
             "`modelyard rate ID bad --agent X`, or `modelyard route --label X \"…\"` add them")


@routing_app.command("learn")
def routing_learn(
    config: ConfigOption = None,
    held_out: Annotated[Path | None, typer.Option(
        "--eval", help="Labelled JSONL (eval-routing format) scored per kind before and after; never trained on "
                       "(default: the built-in tuning sets, by the agents' roles)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Refit the fast path on the config's examples + corrections; keep it only if no kind of prompt drops."""
    cfg, _ = load_or_exit(config)
    orchestrator = _orchestrator_or_exit(cfg)
    rows = (_read_labels(held_out, set(cfg.agents)) if held_out
            else role_prompts(cfg, orchestrator.targets) or None)
    result = _learn_where_the_labels_are(cfg, orchestrator.name, rows)
    if as_json:
        out = asdict(result)
        for kind, score in zip(out["kinds"], result.kinds, strict=True):
            kind["dropped"] = score.dropped
        console.out(json.dumps(out, indent=2), highlight=False)
        return

    if not result.n_labels:  # nothing to learn from: not '0 new of 0 labels', '– → –' and 'since the last learn'
        console.print(f"nothing to learn from: {NO_LABELS}", highlight=False)
        return

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}"

    console.print(f"{result.n_new} new of {result.n_labels} labels", highlight=False)
    console.print(f"  labels, each scored by a model that never saw it: {pct(result.labels_before)} → "
                  f"{pct(result.labels_after)}", highlight=False)
    if rows is not None:
        name = held_out or f"built-in tuning sets (by role, {len(rows)} prompts)"
        console.print(f"  {name}: {pct(result.eval_before)} → {pct(result.eval_after)}", highlight=False)
    if result.kinds:
        table = Table(title="held-out prompts per kind (in use → with the new labels)")
        for column in ("kind", "n", "before", "after", "fixed", "broke", ""):
            table.add_column(column, justify="left" if column in ("kind", "") else "right")
        for k in result.kinds:
            table.add_row(k.kind, str(k.n), f"{k.before / k.n:.1%}", f"{k.after / k.n:.1%}", str(k.fixed),
                          str(k.broke), "[red]dropped[/]" if k.dropped else "")
        console.print(table)
    for text, was, now in result.broken[:BROKEN_SHOWN]:
        console.print(f"  broke: {was} → {now}: {text.replace(chr(10), ' ')[:100]}", highlight=False, markup=False)
    if len(result.broken) > BROKEN_SHOWN:
        console.print(f"  … and {len(result.broken) - BROKEN_SHOWN} more (--json lists them all)", highlight=False)
    console.print(("[green]" if result.accepted else "[yellow]") + result.reason + "[/]", highlight=False)


#: how many broken prompts `routing learn` prints
BROKEN_SHOWN = 10


def _runtime_or_exit(path: Path, cfg: Config) -> Runtime:
    try:
        return open_runtime(path, config=cfg)
    except LogUnavailable as exc:  # e.g. the log's directory is read-only: said, not a traceback
        raise fail(str(exc), code=1) from None
