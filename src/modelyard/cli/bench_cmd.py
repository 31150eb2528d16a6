"""``modelyard bench``: which model should serve which agent, measured on your own agent tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from modelyard.bench.recommend import MIN_PASS, TOLERANCE, Recommendation, describe, money, pct, recommend
from modelyard.bench.runner import BenchResult, BenchRunner, RunResult
from modelyard.bench.score import Score, score
from modelyard.bench.suite import LoadedSuite, load_suite, starter_text
from modelyard.cli.common import (
    ConfigOption,
    console,
    err,
    fail,
    known_models_or_exit,
    load_or_exit,
    local_log_or_exit,
    run,
)
from modelyard.cli.progress import Steps
from modelyard.config import Config
from modelyard.errors import ConfigError
from modelyard.ledger.bench_runs import save_run
from modelyard.ledger.probes import teach
from modelyard.providers import build_provider
from modelyard.runtime import log_path_for

DEFAULT_SUITE = Path("bench.yaml")


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def _init(path: Path) -> None:
    if path.exists():
        raise fail(f"{path} already exists: edit it, or name another file (modelyard bench --init OTHER.yaml)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_text(), encoding="utf-8")
    console.print(f"wrote {path}: the starter suite (six agents, deterministic checks). Edit it, then run "
                  f"`modelyard bench {path}`", highlight=False)


def _plan(cfg: Config, suite: LoadedSuite, models: str | None, agents: str | None) -> tuple[list[str], list[str]]:
    chosen_agents = _names(agents) or list(suite.spec.agents)
    unknown = [a for a in chosen_agents if a not in suite.spec.agents]
    if unknown:
        raise fail(f"agent(s) not in {suite.path}: {', '.join(unknown)} (suite agents: {', '.join(suite.spec.agents)})")
    try:
        suite.check_against(cfg, chosen_agents)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    chosen_models = _names(models) or list(cfg.models)
    known_models_or_exit(cfg, chosen_models)
    return chosen_models, chosen_agents


def _suite_or_exit(suite: Path) -> LoadedSuite:
    """The suite at ``suite``; one that is not there says how a first one gets written — `bench nosuch.yaml` said
    only 'file not found', and a newcomer has no suite yet (``--init`` writes the starter one)."""
    try:
        return load_suite(suite)
    except ConfigError as exc:
        if suite.exists() or exc.detail != "file not found":  # "… there is suite.yml beside it" says the fix
            raise fail(str(exc)) from None
        raise fail(f"{exc} — `modelyard bench --init {suite}` writes a starter suite there to edit") from None


def bench(
    suite: Annotated[Path | None, typer.Argument(help="Suite YAML (write the starter one with --init)",
                                                 show_default=False)] = None,
    config: ConfigOption = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated candidate models (default: every configured "
                                                    "model)")] = None,
    agents: Annotated[str | None, typer.Option(help="Comma-separated agents of the suite (default: all)")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Runs per task and model (default: the suite's k)",
                                          min=1, max=100)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
    chart: Annotated[Path | None, typer.Option(help="Also write a chart (.png or .svg)")] = None,
    write_config: Annotated[Path | None, typer.Option(
        "--write-config", help="Write your config with the recommended chains to this file and print the diff "
                               "(your config is left as it is)")] = None,
    export: Annotated[Path | None, typer.Option(help="Also write every run as JSON Lines (modelyard-bench/1)")]
    = None,
    min_pass: Annotated[float, typer.Option(help="Least pass@1 for a model to be recommended", min=0, max=1)]
    = MIN_PASS,
    init: Annotated[bool, typer.Option("--init", help=f"Write the starter suite to SUITE (default {DEFAULT_SUITE}) "
                                                      "and stop")] = False,
) -> None:
    """Run your agent tasks k times on each model, alone; recommend a chain per agent with its numbers."""
    if init:
        _init(suite or DEFAULT_SUITE)
        return
    if suite is None:
        raise fail("name a suite file, or write the starter one with `modelyard bench --init`")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise fail("--chart must end in .png or .svg")
    loaded = _suite_or_exit(suite)  # before the config: a mistyped suite is said without a config's own faults
    cfg, cfg_path = load_or_exit(config)
    if write_config is not None and write_config.resolve() == cfg_path.resolve():
        raise fail(f"--write-config would overwrite the config in use ({cfg_path}): write to another file, "
                   "review the diff, then copy it over")
    chosen_models, chosen_agents = _plan(cfg, loaded, models, agents)
    reps = k or loaded.spec.k
    needed = list(dict.fromkeys([*chosen_models, *([loaded.spec.judge.model] if loaded.spec.judge else [])]))
    providers = {m: build_provider(m, cfg.models[m]) for m in needed}
    teach(providers, log_path_for(cfg))  # the probe's findings, as in real runs (e.g. thinking switches)
    conn = local_log_or_exit(cfg)
    # a bar on a terminal; piped, one line per model as its runs start (the bar's last frame landed in the file)
    progress = Steps(err, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     transient=as_json)
    runner: BenchRunner

    def finished(result: RunResult) -> None:
        save_run(conn, result.row(cfg.log.store_text))
        progress.advance(bar)

    def skipped(model: str, why: str, n: int) -> None:
        progress.advance(bar, n)
        err.print(f"[yellow]not measured[/]: {escape(model)} — {escape(why)}", highlight=False)

    async def go() -> BenchResult:
        try:
            return await runner.run()
        finally:
            for p in providers.values():
                await p.aclose()

    runner = BenchRunner(cfg, loaded, models=chosen_models, agents=chosen_agents, k=reps, providers=providers,
                         on_result=finished, on_skip=skipped, config_dir=cfg_path.parent,
                         on_model=lambda m: progress.update(bar, description=f"bench {loaded.name}: {m}"))
    with progress:
        bar = progress.add_task(f"bench {loaded.name}", total=runner.total_runs)
        result = run(go, keeps_partial=True)  # Ctrl-C: show what finished, then exit 130
    scores = score(result.results, reps, agents=chosen_agents, models=chosen_models)
    recs = recommend(scores, cfg, measured=result.measured, min_pass=min_pass)
    diff = _write_config(cfg_path, write_config, recs) if write_config is not None else None
    if as_json:
        console.print_json(json.dumps({
            "run_id": result.run_id, "suite": result.suite, "k": reps, "interrupted": result.interrupted,
            "seconds": result.seconds, "skipped": result.skipped, "scores": [s.to_dict() for s in scores],
            "recommendations": [r.to_dict() for r in recs], "config_diff": diff}))
    else:
        _print(result, scores, recs, min_pass, log_path_for(cfg))
        if diff is not None and write_config is not None:
            _print_diff(diff, write_config)
    out = err if as_json else console
    if chart is not None and scores:
        from modelyard.bench.chart import render_chart

        title = f"modelyard bench — {loaded.name}, k={reps}" + (" (interrupted)" if result.interrupted else "")
        out.print(f"chart: {render_chart(scores, recs, chart, title)}", highlight=False)
    if export is not None:
        from modelyard.bench.export import records, write_jsonl

        out.print(f"export: {write_jsonl(export, records(result, scores, recs, store_text=cfg.log.store_text))}",
                  highlight=False)
    if result.interrupted:
        raise typer.Exit(130)
    if not result.results:  # every model skipped: not done (it exited 0)
        raise typer.Exit(1)


def _write_config(cfg_path: Path, target: Path, recs: list[Recommendation]) -> str:
    from modelyard.bench.patch import patch_chains, unified_diff

    chains = {r.agent: r.chain for r in recs if r.changed}
    old = cfg_path.read_text(encoding="utf-8")
    try:
        new = patch_chains(old, chains, str(target))
    except (ValueError, ConfigError) as exc:
        raise fail(f"could not write the recommended chains into a copy of {cfg_path}: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(new, encoding="utf-8")
    return unified_diff(old, new, str(cfg_path), str(target))


def _print_diff(diff: str, target: Path) -> None:
    if not diff:
        console.print(f"wrote {target}: the config already has the recommended chains (no change)",
                      highlight=False)
        return
    console.print(f"wrote {target} with the recommended chains; review the change, then copy it over your config:",
                  highlight=False)
    for line in diff.splitlines():
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        console.print(line, style=style, highlight=False, markup=False)


def _cell_rate(s: Score) -> str:
    if s.structured_rate is None:
        return "–"
    return f"{pct(s.structured_rate)} / {pct(s.text_call_rate)}"


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{r} {n}" for r, n in sorted(counter.items(), key=lambda x: -x[1])) or "0"


def agent_table(agent: str, scores: list[Score], rec: Recommendation | None, k: int) -> Table:
    title = f"{agent}" + (" — includes judged checks (an LLM's opinion)" if rec and rec.judged else "")
    table = Table(title=title, title_justify="left")
    for col in ("", "model", "pass@1", f"pass^{k}", "passed", "tool calls\nstructured / text", "retries", "errors",
                "TTFT p50", "tok/s", "passing\n/min", "$/pass"):
        table.add_column(col, justify="left" if col in ("", "model") else "right")
    order = {m: i for i, m in enumerate(rec.chain)} if rec else {}
    for s in sorted(scores, key=lambda s: (order.get(s.model, len(order)), -s.pass_at_1)):
        place = order.get(s.model)
        mark = "★" if place == 0 else f"{place + 1}." if place is not None else "✗"
        table.add_row(
            mark, s.model, pct(s.pass_at_1), pct(s.pass_hat_k), f"{s.passes}/{s.runs}", _cell_rate(s),
            _counts(s.retries), _counts(s.errors),
            f"{s.ttft_p50_ms:.0f} ms" if s.ttft_p50_ms is not None else "–",
            f"{s.tokens_per_s_p50:.1f}" if s.tokens_per_s_p50 is not None else "–",
            f"{s.passing_per_min:.1f}" if s.passing_per_min is not None else "–", money(s.cost_per_pass),
            style=None if place is not None else "dim")
    return table


def _nothing_measured(result: BenchResult) -> str:
    """What a bench that finished no run says instead of its recommendations and its run's id (which has no rows)."""
    if result.interrupted:
        return "nothing measured: interrupted before the first run finished, so nothing was recorded"
    return ("nothing measured: no candidate model could run (each one's reason above) — set its key or start its "
            "server, or name others with --models (`modelyard models` says which can answer)")


