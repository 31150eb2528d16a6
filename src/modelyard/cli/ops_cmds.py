"""Operate the setup: ``probe``, ``check``, ``plan``, ``warmup``, ``install-service``."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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
from modelyard.ledger import aside, queries
from modelyard.ledger.probes import backends_of
from modelyard.ledger.store import log_path
from modelyard.ops import probe_store, service
from modelyard.ops.check import Finding, LoggedAttempt, check_config, missing_on_server, never_probed
from modelyard.ops.plan import MemoryPlan, gb, plan_memory
from modelyard.ops.probe import CHECKS, ProbeResult, probe_models
from modelyard.ops.warmup import WarmResult, warm_all, warmable
from modelyard.providers import build_provider
from modelyard.runtime import load

_STYLE = {"pass": "green", "fail": "red", "text-only": "yellow", "no": "yellow", "skipped": "dim", "n/a": "dim",
          "unknown": "dim"}


def _cell(result: ProbeResult, name: str) -> str:
    c = result.get(name)
    if c is None:
        return "–"
    if name == "ttft_ms" and c.value is not None:
        return f"{c.value:.0f} ms"
    if name == "tokens_per_s" and c.value is not None:
        return f"{c.value:.1f}"
    if name == "context" and c.value is not None:
        return f"{int(c.value):,}"
    text: str = "–" if c.status == "skipped" else c.status  # why is in the notes under the table
    if name == "reachable" and c.status == "fail" and not c.error:  # never called (no key): a finding, not a failure
        return "[yellow]not tried[/]"
    return f"[{_STYLE.get(c.status, 'white')}]{text}[/]"


def probe_table(results: list[ProbeResult]) -> Table:
    """The findings, one line per model; the notes go under it (:func:`probe_notes`): as a ninth column they
    were squeezed to ten characters, a model's row folded over thirty lines at 100 columns."""
    table = Table(title="probe", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    for col in ("model", "reachable", "tools", "thinking", "JSON", "TTFT", "tok/s", "context"):
        table.add_column(col, overflow="fold", no_wrap=col != "model")  # a long model name folds, not a finding
    for r in results:
        table.add_row(r.model, _cell(r, "reachable"), _cell(r, "tools"), _cell(r, "thinking"), _cell(r, "json"),
                      _cell(r, "ttft_ms"), _cell(r, "tokens_per_s"), _cell(r, "context"))
    return table


def probe_notes(results: list[ProbeResult]) -> list[str]:
    """What each check that did not simply pass found, whole: ``  qwen: tools: answers tool requests with …``."""
    return [f"  {r.model}: {c.name}: {c.detail}" for r in results for c in r.checks.values()
            if c.detail and c.status not in ("pass", "skipped") and c.name not in ("ttft_ms", "tokens_per_s")]


def probe(
    models: Annotated[list[str] | None, typer.Argument(help="Models to probe (default: all configured)")] = None,
    config: ConfigOption = None,
    only: Annotated[str | None, typer.Option(help=f"comma-separated subset of: {', '.join(CHECKS)}")] = None,
    timeout: Annotated[float, typer.Option(help="seconds allowed for each probe call", min=1)] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
) -> None:
    """Measure what each model really does: tool calls, thinking, JSON, speed, context. Stored for `check`.
    Exit 1 when a model could not be reached or a check failed on an error (timeout, server error)."""
    cfg, _ = load_or_exit(config)
    names = models or list(cfg.models)
    known_models_or_exit(cfg, names)
    checks = tuple(CHECKS)
    if only:
        checks = tuple(c.strip() for c in only.split(",") if c.strip())
        bad = [c for c in checks if c not in CHECKS]
        if bad:
            raise fail(f"unknown check(s): {', '.join(bad)}; choose from {', '.join(CHECKS)}")
    providers = {n: build_provider(n, cfg.models[n]) for n in names}

    async def go() -> list[ProbeResult]:
        try:
            with err.status("probing…") as status:
                return await probe_models(names, providers, cfg, checks=checks, timeout=timeout,
                                          on_step=lambda m, s: status.update(f"probing {m}: {s}…"))
        finally:
            for p in providers.values():
                await p.aclose()

    conn = local_log_or_exit(cfg)  # before the probes: a log that cannot be opened is said before minutes of work
    results = run(go)
    probe_store.save(conn, results)
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in results]))
    else:
        console.print(probe_table(results))
        for line in probe_notes(results):
            console.print(line, highlight=False, markup=False)
        speeds = [c.detail for r in results if (c := r.get("ttft_ms")) is not None and c.value is not None]
        if speeds:  # a TTFT of 20 prompt tokens read as the model's TTFT: a long prompt's prefill takes far longer
            console.print(f"TTFT and tok/s: {speeds[0]} and up to 32 tokens out — a long prompt's first token comes "
                          "later (prefill grows with its length); `stats` and `report` give your traffic's own",
                          style="dim", highlight=False, markup=False)
    failed = [f"{r.model} ({', '.join(c.name for c in r.errors)})" for r in results if r.errors]
    if failed:
        err.print(f"probe: {len(failed)} of {len(results)} model(s) failed: {'; '.join(failed)}", highlight=False,
                  markup=False)
        raise typer.Exit(1)


