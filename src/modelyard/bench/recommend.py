"""Which model should serve each agent, and in which fallback order — with the numbers that say so.

The rule, in order:
1. a model qualifies when its pass@1 is at least ``min_pass`` (default 50%);
2. the *top tier* is every qualifying model within ``tolerance`` (default 10 points) of the best
   pass@1 — small samples cannot tell such models apart on quality;
3. inside the top tier: cheaper per passing answer first (local models cost nothing), then more
   passing answers per minute; the rest follow by pass@1, then the same tie-breaks;
4. models of the current chain that were not measured (e.g. no API key during the bench) keep their
   place in it — nothing says a measured model is better than them; the measured models fill the
   other places in their new order, and recommended models new to the chain go at the end.
Latency limits belong in the suite (``max_seconds`` checks): then a too-slow model fails on quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.bench.score import Score
from modelyard.config.schema import Config

MIN_PASS = 0.5
TOLERANCE = 0.10


@dataclass
class Recommendation:
    agent: str
    #: measured models, recommended order
    ranked: list[Score]
    #: models of the current chain that were not measured: they keep their place
    kept: list[str]
    #: measured models left out, and why
    excluded: dict[str, str]
    current: list[str]
    judged: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def chain(self) -> list[str]:
        """The current chain with its measured places refilled in ranked order (unmeasured models stay)."""
        queue = [s.model for s in self.ranked]
        chain = []
        for model in self.current:
            if model in self.kept:
                chain.append(model)
            elif queue:
                chain.append(queue.pop(0))
        return chain + queue

    @property
    def changed(self) -> bool:
        return bool(self.ranked) and self.chain != self.current

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "chain": self.chain, "current": self.current, "changed": self.changed,
                "kept_unmeasured": self.kept, "excluded": self.excluded, "judged": self.judged,
                "why": [describe(s) for s in self.ranked], "notes": self.notes}


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def money(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def describe(s: Score) -> str:
    """``fast (pass@1 100%, pass^3 100%, 140 passing/min, TTFT 20 ms, $0/pass)``"""
    parts = [f"pass@1 {pct(s.pass_at_1)}", f"pass^{s.k} {pct(s.pass_hat_k)}"]
    if s.passing_per_min is not None:
        parts.append(f"{s.passing_per_min:.1f} passing/min at concurrency {s.concurrency}")
    if s.ttft_p50_ms is not None:
        parts.append(f"TTFT {s.ttft_p50_ms:.0f} ms")
    parts.append(f"{money(s.cost_per_pass)}/pass")
    if s.structured_rate is not None:
        parts.append(f"structured tool calls {pct(s.structured_rate)}")
    return f"{s.model} ({', '.join(parts)})"


def why_not(s: Score) -> str:
    """The main reason a model fails this agent's tasks."""
    reasons = [f"pass@1 {pct(s.pass_at_1)}"]
    if s.errors:
        reasons.append("errors: " + ", ".join(f"{r} {n}/{s.runs}" for r, n in s.errors.most_common(2)))
    if s.text_call_rate:
        reasons.append(f"writes tool calls as text in {pct(s.text_call_rate)} of tool tasks")
    for label, n in s.failing.most_common(2):
        reasons.append(f"{label} failed in {n}/{s.answered} runs")
    return "; ".join(reasons)


def _key(s: Score) -> tuple[float, float]:
    cost = s.cost_per_pass if s.cost_per_pass is not None else float("inf")
    return (cost, -(s.passing_per_min or 0.0))


def recommend(scores: list[Score], config: Config, *, measured: list[str] | None = None,
              min_pass: float = MIN_PASS, tolerance: float = TOLERANCE) -> list[Recommendation]:
    """One recommendation per agent that has scores. ``measured``: every model the bench ran."""
    agents = list(dict.fromkeys(s.agent for s in scores))
    ran = set(measured) if measured is not None else {s.model for s in scores}
    out = []
    for agent in agents:
        mine = [s for s in scores if s.agent == agent]
        current = config.agents[agent].chain if agent in config.agents else []
        qualifying = [s for s in mine if s.pass_at_1 >= min_pass and s.passes > 0]
        excluded = {s.model: why_not(s) for s in mine if s not in qualifying}
        best = max((s.pass_at_1 for s in qualifying), default=0.0)
        top = sorted((s for s in qualifying if s.pass_at_1 >= best - tolerance - 1e-9), key=_key)
        rest = sorted((s for s in qualifying if s not in top), key=lambda s: (-s.pass_at_1, *_key(s)))
        kept = [m for m in current if m not in ran]
        rec = Recommendation(agent, top + rest, kept, excluded, current, judged=any(s.judged for s in mine))
        if not qualifying:
            rec.notes.append(f"no measured model passes at least {min_pass:.0%} of {agent}'s tasks: "
                             "keep the current chain, or try a stronger model")
        elif kept:
            rec.notes.append(f"not measured, kept in their place: {', '.join(kept)}")
        out.append(rec)
    return out
