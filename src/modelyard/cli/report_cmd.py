"""``modelyard report``: one page on traffic, latency, cost against all-cloud, and what to change."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelyard.agents.topology import HandoffPurpose, handoff_purpose
from modelyard.cli.common import ConfigOption, console, err, fail, load_or_exit, log_or_exit
from modelyard.cli.render import FEW, Column, fit_table, left_out, ms, p95_cell, share
from modelyard.config.schema import Config
from modelyard.ledger.cost import spend_cell
from modelyard.ledger.report import Group, Period, Report, build_report, days_period, money, month_period
from modelyard.ledger.store import LogConnection, LogStore

#: the group tables' columns after the name, in display order, with the priority that keeps them when narrow
_GROUP_COLUMNS = (("requests", 1), ("failed", 2), ("tokens in/out", 11), ("local", 5), ("p50", 2), ("p95", 6),
                  ("wait p50", 10), ("wait p95", 9), ("FALLBACK", 3), ("tok/s", 8), ("acceptable", 7), ("spend", 4))


def _group_table(title: str, groups: list[Group], fallback_column: str, *, failures: bool,
                 unpriced: Callable[[Group], bool] = lambda _: False, by_model: bool = False) -> None:
    """Whole columns that fit the terminal (as `log` and `stats`): squeezed, 3717ms read '37…'. ``failures``:
    a period with requests no model answered shows how many per row (else 4 failed requests read '0%' fallbacks
    and a p50 of '–', as if nothing had gone wrong). ``by_model``: the failed column counts each model's failed
    attempts (a model answers no failed request; one that only failed read like a quiet one)."""
    columns = [Column("", 0)] + [
        Column(fallback_column, rank, "right", flexible=True, min_width=4) if name == "FALLBACK"
        else Column(name, rank, "right") for name, rank in _GROUP_COLUMNS if failures or name != "failed"]
    cells = []
    for g in groups:
        s = g.summary()
        reasons = ", ".join(f"{r} {n}" for r, n in g.reasons.most_common(2))
        cells.append({
            "": g.label, "requests": str(g.requests), "failed": str(g.failed_attempts if by_model else g.failed),
            "tokens in/out": f"{g.tokens_in:,}/{g.tokens_out:,}",
            "local": share(g.local, g.served), "p50": ms(s["latency_p50_ms"]),
            "p95": p95_cell(s["latency_p95_ms"], len(g.latencies)),
            "wait p50": ms(s["queue_wait_p50_ms"]), "wait p95": p95_cell(s["queue_wait_p95_ms"], len(g.waits)),
            fallback_column: share(g.fallbacks, g.requests) + (f" ({reasons})" if reasons else ""),
            "tok/s": f"{s['tokens_per_s']:.1f}" if s["tokens_per_s"] else "–",
            "acceptable": (f"{g.acceptable}/{g.rated}" + (f" ({g.acceptable_rate:.0%})" if g.rated >= FEW else ""))
            if g.rated else "–",
            "spend": spend_cell(g.spend, unpriced(g))})
    table = fit_table(columns, cells, console.width)
    console.print(title, style="bold", highlight=False)
    console.print(table)
    if left := left_out(columns, table):
        console.print(left, style="dim", highlight=False, soft_wrap=False)


def _requests(n: int, noun: str = "request") -> str:
    """``1 request``, ``2 requests``: a first report (one `ask`) read '1 requests'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def print_report(report: Report, config: Config) -> None:
    t = report.totals
    failed = f", {t.failed} failed (no model answered: `modelyard log --outcome failed`)" if t.failed > 0 else ""
    console.print(f"[bold]modelyard report — {report.period.label}[/]: {_requests(t.requests)}{failed}, "
                  f"{t.tokens_in:,} tokens in / {t.tokens_out:,} out, {t.local} of {t.served} answered locally"
                  f"{f' ({t.local_share:.0%})' if t.served >= FEW else ''}, fallback on {t.fallbacks} of {t.requests}"
                  f"{f' ({t.fallback_rate:.0%})' if t.requests >= FEW else ''}", highlight=False)
    if report.drift:
        console.print(f"note: {report.drift.describe(config)}", highlight=False, markup=False, style="yellow")
    if not t.requests:  # not two tables of headers: what is empty, and how it fills
        console.print(f"no requests in {report.period.label} ({LogStore.of(config).where}): try another --month, "
                      "or `modelyard ask \"hello\"` to make one", highlight=False, markup=False)
        return
    _group_table("by agent", report.agents, "fallbacks", failures=t.failed > 0,
                 unpriced=lambda g: g.key in report.unpriced_agents)
    # a failed request has no answering model: per model, its failed attempts (one that only failed is not quiet)
    split = "; @ server: the name was on several" if any(g.server for g in report.models) else ""
    _group_table(f"by model (requests it answered, its failed attempts; waits: all its attempts{split})", report.models,
                 "answered as fallback", failures=any(g.failed_attempts for g in report.models),
                 unpriced=lambda g: report.costs.unpriced_on(g.key, g.server), by_model=True)
    groups = report.agents + report.models
    # a group with no sample at all shows '–' for want of one, not of enough (a model that only failed has no latency)
    if any(0 < len(g.latencies) < FEW or 0 < len(g.waits) < FEW for g in groups) or t.requests < FEW:
        console.print(f"fewer than {FEW} samples: rates as counts, no p95 (it would be the largest value)",
                      style="dim", highlight=False)
    if t.reasons:
        console.print("fallbacks by reason: " + ", ".join(
            f"{r} {n}" + (f" ({n / t.requests:.0%})" if t.requests >= FEW else "")
            for r, n in t.reasons.most_common()) + f" of {_requests(t.requests)}", highlight=False)
    if fell_back := sum(g.fallbacks for g in report.models):  # a model's latency is its requests', not its own
        console.print(f"a model's p50/p95 is the whole time of the requests it answered: for the {fell_back} it "
                      "answered as fallback, the failed attempts on other models before it are included",
                      style="dim", highlight=False, markup=False)

    cost = Table(title="cost")
    cost.add_column("")
    cost.add_column("USD", justify="right")
    cost.add_column("savings", justify="right")
    costs = report.costs
    cost.add_row("cloud API spend" + (" (at least: price unknown for some)" if costs.unpriced else ""),
                 costs.spend_text(), "")
    months = report.period.months  # a report on the 1st, or --days 1, is 0.003-0.03 of a month: not "× 0.00"
    cost.add_row(f"local (electricity + hardware × {months:.2f} month)" if months >= 0.1 else
                 f"local (electricity + hardware × {months:.2g} month)", costs.local_text(), "")
    cost.add_row("total", costs.total_text(), "", style="bold")
    for c in report.counterfactuals:
        cost.add_row(f"all-cloud on {c.model} (${c.input_usd_per_m:g}/${c.output_usd_per_m:g} per M)",
                     money(c.cost_usd), costs.savings_text(c))
    console.print(cost)
    for warning in costs.warnings():
        console.print(warning, highlight=False, markup=False, style="yellow")
    if report.counterfactuals:
        c = report.counterfactuals[0]
        answered = _requests(c.requests, "answered request")
        console.print(f"all-cloud = the {answered} asked once ({c.tokens_in:,} tokens in / "
                      f"{c.tokens_out:,} out, as the answering model counted them; failed attempts before the answer "
                      "left out). A cloud model's tokenizer counts the same text differently — Claude's likely into "
                      "more tokens than Qwen's or Llama's — so all-cloud on Claude is likely higher than shown "
                      "(not corrected: no published ratio)",
                      style="dim", highlight=False, markup=False)

    if report.recommendations:
        console.print("[bold]recommendations[/]")
        for r in report.recommendations:
            console.print(f"  • {r.kind}: {r.message}", highlight=False, markup=False)
    else:
        console.print("recommendations: none — nothing crossed a threshold this period")