def _set_aside(log: Path) -> list[Finding]:
    """Every file set aside beside the routing log (damaged, orphaned, replaced: ledger/aside.py), each with what it
    holds and the command that gets its rows back, said until it is removed."""
    return [Finding("warning", kept.said(log), suggestion=kept.todo(log)) for kept in aside.beside(log)]


def check(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the findings as JSON")] = False,
) -> None:
    """Validate the config against the latest probe results (exit 1 on errors)."""
    cfg, path = load_or_exit(config)
    conn = local_log_or_exit(cfg)
    probes = probe_store.measured_here(probe_store.latest(conn, list(cfg.models)), cfg)
    last = {m: LoggedAttempt(row["ts"], row["reason"] or "", row["detail"] or "", bool(row["backend"]))
            for m, backend in backends_of(cfg).items() if (row := queries.last_attempt(conn, m, backend)) is not None}
    findings = check_config(cfg, probes, missing_on_server(cfg, probes, last), path.parent if path.exists() else None)
    findings += _set_aside(log_path(cfg.log))
    errors = [f for f in findings if f.level == "error"]
    if as_json:
        console.print_json(json.dumps({"config": str(path), "findings": [f.to_dict() for f in findings],
                                       "probed": {m: p.ts for m, p in probes.items()},
                                       "never_probed": never_probed(cfg, probes)}))
    else:
        for f in findings:
            color = {"error": "red", "warning": "yellow", "info": "cyan"}[f.level]
            console.print(f"[bold {color}]{f.level}:[/] {escape(f.message)}", highlight=False)
            if f.suggestion:
                console.print(f"  → {f.suggestion}", highlight=False)
        stamp = ", ".join(f"{m} {datetime.fromtimestamp(p.ts):%m-%d %H:%M}" for m, p in probes.items())
        summary = f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)"
        never = never_probed(cfg, probes)
        seen = f"probes: {stamp}" if stamp else "no probe results yet"
        if never and probes:
            seen += f"; never probed: {', '.join(never)}"
        console.print(f"{path}: {summary} ({seen})", highlight=False)
    if errors:
        raise typer.Exit(1)


