"""``modelyard report``: one page on traffic, latency, cost against all-cloud, and what to change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelyard.cli.common import ConfigOption, console, err, fail, load_or_exit, log_or_exit
from modelyard.cli.render import ms
from modelyard.config.schema import Config
from modelyard.ledger.report import Group, Report, build_report, days_period, money, month_period
from modelyard.ledger.store import LogStore


def _group_table(title: str, groups: list[Group], fallback_column: str) -> Table:
    table = Table(title=title)
    for col in ("", "requests", "tokens in/out", "local", "p50", "p95", "wait p50", "wait p95", fallback_column,
                "tok/s", "acceptable", "spend"):
        table.add_column(col, justify="left" if not col else "right")
    for g in groups:
        s = g.summary()
        reasons = ", ".join(f"{r} {n}" for r, n in g.reasons.most_common(2))
        table.add_row(
            g.key, str(g.requests), f"{g.tokens_in:,}/{g.tokens_out:,}", f"{g.local_share:.0%}",
            ms(s["latency_p50_ms"]), ms(s["latency_p95_ms"]), ms(s["queue_wait_p50_ms"]), ms(s["queue_wait_p95_ms"]),
            f"{g.fallback_rate:.0%}" + (f" ({reasons})" if reasons else ""),
            f"{s['tokens_per_s']:.1f}" if s["tokens_per_s"] else "–",
            f"{g.acceptable}/{g.rated} ({g.acceptable_rate:.0%})" if g.rated else "–", money(g.spend))
    return table


def print_report(report: Report, config: Config) -> None:
    t = report.totals
    console.print(f"[bold]modelyard report — {report.period.label}[/]: {t.requests} requests, "
                  f"{t.tokens_in:,} tokens in / {t.tokens_out:,} out, {t.local_share:.0%} served locally, "
                  f"fallback {t.fallback_rate:.0%}", highlight=False)
    if report.drift:
        console.print(f"note: {report.drift.describe(config)}", highlight=False, markup=False, style="yellow")
    console.print(_group_table("by agent", report.agents, "fallbacks"))
    console.print(_group_table("by answering model (waits: every attempt on it)", report.models,
                                "answered as fallback"))
    if t.reasons:
        console.print("fallbacks by reason: " + ", ".join(
            f"{r} {n} ({n / t.requests:.1%})" for r, n in t.reasons.most_common()), highlight=False)

    cost = Table(title="cost")
    cost.add_column("")
    cost.add_column("USD", justify="right")
    cost.add_column("savings", justify="right")
    cost.add_row("cloud API spend", money(report.spend_usd), "")
    cost.add_row(f"local (electricity + hardware × {report.period.months:.2f} month)",
                 money(report.local_cost_usd), "")
    cost.add_row("total", money(report.total_cost_usd), "", style="bold")
    for c in report.counterfactuals:
        pct = f"{c.savings_pct:.0f}%" if c.savings_pct is not None else "–"
        cost.add_row(f"all-cloud on {c.model} (${c.input_usd_per_m:g}/${c.output_usd_per_m:g} per M)",
                     money(c.cost_usd), f"{money(c.savings_usd)} ({pct})")
    console.print(cost)

    if report.recommendations:
        console.print("[bold]recommendations[/]")
        for r in report.recommendations:
            console.print(f"  • {r.kind}: {r.message}", highlight=False, markup=False)
    else:
        console.print("recommendations: none — nothing crossed a threshold this period")


def report(
    config: ConfigOption = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month)")] = None,
    days: Annotated[float | None, typer.Option(help="the last N days instead of a month", min=0.001)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
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
    result = build_report(log_or_exit(cfg), cfg, period, bench=LogStore.of(cfg).local())
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        print_report(result, cfg)
    if chart is not None:
        from modelyard.ops.report_chart import render_chart

        written = render_chart(result, chart)
        # with --json, stdout stays pure JSON: the chart path goes to stderr
        (err if as_json else console).print(f"chart: {written}", highlight=False)
