"""From runs to figures per model × agent.

- pass@1: the chance one run passes, averaged over tasks (each task weighs the same);
- pass^k (tau-bench): the chance that k runs of a task *all* pass — reliability, not luck — as
  C(c, k) / C(n, k) per task with c passes out of n runs, averaged over tasks with at least k runs;
- structured tool-call success / text-tool-call rate: over answered runs of tasks that expect a
  tool call, the share with a valid structured call / with a call written as text instead;
- net useful throughput: passing answers per minute with the model's ``max_concurrent`` runs in
  flight = pass rate × max_concurrent × 60 / mean seconds per run (retries and errors included);
- cost per passing answer: every run's tokens at the model's price, divided by the passes.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from math import comb
from typing import Any

from modelyard.bench.checks import ToolUse
from modelyard.bench.runner import RunOutcome, RunResult


@dataclass
class Score:
    agent: str
    model: str
    provider: str
    is_local: bool
    concurrency: int
    k: int
    runs: int = 0
    answered: int = 0
    passes: int = 0
    tasks: int = 0
    pass_at_1: float = 0.0
    pass_hat_k: float | None = None
    judged: bool = False
    tool_runs: int = 0
    structured: int = 0
    text_calls: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    #: failing check label -> runs it failed in
    failing: Counter[str] = field(default_factory=Counter)
    ttft_p50_ms: float | None = None
    tokens_per_s_p50: float | None = None
    mean_seconds: float | None = None
    cost_usd: float = 0.0

    @property
    def pass_rate(self) -> float:
        return self.passes / self.runs if self.runs else 0.0

    @property
    def structured_rate(self) -> float | None:
        return self.structured / self.tool_runs if self.tool_runs else None

    @property
    def text_call_rate(self) -> float | None:
        return self.text_calls / self.tool_runs if self.tool_runs else None

    @property
    def passing_per_min(self) -> float | None:
        if not self.mean_seconds:
            return None
        return self.pass_rate * self.concurrency * 60.0 / self.mean_seconds

    @property
    def cost_per_pass(self) -> float | None:
        return self.cost_usd / self.passes if self.passes else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent, "model": self.model, "provider": self.provider, "is_local": self.is_local,
            "concurrency": self.concurrency, "k": self.k, "runs": self.runs, "answered": self.answered,
            "passes": self.passes, "tasks": self.tasks, "pass_at_1": self.pass_at_1, "pass_hat_k": self.pass_hat_k,
            "judged": self.judged, "tool_runs": self.tool_runs, "structured_tool_call_rate": self.structured_rate,
            "text_tool_call_rate": self.text_call_rate, "retries": dict(self.retries), "errors": dict(self.errors),
            "failing_checks": dict(self.failing), "ttft_p50_ms": self.ttft_p50_ms,
            "tokens_per_s_p50": self.tokens_per_s_p50, "mean_seconds": self.mean_seconds,
            "passing_per_min": self.passing_per_min, "cost_usd": self.cost_usd, "cost_per_pass": self.cost_per_pass,
        }


def score(results: list[RunResult], k: int, *, agents: list[str] | None = None,
          models: list[str] | None = None) -> list[Score]:
    """One Score per (agent, model) that has runs, in ``agents`` × ``models`` order when given."""
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for r in results:
        groups[(r.agent, r.model)].append(r)
    agent_order = {a: i for i, a in enumerate(agents or [])}
    model_order = {m: i for i, m in enumerate(models or [])}
    keys = sorted(groups, key=lambda key: (agent_order.get(key[0], len(agent_order)),
                                           model_order.get(key[1], len(model_order))))
    return [_score(groups[key], k) for key in keys]


def _score(runs: list[RunResult], k: int) -> Score:
    first = runs[0]
    s = Score(first.agent, first.model, first.provider, first.is_local, first.concurrency, k)
    by_task: dict[str, list[bool]] = defaultdict(list)
    ttfts, rates, seconds = [], [], []
    for r in runs:
        s.runs += 1
        by_task[r.task].append(r.passed)
        s.passes += r.passed
        s.judged |= r.judged
        s.retries.update(r.retries)
        s.cost_usd += r.cost_usd
        seconds.append(r.total_ms / 1000)
        if r.outcome is RunOutcome.ERROR:
            s.errors[r.reason or "error"] += 1
            continue
        s.answered += 1
        s.failing.update(c.label for c in r.checks if not c.ok)
        if r.ttft_ms is not None:
            ttfts.append(r.ttft_ms)
        if r.tokens_per_s is not None:
            rates.append(r.tokens_per_s)
        if r.tool_use is not None:
            s.tool_runs += 1
            s.structured += r.tool_use is ToolUse.STRUCTURED
            s.text_calls += r.tool_use is ToolUse.TEXT
    s.tasks = len(by_task)
    s.pass_at_1 = statistics.fmean(sum(p) / len(p) for p in by_task.values())
    full = [p for p in by_task.values() if len(p) >= k]
    if full:
        s.pass_hat_k = statistics.fmean(comb(sum(p), k) / comb(len(p), k) for p in full)
    s.ttft_p50_ms = statistics.median(ttfts) if ttfts else None
    s.tokens_per_s_p50 = statistics.median(rates) if rates else None
    s.mean_seconds = statistics.fmean(seconds) if seconds else None
    return s