def plan(
    config: ConfigOption = None,
    ram: Annotated[float | None, typer.Option("--ram", help="memory in GB (default: this machine's)", min=1)] = None,
    headroom: Annotated[float | None, typer.Option(
        help="GB kept free for the OS and other programs (default 8 on ≥32 GB, else a quarter of RAM, at least 2)",
        min=0)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Memory layout of the local models (weights + KV cache) against this machine's RAM."""
    cfg, _ = load_or_exit(config)
    p = plan_memory(cfg, ram_gb=ram, headroom_gb=headroom)
    if as_json:
        console.print_json(json.dumps(p.to_dict()))
        return
    table = Table(title=f"memory plan for {gb(p.ram_gb)} (headroom {gb(p.headroom_gb)})")
    # llama.cpp's compute buffer in a column of its own where there is one: 0.5 + 0.4 read as ~1.8 GB otherwise
    compute = any(m.compute_gb for m in p.models)
    for col in ("Model", "Weights", "KV cache", *(("Compute",) if compute else ()), "Memory", "Role", "Source"):
        table.add_column(col, overflow="fold")
    for m in p.models:
        dropped = m.model in p.drop
        weights = _size(m.weights_gb) if m.weights_gb is not None else "?"
        # a size not known is '?', not 0.0 GB (a model whose server gave no size read '~0.0 GB'); the KV cache in the
        # server's own figure is said so
        kv = "?" if m.kv_source == "unknown" else "in weights" if m.kv_source.startswith("included") else _size(m.kv_gb)
        table.add_row(m.model, weights, kv, *((_size(m.compute_gb) if m.compute_gb else "–",) if compute else ()),
                      f"~{_size(m.total_gb)}" if m.known else "?", m.role, f"{m.weights_source}; KV: {m.kv_source}",
                      style="strike dim" if dropped else None)
    unknown = " + ?" if any(not m.known for m in p.models) else ""
    table.add_row("Total", "", _size(p.kv_gb), *((_size(sum(m.compute_gb for m in p.models)),) if compute
                                                 else ()), f"~{_size(p.total_gb)}{unknown}",
                  _left(p, unknown), "", style="bold")
    console.print(table)
    if p.fits:
        console.print(f"[green]fits[/]: {gb(p.total_gb)} of {gb(p.available_gb)} usable "
                      f"({gb(p.ram_gb)} − {gb(p.headroom_gb)} headroom)", highlight=False)
    elif p.fits is None:  # a '?' in the total: what is known fits, the rest nobody can say
        console.print(f"[yellow]cannot tell[/]: the models of known size take {gb(p.total_gb)} of "
                      f"{gb(p.available_gb)} usable ({gb(p.ram_gb)} − {gb(p.headroom_gb)} headroom), but the size of "
                      f"{', '.join(p.unknown)} is unknown (why: the note{'s' if len(p.unknown) > 1 else ''} below)",
                      highlight=False)
    else:
        kept = sum(m.total_gb for m in p.kept)
        console.print(f"[red]does not fit[/]: {'at least ' if unknown else ''}{gb(p.total_gb)} needed, "
                      f"{gb(p.available_gb)} usable. "
                      f"Drop {', '.join(p.drop) or 'nothing'} → {gb(kept)}", highlight=False)
        for c in p.consequences:
            console.print(f"  {c.agent}: {c.text}", highlight=False)
    for note in p.notes:
        console.print(f"note: {note}", highlight=False)


def _left(p: MemoryPlan, unknown: str) -> str:
    """The Total row's word on what is left: what does not fit in the headroom is said so — "Leaves ~6 GB free" stood
    beside "does not fit: 17.8 GB needed, 17.7 GB usable" (the RAM left, into the headroom kept for the system)."""
    if p.free_gb < 0:
        return f"Short by {'at least ' if unknown else ''}~{-p.free_gb:.0f} GB"
    if p.fits is False:
        return f"Leaves {p.free_gb:.1f} GB, less than the {gb(p.headroom_gb)} headroom"
    return f"Leaves {'at most ' if unknown else ''}~{p.free_gb:.0f} GB free"


def _size(value: float) -> str:
    """``0.5 GB``; a size under 0.05 GB that is not 0 is ``<0.1 GB``, not ``0.0 GB`` (a small KV cache read as none)."""
    return "<0.1 GB" if 0 < value < 0.05 else f"{value:.1f} GB"


def warmup(
    models: Annotated[list[str] | None, typer.Argument(help="Models to warm (default: every local model)")] = None,
    config: ConfigOption = None,
) -> None:
    """Load every local model now, so the first request does not pay the cold start."""
    cfg, _ = load_or_exit(config)
    providers = {n: build_provider(n, m) for n, m in cfg.models.items()}
    names = models or warmable(providers)
    known_models_or_exit(cfg, names)
    # a local model left out in silence read as forgotten (a llama-server found by `init --detect`); one named
    # whose provider loads nothing (an OpenAI-compatible server, a cloud model) was said warmed, "✓ name: 0.0s"
    loads = set(warmable(providers))
    itself = [n for n, p in providers.items() if n not in loads and p.config.is_local and (not models or n in names)]
    cloud = [n for n in names if n not in loads and not providers[n].config.is_local]
    names = [n for n in names if n in loads]
    left = "\n".join(([f"not warmed up here: {', '.join(itself)} (its server loads its model itself)"] if itself
                       else []) + ([f"not warmed up: {', '.join(cloud)} (a cloud model: nothing to load)"] if cloud
                                   else []))
    if not names:
        console.print("no local models to warm up", highlight=False)
        if left:
            console.print(left, highlight=False)
        return
    # a bar on a terminal; piped or in a service's journal, one 'loading NAME…' line per model (cli/progress.py)
    progress = Steps(err, SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    lines: list[str] = []

    async def go() -> list[WarmResult]:
        with progress:
            overall = progress.add_task("warming up", total=len(names))

            def started(name: str) -> None:
                progress.update(overall, description=f"loading {name}")

            def done(r: WarmResult) -> None:
                progress.advance(overall)
                mark = "[green]✓[/]" if r.ok else "[red]✗[/]"
                # escaped: a reason names an extra, "pip install 'modelyard[local]'", and rich read [local] as a tag
                lines.append(f"{mark} {escape(r.model)}: {r.seconds:.1f}s" + (f" — {escape(r.detail)}" if r.detail
                                                                               else ""))

            try:
                return await warm_all(providers, names, on_start=started, on_done=done)
            finally:
                for p in providers.values():
                    await p.aclose()

    results = run(go)
    for line in lines:
        console.print(line, highlight=False)
    if left:
        console.print(left, highlight=False)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _loopback_service(cfg: Config) -> str:
    """A gateway given keys (gateway.api_keys_env: for callers on other machines) that the service would start on
    loopback: the README's team runs `serve --host 0.0.0.0` on each gateway host, and the service it installs runs
    `serve` with the config's host — 127.0.0.1 unless set — so the laptops reached nothing, and nothing said why."""
    from modelyard.gateway.auth import is_loopback

    if not cfg.gateway.api_keys_env or not is_loopback(cfg.gateway.host):
        return ""
    return (f"note: the service's gateway listens on {cfg.gateway.host} (gateway.host), so only this machine reaches "
            "it, though it has keys for other callers (gateway.api_keys_env): for the other hosts, set gateway: "
            "{host: 0.0.0.0} in the config (`serve --host` is not in the service)")


def install_service(
    config: ConfigOption = None,
    platform: Annotated[str | None, typer.Option(help="linux (systemd) or macos (launchd); default: this one")]
    = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="write here instead of the standard place")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the file, write nothing")] = False,
) -> None:
    """Start `modelyard serve` (after a warm-up) at login/boot: systemd user unit or launchd agent. The one
    service for the machine: the gateway, the Telegram bot when configured, the limits ask/chat share."""
    chosen = platform or service.current_platform()
    try:
        svc = service.service_file(chosen, config=config, directory=directory)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        cfg: Config | None = load(config)[0]
    except ConfigError as exc:  # the service is written either way (the config may come later), but said loudly
        cfg = None
        err.print(f"warning: {exc}\n  the service's `modelyard serve` will fail at every start until the config "
                  "loads (`modelyard models` checks it)", style="yellow", highlight=False, markup=False)
    for name in service.withheld():  # a password in the service file would sit in a plain unit anyone may read
        err.print(f"warning: {name} carries a password, so it is not written into the service file: add the line "
                  f"{name}=… to {service.env_file()} (chmod 600), which the service reads", style="yellow",
                  highlight=False, markup=False)
    if cfg is not None and cfg.log.url and os.environ.get("PGPASSWORD"):
        # the README's way to keep the log's password out of the config; a service does not read this shell: its
        # serve's forwarder failed "password authentication failed" and the rows waited in the spool
        err.print(f"warning: PGPASSWORD (for log.url) is set in this shell, but the service does not get it: add the "
                  f"line PGPASSWORD=… to {service.env_file()} (chmod 600), or put the password in ~/.pgpass",
                  style="yellow", highlight=False, markup=False)
    for key, users in (service.shell_only_keys(cfg) if cfg is not None else {}).items():  # names only, never values
        err.print(f"warning: {key} ({users}) is set in this shell, but the service does not read your shell: add the "
                  f"line {key}=… to {service.env_file()} (chmod 600), or the service's serve goes without it",
                  style="yellow", highlight=False, markup=False)
    if cfg is not None and (note := _loopback_service(cfg)):
        err.print(note, highlight=False, markup=False)
    if dry_run:
        console.print(f"# would write {svc.path}", highlight=False)
        console.out(svc.content, highlight=False)
        return
    before = svc.path.read_text(errors="replace") if svc.path.is_file() else None
    written = service.install(svc)
    console.print(f"wrote {written}", highlight=False)
    if before is None:
        console.print("enable it with:", highlight=False)
        for line in svc.enable:
            console.print(f"  {line}", highlight=False, markup=False)
    elif before != svc.content:
        # re-installed after a change (another --config, a moved venv): 'enable --now' again started nothing and the
        # running service kept its old command line until the next boot
        console.print("it replaced the service file installed before: a service already running keeps the old one "
                      "until it is restarted with:", highlight=False)
        for line in svc.reload:
            console.print(f"  {line}", highlight=False, markup=False)
    else:
        console.print("unchanged: the service file installed before was the same", highlight=False)
    console.print(f"API keys go in {service.env_file()} (KEY=value lines, chmod 600), never in the service file.",
                  highlight=False)
    if cfg is not None and "telegram" in cfg.model_fields_set:  # serve runs the bot itself: no second service
        console.print(f"The config has a telegram section: the service runs the bot too once "
                      f"{cfg.telegram.token_env} is in {service.env_file()}.", highlight=False)
    console.print("ask, chat and telegram on this machine share the service's limits while it runs.", highlight=False)
