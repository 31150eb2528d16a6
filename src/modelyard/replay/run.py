"""One replay: learn the models from the log, simulate the current and the candidate config on the
same arrivals, and compare — with the current config's replay checked against what was measured."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from modelyard.config.direct import derived_config
from modelyard.config.schema import Config
from modelyard.errors import ModelyardError
from modelyard.ledger import bench_runs
from modelyard.ledger.aggregate import has_p95
from modelyard.ledger.cost import Costs
from modelyard.ledger.report import Period
from modelyard.ledger.store import LogConnection, LogStore
from modelyard.providers import build_provider
from modelyard.providers.speed import measured
from modelyard.replay import source
from modelyard.replay.collect import Collector, bucket_for
from modelyard.replay.engine import simulate
from modelyard.replay.profile import ModelProfile, Profiler, Source, stated_profile

#: answered attempts below which a model's measured figures are not trusted alone
MIN_SAMPLES = 20
DEFAULT_TTFT_S = 1.0
DEFAULT_TPS = 20.0
#: how far before the period the log is read to know each model's condition at its start
LOOKBEHIND_S = 3600.0


class ReplayError(ModelyardError):
    """Nothing to replay, or a log that cannot be read."""


@dataclass
class Side:
    """One config's simulated figures."""

    totals: dict[str, Any]
    models: dict[str, dict[str, Any]]
    agent_local_share: dict[str, float]
    series: dict[int, list[float]]
    bucket_s: float
    skipped_agents: dict[str, int]
    cost_per_month_usd: float = 0.0
    all_cloud_per_month_usd: dict[str, float] = field(default_factory=dict)
    #: the period's spend, price unknown and all-cloud, counted as ``report`` counts them
    costs: Costs | None = None
    #: factor from the period to a month (a UTC calendar month, as ``report``: ledger.report.calendar_months)
    per_month: float = 1.0
    peak_memory_gb: float | None = None


@dataclass
class Replay:
    period: Period
    requests: int
    load: float
    speed: float
    current: Side
    candidate: Side
    assumed: dict[str, str]
    #: the current config's replay against what the log measured: figure → (measured, replayed)
    validation: dict[str, tuple[float | None, float | None]]
    #: models the replay skips as the router would here and now (a key not set in this shell), and why
    unavailable: dict[str, str] = field(default_factory=dict)


def _fit(conn: LogConnection, period: Period, seed: int) -> tuple[dict[str, ModelProfile], dict[str, list[int]]]:
    profiler = Profiler(seed)
    for model, page in source.attempt_pages(conn, period.start - LOOKBEHIND_S, period.end):
        profiler.add_page(model, page)
    return profiler.finish(), profiler.lengths()


def _probed(conn: LogConnection) -> dict[str, tuple[float, float]]:
    """(TTFT s, tokens/s) per model from the latest `probe` runs."""
    out: dict[str, tuple[float, float]] = {}
    rows = conn.execute("SELECT model, check_name, value FROM probes p WHERE ts = (SELECT MAX(ts) FROM probes q "
                        "WHERE q.model = p.model) AND check_name IN ('ttft_ms', 'tokens_per_s')").fetchall()
    found: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["value"]:
            found.setdefault(row["model"], {})[row["check_name"]] = float(row["value"])
    for model, v in found.items():
        if "ttft_ms" in v and "tokens_per_s" in v:
            out[model] = (v["ttft_ms"] / 1000, v["tokens_per_s"])
    return out


def _benched(conn: LogConnection, models: set[str]) -> dict[str, ModelProfile]:
    """Profiles of models that `modelyard bench` measured (its answered runs' TTFT and speed)."""
    out: dict[str, ModelProfile] = {}
    for model in models:
        try:
            rows = bench_runs.service_times(conn, model)
        except sqlite3.Error:  # a log from before bench existed
            return out
        ttft, tps = [], []
        for r in rows:
            if r["ttft_ms"] is None or r["total_ms"] is None:
                continue
            ttft.append((int(r["tokens_in"] or 0), r["ttft_ms"] / 1000))
            if speed := r["tokens_per_s"] or measured(r["tokens_out"] or 0, (r["total_ms"] - r["ttft_ms"]) / 1000):
                tps.append(speed)
        if ttft and tps:
            out[model] = ModelProfile(model, Source.BENCHED, ttft=sorted(ttft), tokens_per_s=tps)
    return out


