"""The replay in plain words: the biggest differences between the current and the candidate config
first, each with its numbers; then ``to_dict`` for ``--json``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from modelyard.ledger.report import money
from modelyard.replay.run import Replay, Side

#: a local share that moves this much for an agent counts as "moving between local and cloud"
MOVED = 0.10


def _ms(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v / 1000:.1f}s" if v >= 10_000 else f"{v:.0f}ms"


def moved_agents(r: Replay) -> list[tuple[str, float, float]]:
    """(agent, local share now, local share with the candidate) where it moves by MOVED or more."""
    out = []
    for agent in sorted(set(r.current.agent_local_share) | set(r.candidate.agent_local_share)):
        a = r.current.agent_local_share.get(agent, 0.0)
        b = r.candidate.agent_local_share.get(agent, 0.0)
        if abs(a - b) >= MOVED:
            out.append((agent, a, b))
    return out


def differences(r: Replay) -> list[tuple[float, str]]:
    """(weight, sentence) for every difference worth saying; the caller shows the heaviest first."""
    a, b = r.current.totals, r.candidate.totals
    out: list[tuple[float, str]] = []
    failed = b["failed"] - a["failed"]
    if failed:
        out.append((100 + abs(failed), f"Requests with no answer: {a['failed']} → {b['failed']} "
                                       f"({'+' if failed > 0 else ''}{failed})."))
    fb = (b["fallback_rate"] - a["fallback_rate"]) * 100
    if abs(fb) >= 0.5:
        top = next(iter(b["fallback_reasons"] if fb > 0 else a["fallback_reasons"]), None)
        why = f", mostly {top}" if top else ""
        out.append((abs(fb) * 3, f"Fallbacks: {a['fallback_rate']:.1%} → {b['fallback_rate']:.1%} of requests "
                                 f"({fb:+.1f} points{why})."))
    for key, label in (("queue_wait_p95_ms", "Queue wait p95"), ("latency_p95_ms", "Latency p95")):
        x, y = a[key] or 0.0, b[key] or 0.0
        if abs(y - x) >= 100 and (x == 0 or not 0.8 <= y / x <= 1.25):
            factor = f" (×{y / x:.1f})" if x else ""
            out.append((min(50.0, abs(y - x) / 100), f"{label}: {_ms(x)} → {_ms(y)}{factor}."))
    for key, label in (("timeout_cascades", "Timeout cascades (2+ timeouts in one request)"),
                       ("deadline_misses", "Requests that ran out of their total time")):
        if b[key] != a[key]:
            out.append((abs(b[key] - a[key]) / max(1, r.requests) * 300, f"{label}: {a[key]} → {b[key]}."))
    dc = r.candidate.cost_per_month_usd - r.current.cost_per_month_usd
    if abs(dc) >= 0.01:
        pct = f" ({dc / r.current.cost_per_month_usd:+.0%})" if r.current.cost_per_month_usd else ""
        out.append((min(60.0, abs(dc)), f"Cloud spend: {_spend(r.current)}/month → "
                                        f"{_spend(r.candidate)}/month{pct}."))
    ls = (b["local_share"] - a["local_share"]) * 100
    if abs(ls) >= 1:
        out.append((abs(ls), f"Served locally: {a['local_share']:.0%} → {b['local_share']:.0%} ({ls:+.0f} points)."))
    for agent, x, y in moved_agents(r):
        where = "to local models" if y > x else "to the cloud"
        out.append((abs(y - x) * 20, f"Agent {agent} moves {where}: {x:.0%} → {y:.0%} of its answers local."))
    ma, mb = r.current.peak_memory_gb, r.candidate.peak_memory_gb
    if ma is not None and mb is not None and abs(mb - ma) >= 0.5:
        out.append((abs(mb - ma), f"Local models loaded at peak: {ma:.1f} GB → {mb:.1f} GB."))
    return sorted(out, key=lambda x: -x[0])


def _spend(s: Side) -> str:
    """Per month, ``+?`` when a billed model had no price (ledger/cost.py: the report's words)."""
    return s.costs.spend_text(s.per_month) if s.costs is not None else money(s.cost_per_month_usd)


def headline(r: Replay) -> list[str]:
    diffs = differences(r)
    if not diffs:
        return ["No difference worth mentioning: the candidate would have served this traffic like the current "
                "config."]
    return [text for _, text in diffs[:6]]


#: below this many measured milliseconds, a replay's error is said in ms, not as a share of (nearly) nothing
MS_FLOOR = 100.0


def validation_rows(r: Replay) -> list[tuple[str, float | None, float | None, str]]:
    """(figure, measured, replayed, error) for the current config replayed over its own log."""
    rows = []
    for key, (measured, replayed) in r.validation.items():
        if measured is None or replayed is None:
            err = "–"
        elif key.endswith("_rate") or key.endswith("_share"):
            err = f"{(replayed - measured) * 100:+.1f} points"
        elif key.endswith("_ms") and measured < MS_FLOOR:  # a share of ~0 ms is noise: 0.03 → 182 ms read +594900%
            err = "exact" if replayed == measured else f"{round(replayed - measured):+d} ms"
        elif measured:
            err = f"{(replayed - measured) / measured:+.0%}"
        else:
            err = "exact" if replayed == measured else f"{replayed:+.3g}"
        rows.append((key, measured, replayed, err))
    return rows


def _side(s: Side) -> dict[str, Any]:
    return {**s.totals, "cost_per_month_usd": s.cost_per_month_usd,
            "all_cloud_per_month_usd": s.all_cloud_per_month_usd, "peak_memory_gb": s.peak_memory_gb,
            "cost": s.costs.to_dict() if s.costs is not None else None,
            "models": s.models, "agent_local_share": s.agent_local_share,
            "agents_not_in_config": s.skipped_agents}


def to_dict(r: Replay) -> dict[str, Any]:
    return {
        "period": asdict(r.period), "requests": r.requests, "load": r.load, "speed": r.speed,
        "summary": headline(r),
        "current": _side(r.current), "candidate": _side(r.candidate),
        "moved_agents": [{"agent": a, "local_share_current": x, "local_share_candidate": y}
                         for a, x, y in moved_agents(r)],
        "assumed": r.assumed,
        "unavailable": r.unavailable,
        "validation": {k: {"measured": m, "replayed": v, "error": e} for k, m, v, e in validation_rows(r)},
    }
