"""``modelyard replay``: the logged traffic under a candidate config, side by side with the current one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelyard.cli.common import console, err, fail, global_config, load_or_exit
from modelyard.cli.render import FEW, ms
from modelyard.ledger.aggregate import has_p95
from modelyard.ledger.report import Period, calendar_months, days_period, money, utc_moment

if TYPE_CHECKING:  # replay is imported when the command runs, not when the CLI starts
    from modelyard.replay.run import Replay, Side


def _when(text: str, flag: str) -> float:
    try:
        return utc_moment(text)
    except ValueError:
        raise fail(f"{flag} must be a date or time like 2026-03-01 or 2026-03-01T12:00 (UTC), not {text!r}") from None


def _period(days: float | None, since: str | None, until: str | None) -> Period:
    if days is not None and (since or until):
        raise fail("use --days, or --since/--until, not both")
    if since or until:
        end = _when(until, "--until") if until else time.time()
        start = _when(since, "--since") if since else end - 30 * 86400
        if start >= end:
            raise fail("--since must be before --until")
        return Period(start, end, f"{since or 'start'} … {until or 'now'} UTC", calendar_months(start, end))
    return days_period(days if days is not None else 30)


#: replay's --config is the candidate, not the config the log was made with (that is --current): the usual help
#: text ("Config file, else $MODELYARD_CONFIG …") read as if it could be left out
def _candidate(ctx: typer.Context, value: Path | None) -> Path | None:
    """The candidate: replay's own --config, else one given before the command (then it is also the current one's
    lookup, as before). Given both, the one before the command is the *current* config (see ``replay``)."""
    return value if value is not None else global_config(ctx)


CandidateOption = Annotated[Path | None, typer.Option(
    "--config", "-c", show_default=False, callback=_candidate,
    help="the CANDIDATE config to replay the log through (required; the log's own config is --current)")]


def replay(
    ctx: typer.Context,
    config: CandidateOption = None,
    current: Annotated[Path | None, typer.Option(help=(
        "the config the log was made with (default: a --config given before `replay` when replay has its own "
        "--config; else $MODELYARD_CONFIG, the user config, the embedded default — `modelyard --config X replay` "
        "makes X the candidate only)"))] = None,
    days: Annotated[float | None, typer.Option(help="replay the last N days (default 30)", min=0.001)] = None,
    since: Annotated[str | None, typer.Option(help=(
        "start of the window, e.g. 2026-03-01 or 2026-03-01T12:00, in UTC (as the log and `report --month`) "
        "unless it carries an offset; default: 30 days before --until"))] = None,
    until: Annotated[str | None, typer.Option(help="end of the window, as --since (default: now)")] = None,
    load: Annotated[float, typer.Option(help="traffic multiplier: 1.5 = what if traffic grows 50%", min=0.01,
                                        max=100)] = 1.0,
    speed: Annotated[float, typer.Option(help="model speed multiplier: 2 = every model twice as fast", min=0.01,
                                         max=100)] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object: current, candidate, validation")]
    = False,
    chart: Annotated[Path | None, typer.Option(help="also draw waits and cost over time (.png or .svg)")] = None,
    seed: Annotated[int, typer.Option(help="random seed of the simulation")] = 0,
) -> None:
    """What if? Replay the routing log against a CANDIDATE config (--config) before changing anything."""
    if config is None:
        raise fail("name the candidate config: modelyard replay --config CANDIDATE.yaml")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise fail("--chart must end in .png or .svg")
    before = global_config(ctx)
    if current is None and before is not None and before != config:
        current = before  # `modelyard --config MINE.yaml replay --config CANDIDATE.yaml`: it was ignored
    now_cfg, now_path = load_or_exit(current)
    if not config.expanduser().exists():  # it said `modelyard init CANDIDATE.yaml` writes one: the starter, not yours
        raise fail(f"{config}: file not found — a candidate is a copy of your config with the change to try: "
                   f"cp {now_path} {config}, edit it, then run this again")
    candidate, _ = load_or_exit(config)
    period = _period(days, since, until)
    from modelyard.ledger.store import LogStore, LogUnavailable
    from modelyard.replay.run import ReplayError
    from modelyard.replay.run import replay as run_replay
    from modelyard.replay.summary import headline, moved_agents, to_dict, validation_rows

    store = LogStore.of(now_cfg)
    if not store.url and not store.path.exists():
        raise fail(f"no routing log at {store.where} (the log of {now_path}): nothing to replay yet", 1)
    try:
        result = run_replay(store, now_cfg, candidate, period, load=load, speed=speed, seed=seed)
    except (ReplayError, LogUnavailable) as exc:
        raise fail(str(exc), 1) from None
    if as_json:
        console.print_json(json.dumps(to_dict(result)))
    else:
        _print(result, headline(result), moved_agents(result), validation_rows(result), now_path, config)
    if chart is not None:
        from modelyard.replay.chart import render_chart

        written = render_chart(result, chart)
        (err if as_json else console).print(f"chart: {written}", highlight=False)


def _print(r: Replay, lines: list[str], moved: list[tuple[str, float, float]],
           validation: list[tuple[str, float | None, float | None, str]], current_path: Path,
           candidate_path: Path) -> None:
    scale = "".join([f", traffic ×{r.load:g}" if r.load != 1 else "", f", models ×{r.speed:g} speed"
                     if r.speed != 1 else ""])
    console.print(f"[bold]modelyard replay — {r.period.label}[/]: {r.requests:,} logged requests{scale}; "
                  f"current {current_path} vs candidate {candidate_path}", highlight=False)
    for line in lines:
        console.print(f"  • {line}", highlight=False, markup=False)

    table = Table(title="side by side")
    for col in ("", "current", "candidate"):
        table.add_column(col, justify="left" if not col else "right")
    a, b = r.current.totals, r.candidate.totals
    rows = [
        ("requests / answered", f"{a['requests']:,} / {a['served']:,}", f"{b['requests']:,} / {b['served']:,}"),
        ("fallback rate", f"{a['fallback_rate']:.1%}", f"{b['fallback_rate']:.1%}"),
        ("queue wait p50 / p95", f"{ms(a['queue_wait_p50_ms'])} / {ms(a['queue_wait_p95_ms'])}",
         f"{ms(b['queue_wait_p50_ms'])} / {ms(b['queue_wait_p95_ms'])}"),
        ("latency p50 / p95", f"{ms(a['latency_p50_ms'])} / {ms(a['latency_p95_ms'])}",
         f"{ms(b['latency_p50_ms'])} / {ms(b['latency_p95_ms'])}"),
        ("timeout cascades", str(a["timeout_cascades"]), str(b["timeout_cascades"])),
        ("deadline misses", str(a["deadline_misses"]), str(b["deadline_misses"])),
        ("served locally", f"{a['local_share']:.0%}", f"{b['local_share']:.0%}"),
        ("cloud spend, period", _spend(r.current), _spend(r.candidate)),
        ("cloud spend per month", _spend(r.current, r.current.per_month), _spend(r.candidate, r.candidate.per_month)),
        ("local models at peak", _gb(r.current.peak_memory_gb), _gb(r.candidate.peak_memory_gb)),
    ]
    for name in r.candidate.all_cloud_per_month_usd:
        rows.append((f"all-cloud on {name}, per month", money(r.current.all_cloud_per_month_usd.get(name, 0.0)),
                     money(r.candidate.all_cloud_per_month_usd[name])))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if not all(has_p95(side.totals["served"]) for side in (r.current, r.candidate)):  # report's words and rule
        console.print(f"fewer than {FEW} answers: no p95 (it would be the slowest one), as `modelyard report` says",
                      style="dim", highlight=False, markup=False)
    if r.candidate.all_cloud_per_month_usd:
        console.print("all-cloud = each answered request asked once, at its answering attempt's tokens (as "
                      "`modelyard report` counts it)", style="dim", highlight=False, markup=False)
    for side, label in ((r.current, "current"), (r.candidate, "candidate")):
        if side.costs is not None and side.costs.unpriced:
            console.print(f"price unknown under the {label} config: {side.costs.unpriced_text()} — a billed model "
                          "without a price counts $0: its spend is at least the figure shown (+?)",
                          highlight=False, markup=False, style="yellow")

    models = Table(title="queue wait per model (every attempt; p50 / p95)")
    for col in ("model", "current", "candidate"):
        models.add_column(col, justify="left" if col == "model" else "right")
    for name in sorted(set(r.current.models) | set(r.candidate.models)):
        x, y = r.current.models.get(name), r.candidate.models.get(name)
        models.add_row(name, _waits(x), _waits(y))
    console.print(models)

    reasons = sorted(set(a["fallback_reasons"]) | set(b["fallback_reasons"]))
    if reasons:
        console.print("fallbacks by reason (current → candidate): " + ", ".join(
            f"{k} {a['fallback_reasons'].get(k, 0)} → {b['fallback_reasons'].get(k, 0)}" for k in reasons),
            highlight=False)
    if moved:
        console.print("agents moving between local and cloud: " + ", ".join(
            f"{agent} {x:.0%} → {y:.0%} local" for agent, x, y in moved), highlight=False)
    for side, label in ((r.current, "current"), (r.candidate, "candidate")):
        if side.skipped_agents:
            console.print(f"not replayed under the {label} config (agents it does not have): " + ", ".join(
                f"{k} ({n})" for k, n in side.skipped_agents.items()), highlight=False)
    if r.assumed:
        console.print("[bold]figures not measured in the log[/] (assumed — check them):")
        for name, text in r.assumed.items():
            console.print(f"  • {name}: {text}", highlight=False, markup=False)
    if r.unavailable:
        console.print("[bold]skipped in the replay[/], as the router would skip them here and now:")
        for name, text in r.unavailable.items():
            console.print(f"  • {name}: {text}", highlight=False, markup=False)

    check = Table(title="validation: the current config replayed over its own log, against what was measured")
    for col in ("figure", "measured", "replayed", "error"):
        check.add_column(col, justify="left" if col == "figure" else "right")
    for key, measured, replayed, error in validation:
        check.add_row(key, _fig(key, measured), _fig(key, replayed), error)
    console.print(check)


def _spend(side: Side, scale: float = 1.0) -> str:
    """The side's spend as ``report`` says it: ``$0.00+?`` when a billed model had no price."""
    if side.costs is None:
        return money(side.totals["spend_usd"] * scale)
    return side.costs.spend_text(scale)


def _gb(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.1f} GB"


def _waits(m: dict | None) -> str:
    if not m:
        return "–"
    return f"{ms(m['queue_wait_p50_ms'])} / {ms(m['queue_wait_p95_ms'])} ({m['attempts']:,})"


def _fig(key: str, v: float | None) -> str:
    if v is None:
        return "–"
    if key.endswith("_rate") or key.endswith("_share"):
        return f"{v:.1%}"
    if key.endswith("_usd"):
        return money(v)
    return ms(v)