def unavailable_here(configs: list[Config], measured: dict[str, ModelProfile]) -> dict[str, str]:
    """Why each model the replay will skip is skipped — said, because a replay run from a shell without the
    service's keys skipped the cloud model that had answered in the log, and the validation then read
    spend -100%, local share +15 points, with nothing saying why."""
    out: dict[str, str] = {}
    for cfg in configs:
        for name, m in cfg.models.items():
            if name in out:
                continue
            try:
                why = build_provider(name, m).unavailable_reason()
            except ModelyardError as exc:
                why = str(exc)
            if why:
                answered = len(measured[name].ttft) if name in measured else 0
                out[name] = why + (f" — it answered {answered} request(s) in the log, so the replay cannot match "
                                   "what was measured there" if answered else "")
    return out


def profiles_for(configs: list[Config], measured: dict[str, ModelProfile], probed: dict[str, tuple[float, float]],
                 benched: dict[str, ModelProfile] | None = None) -> tuple[dict[str, ModelProfile], dict[str, str]]:
    """A profile for every model either config names; ``assumed`` says where each non-measured one came from.
    Preference: measured in the log, stated in the config, `bench` results, `probe` results, the few answers
    the log has, an assumed default."""
    out: dict[str, ModelProfile] = {}
    assumed: dict[str, str] = {}
    for config in configs:
        for name, m in config.models.items():
            if name in out:
                continue
            p = measured.get(name)
            if p is not None and len(p.ttft) >= MIN_SAMPLES:
                out[name] = p
                continue
            if m.replay is not None:
                q = stated_profile(name, m.replay.ttft_ms / 1000, m.replay.tokens_per_s, m.replay.failure_rate,
                                   Source.STATED)
            elif benched and name in benched:
                q = benched[name]
            elif name in probed:
                q = stated_profile(name, *probed[name], 0.0, Source.PROBED)
            elif p is not None and p.ttft:  # a few answers beat a made-up default; say how few
                out[name] = p
                assumed[name] = f"measured on only {_answers(len(p.ttft))} in the log"
                continue
            else:
                q = stated_profile(name, DEFAULT_TTFT_S, DEFAULT_TPS, 0.0, Source.ASSUMED)
            if p is not None:  # its condition over time is still real
                q.times, q.fates, q.reached, q.failures = p.times, p.fates, p.reached, p.failures
            out[name] = q
            ttft = sorted(t for _, t in q.ttft)[len(q.ttft) // 2]
            tps = sorted(q.tokens_per_s)[len(q.tokens_per_s) // 2]
            assumed[name] = (f"{q.source.value}: TTFT {ttft * 1000:.0f} ms, {tps:.3g} tok/s"
                             + (f" (only {_answers(len(p.ttft))} logged)" if p is not None else ""))
    return out, assumed


def _answers(n: int) -> str:
    return f"{n} answer" if n == 1 else f"{n} answers"


def _simulate_side(args: tuple) -> Side:
    """One simulation and its figures (a worker process's job: the percentiles of a million waits are sorted
    here, beside the other simulation, not after both in the main process)."""
    config, shown, period, store, profiles, lengths, load, speed, seed, start, bucket = args
    conn = store.connect()
    try:
        collector, skipped = simulate(config, source.arrivals(conn, period.start, period.end), profiles,
                                      start=start, tokens_out=lengths, load=load, speed=speed, seed=seed,
                                      bucket_s=bucket)
    finally:
        conn.close()
    return _side(collector, skipped, shown, period)


def _ignore_ctrl_c() -> None:
    """A worker shares the terminal's process group, so Ctrl-C reaches it too: with Python's handler each printed
    multiprocessing's KeyboardInterrupt traceback under ``replay``'s "interrupted". The command handles Ctrl-C and
    stops its workers itself (:func:`_stop_workers`). SIGINT is blocked while the worker is forked
    (:func:`_forking`), so one that arrives before this runs waits here, and is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _yield_cpu() -> None:
    """Lower this worker's priority: it is off the critical path (harmless where it cannot be lowered)."""
    _ignore_ctrl_c()
    with contextlib.suppress(AttributeError, OSError):
        os.nice(5)


@contextlib.contextmanager
def _forking() -> Iterator[None]:
    """Submitting to a pool forks its workers: hold SIGINT back meanwhile (see :func:`_ignore_ctrl_c`); a Ctrl-C
    then reaches this process when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Interrupted: end the workers now (they ignore Ctrl-C), rather than wait for a simulation of a big log."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, AttributeError):
            process.terminate()


def _measure(store: LogStore, period: Period) -> dict[str, Any]:
    """The log's own figures over the period, as ``report`` counts them (a worker's job, run beside the fit)."""
    conn = store.connect()
    try:
        return source.measure(conn, period.start, period.end).summary()
    finally:
        conn.close()


def _for_replay(config: Config) -> Config:
    """The config as the simulation runs it: direct ``model:NAME`` calls addressable, no text kept."""
    cfg = derived_config(config)
    return cfg.model_copy(update={"log": cfg.log.model_copy(update={"store_text": False})})


def _side(c: Collector, skipped: dict[str, int], config: Config, period: Period) -> Side:
    from modelyard.replay.memory import peak_memory_gb

    months = max(period.months, 1e-9)  # UTC calendar months, as report counts them (report.calendar_months)
    per_month = 1 / months
    costs = c.cost.costs(config, months)
    all_cloud = {cf.model: cf.cost_usd * per_month for cf in costs.counterfactuals}
    served_local = [m for m, n in c.model_served.items() if n and m in config.models and config.models[m].is_local]
    return Side(c.totals(), c.models(), c.agent_local_shares(), c.series, c.bucket_s, skipped,
                cost_per_month_usd=c.spend * per_month, all_cloud_per_month_usd=all_cloud, costs=costs,
                per_month=per_month,
                peak_memory_gb=peak_memory_gb(config, served_local))


VALIDATED = ("fallback_rate", "queue_wait_p50_ms", "queue_wait_p95_ms", "local_share", "spend_usd",
             "latency_p50_ms", "latency_p95_ms")


def replay(store: LogStore, current: Config, candidate: Config, period: Period, *, load: float = 1.0,
           speed: float = 1.0, seed: int = 0, parallel: bool = True) -> Replay:
    """``load``: traffic multiplier; ``speed``: model speed multiplier (both apply to the comparison, not
    to the validation run, which replays the current config exactly as logged)."""
    # the log's own figures need no profile: a worker counts them on the second core while this one fits, at
    # a lower priority (the fit and then the simulations are the critical path; it finishes in their gaps)
    measurer = ProcessPoolExecutor(max_workers=1, initializer=_yield_cpu) if parallel else None
    workers = ProcessPoolExecutor(max_workers=2, initializer=_ignore_ctrl_c) if parallel else None
    try:
        with _forking():
            measuring = measurer.submit(_measure, store, period) if measurer is not None else None
        conn = store.connect()
        local = store.local() if store.url else conn  # probes and bench runs stay in this host's file
        try:
            first, last = source.bounds(conn, period.start, period.end)
            if first is None:
                raise ReplayError(f"the routing log ({store.where}) has no requests in {period.label}: nothing to "
                                  "replay (try a longer --days, or check log.path / log.url in the config)")
            measured, lengths = _fit(conn, period, seed)
            names = set(current.models) | set(candidate.models)
            profiles, assumed = profiles_for([current, candidate], measured, _probed(local), _benched(local, names))
            unavailable = unavailable_here([current, candidate], measured)
        finally:
            conn.close()
            if local is not conn:
                local.close()
        start = (first or period.start) - 1.0
        # current at the logged load (checked against what was measured), candidate at --load, and the
        # current config at --load too when traffic is scaled (the fair comparison)
        scaled = load != 1.0 or speed != 1.0
        runs = [(current, 1.0, 1.0), (candidate, load, speed)] + ([(current, load, speed)] if scaled else [])
        bucket = bucket_for((last or start) - start)
        jobs = [(_for_replay(cfg), cfg, period, store, profiles, lengths, ld, sp, seed, start, bucket)
                for cfg, ld, sp in runs]
        if workers is not None and measuring is not None:
            with _forking():
                simulated = workers.map(_simulate_side, jobs)
            results = list(simulated)
            report = measuring.result()
        else:
            results = [_simulate_side(job) for job in jobs]
            report = _measure(store, period)
    except BaseException:  # Ctrl-C above all
        for pool in (workers, measurer):
            if pool is not None:
                _stop_workers(pool)
        raise
    finally:
        for pool in (workers, measurer):
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    logged = results[0]
    # the log's own p95 only from enough answers, as report and the replayed side say it (aggregate.has_p95)
    validation = {k: (None if k.endswith("_p95_ms") and not has_p95(report["served"]) else report.get(k),
                      logged.totals.get(k)) for k in VALIDATED}
    now = results[2] if scaled else logged
    return Replay(period, report["requests"], load, speed, now, results[1], assumed, validation, unavailable)