def _print(result: BenchResult, scores: list[Score], recs: list[Recommendation], min_pass: float,
           log_path: Path) -> None:
    n = len(result.results)
    head = (f"[bold]modelyard bench — {result.suite}[/]: {n} runs (k={result.k}) of {len(result.agents)} agent(s) "
            f"on {len(result.measured)} model(s) in {result.seconds:.0f}s")
    console.print(head + (" — [yellow]interrupted: partial results[/]" if result.interrupted else ""),
                  highlight=False)
    by_agent = {r.agent: r for r in recs}
    for agent in dict.fromkeys(s.agent for s in scores):
        console.print(agent_table(agent, [s for s in scores if s.agent == agent], by_agent.get(agent), result.k))
    for model, why in result.skipped.items():
        console.print(f"not measured: {model} — {why}", highlight=False, markup=False)
    if not n:  # said "recommendations" over nothing and "results: run … (table bench_runs)" of a run with no rows
        console.print(_nothing_measured(result), highlight=False, markup=False)
        return
    console.print(f"[bold]recommendations[/] (rule: pass@1 ≥ {min_pass:.0%}; models within "
                  f"{TOLERANCE * 100:.0f} points of the best pass@1 are ranked cheaper first, then more passing "
                  "answers per minute)", highlight=False)
    for rec in recs:
        if rec.ranked:
            verdict = "change" if rec.changed else "keep"
            console.print(f"  {rec.agent}: {' → '.join(rec.chain)}  ({verdict}; now {' → '.join(rec.current)})",
                          highlight=False, markup=False)
        else:
            console.print(f"  {rec.agent}: no recommendation", highlight=False, markup=False)
        for i, s in enumerate(rec.ranked):
            console.print(f"      {'primary' if i == 0 else 'fallback'}: {describe(s)}", highlight=False,
                          markup=False)
        for model, why in rec.excluded.items():
            console.print(f"      not recommended: {model} — {why}", highlight=False, markup=False)
        for note in rec.notes:
            console.print(f"      note: {note}", highlight=False, markup=False)
    console.print(f"results: run {result.run_id} in {log_path} (table bench_runs)", highlight=False)