def logged_elsewhere(cfg: Config, log: LogConnection, period: Period) -> str:
    """The hosts sharing these slots whose requests this log lacks in the period (``log_places``; "" none)."""
    from modelyard.router.shared import log_places

    return log_places.logged_elsewhere_for(cfg, log, max(0.0, time.time() - period.start))


def report(
    config: ConfigOption = None,
    month: Annotated[str | None, typer.Option(
        help="a UTC calendar month, YYYY-MM (default: this one, to date)")] = None,
    days: Annotated[float | None, typer.Option(help="the last N days instead of a month", min=0.001)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON object")] = False,
    chart: Annotated[Path | None, typer.Option(help="also write a chart image (.png or .svg)")] = None,
) -> None:
    """Traffic, latency, fallbacks and cost against going all-cloud, with recommendations."""
    if month and days:
        raise fail("use --month or --days, not both")
    cfg, _ = load_or_exit(config)
    try:
        period = days_period(days) if days else month_period(month)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise fail("--chart must end in .png or .svg")
    revisers = frozenset(a for a in cfg.agents if handoff_purpose(cfg, a) is HandoffPurpose.REVISE)
    # closed when read: in-process (tests, a host embedding the CLI) they stayed open until the collector came
    with contextlib.closing(log_or_exit(cfg)) as log, contextlib.closing(LogStore.of(cfg).local()) as bench:
        result = build_report(log, cfg, period, bench=bench, revisers=revisers)
        elsewhere = logged_elsewhere(cfg, log, period)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        print_report(result, cfg)
    if elsewhere:  # on stderr: --json's stdout stays JSON
        err.print(f"note: {elsewhere}", style="yellow", markup=False, highlight=False)
    if chart is not None:
        from modelyard.ops.report_chart import render_chart

        written = render_chart(result, chart)
        # with --json, stdout stays pure JSON: the chart path goes to stderr
        (err if as_json else console).print(f"chart: {written}", highlight=False)
