"""Figures of one simulated run, gathered from the router's records as they finish.

Definitions follow ``modelyard report`` (ledger/report.py) so a replay and a report can be
compared field by field: request-level figures count answered requests; a model's queue wait
comes from its attempts, queue timeouts at full length; spend, price unknown and all-cloud are counted by the
report's own :class:`~modelyard.ledger.cost.CostTally` (one policy: all-cloud asks each answered request once).
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import Reason
from modelyard.ledger.aggregate import has_p95
from modelyard.ledger.cost import CostTally
from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.router.records import RequestRecord

TIMEOUTS = frozenset({Reason.QUEUE_TIMEOUT, Reason.CONNECT_TIMEOUT, Reason.FIRST_TOKEN_TIMEOUT,
                      Reason.IDLE_TIMEOUT, Reason.TOO_SLOW, Reason.DEADLINE})
_OK, _SKIPPED, _DEADLINE = AttemptOutcome.OK, AttemptOutcome.SKIPPED, Reason.DEADLINE
_FALLBACK = RequestOutcome.FALLBACK
_ANSWERED = frozenset(o for o in RequestOutcome if o.answered)
#: widths a chart's time step may take: about 100 points over the period
BUCKETS_S = (60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


def bucket_for(span_s: float) -> float:
    return next((b for b in BUCKETS_S if span_s / b <= 150), BUCKETS_S[-1])


def _pct(values: array, *ps: float) -> list[float | None]:
    """Nearest-rank percentiles, the same rule as the report's (one sort for all of them: a million values); no
    p95 from too few values, as the report shows none (ledger/aggregate.has_p95)."""
    if not len(values):
        return [None] * len(ps)
    ordered = np.sort(np.frombuffer(values, dtype=np.float64))
    last = len(ordered) - 1
    return [float(ordered[max(0, min(last, round(p / 100 * last)))]) if p != 95 or has_p95(len(ordered)) else None
            for p in ps]


@dataclass
class _Agent:
    requests: int = 0
    served: int = 0
    local: int = 0


@dataclass
class Collector:
    local_models: frozenset[str]
    #: seconds per point of the time series
    bucket_s: float = 3600.0
    requests: int = 0
    served: int = 0
    fallbacks: int = 0
    local: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    spend: float = 0.0
    cascades: int = 0
    deadline_misses: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)
    attempt_reasons: Counter = field(default_factory=Counter)
    latencies: array = field(default_factory=lambda: array("d"))
    waits: array = field(default_factory=lambda: array("d"))
    model_waits: dict[str, array] = field(default_factory=dict)
    model_served: Counter = field(default_factory=Counter)
    agents: dict[str, _Agent] = field(default_factory=dict)
    #: per time bucket: [requests, sum of queue wait ms, spend]
    series: dict[int, list[float]] = field(default_factory=dict)
    #: spend, price unknown and all-cloud, as the report counts them
    cost: CostTally = field(default_factory=CostTally)

    def __call__(self, r: RequestRecord) -> None:
        """The router's sink: count one finished request."""
        self.requests += 1
        self.tokens_in += r.tokens_in
        self.tokens_out += r.tokens_out
        self.spend += r.cost_usd
        agent = self.agents.get(r.agent)
        if agent is None:
            agent = self.agents[r.agent] = _Agent()
        agent.requests += 1
        timeouts = 0
        first_reason = None
        for a in r.attempts:
            outcome = a.outcome
            if outcome is not _OK and a.reason is not None:
                reason = a.reason
                self.attempt_reasons[reason] += 1
                first_reason = first_reason or reason
                if reason in TIMEOUTS:
                    timeouts += 1
                if reason is _DEADLINE:
                    self.deadline_misses += 1
            if outcome is not _SKIPPED and a.queue_wait_ms is not None:
                waits = self.model_waits.get(a.model)
                if waits is None:
                    waits = self.model_waits[a.model] = array("d")
                waits.append(a.queue_wait_ms)
        if timeouts >= 2:
            self.cascades += 1
        if r.outcome is _FALLBACK:
            self.fallbacks += 1
            self.reasons[first_reason or "unknown"] += 1
        key = int(r.ts // self.bucket_s)
        point = self.series.get(key)
        if point is None:
            point = self.series[key] = [0, 0.0, 0.0]
        point[0] += 1
        point[1] += r.queue_wait_ms
        point[2] += r.cost_usd
        answered = r.outcome in _ANSWERED and r.model is not None
        self.cost.record(r, answered=answered, local=answered and r.model in self.local_models)
        if answered:
            self.served += 1
            agent.served += 1
            self.model_served[r.model] += 1
            if r.model in self.local_models:
                self.local += 1
                agent.local += 1
            self.latencies.append(r.total_ms)
            self.waits.append(r.queue_wait_ms)
        else:
            self.failed += 1

    def totals(self) -> dict[str, Any]:
        """The same field names as ``report --json``'s ``totals``, plus replay's own."""
        latency, wait = _pct(self.latencies, 50, 95), _pct(self.waits, 50, 95)
        return {
            "requests": self.requests, "served": self.served, "fallbacks": self.fallbacks,
            "fallback_rate": self.fallbacks / self.requests if self.requests else 0.0,
            "fallback_reasons": dict(self.reasons.most_common()),
            "local": self.local, "local_share": self.local / self.served if self.served else 0.0,
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "spend_usd": self.spend,
            "latency_p50_ms": latency[0], "latency_p95_ms": latency[1],
            "queue_wait_p50_ms": wait[0], "queue_wait_p95_ms": wait[1],
            "failed": self.failed, "timeout_cascades": self.cascades, "deadline_misses": self.deadline_misses,
        }

    def models(self) -> dict[str, dict[str, Any]]:
        out = {}
        for n in sorted(set(self.model_waits) | set(self.model_served)):
            waits = self.model_waits.get(n, array("d"))
            p50, p95 = _pct(waits, 50, 95)
            out[n] = {"served": self.model_served[n], "queue_wait_p50_ms": p50, "queue_wait_p95_ms": p95,
                      "attempts": len(waits)}
        return out

    def agent_local_shares(self) -> dict[str, float]:
        return {name: (a.local / a.served if a.served else 0.0) for name, a in self.agents.items()}
