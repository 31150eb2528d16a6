"""Per-agent / per-model aggregates of routing-log rows, shared by ``stats``, the dashboard and the report."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelyard.outcomes import AttemptOutcome, RequestOutcome

#: outcomes of requests that got no answer
FAILED = tuple(o.value for o in RequestOutcome if not o.answered)
#: outcomes of attempts that count against their model: it moved the request on (a retry is followed by another try of
#: the same model, so only its last try counts) or broke off mid-answer. Cancelled is the caller's doing
FAILED_ATTEMPTS = (AttemptOutcome.FALLBACK.value, AttemptOutcome.SKIPPED.value, AttemptOutcome.INTERRUPTED.value)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at small n and near 0 or 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Group:
    key: str
    requests: int = 0
    served: int = 0
    fallbacks: int = 0
    local: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    spend: float = 0.0
    rated: int = 0
    acceptable: int = 0
    #: unanswered because the caller went away (disconnect, Ctrl-C): not a failure of the setup
    cancelled: int = 0
    #: per model (``report``): its attempts that moved a request on or broke off — a model that only failed answered
    #: no request, and its row read like one that served none but did no harm
    failed_attempts: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    waits: list[float] = field(default_factory=list, repr=False)
    tps: list[float] = field(default_factory=list, repr=False)
    reasons: Counter = field(default_factory=Counter)

    @property
    def local_share(self) -> float:
        return self.local / self.served if self.served else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.requests if self.requests else 0.0

    @property
    def acceptable_rate(self) -> float | None:
        return self.acceptable / self.rated if self.rated else None

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key, "requests": self.requests, "served": self.served, "failed": self.failed,
            "cancelled": self.cancelled, "failed_attempts": self.failed_attempts, "fallbacks": self.fallbacks,
            "fallback_rate": self.fallback_rate, "fallback_reasons": dict(self.reasons.most_common()),
            "local": self.local, "local_share": self.local_share, "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out, "spend_usd": self.spend,
            "latency_p50_ms": percentile(self.latencies, 50), "latency_p95_ms": percentile(self.latencies, 95),
            "queue_wait_p50_ms": percentile(self.waits, 50), "queue_wait_p95_ms": percentile(self.waits, 95),
            "tokens_per_s": percentile(self.tps, 50), "rated": self.rated, "acceptable": self.acceptable,
            "acceptable_rate": self.acceptable_rate,
        }

    @property
    def failed(self) -> int:
        """Requests no model answered, the caller's cancellations aside."""
        return self.requests - self.served - self.cancelled

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies, 95)

    @property
    def tokens_per_s(self) -> float | None:
        return percentile(self.tps, 50)

    def add(self, row: Any, *, wait: bool = True) -> None:
        """Count one ``requests`` row, from either backend (``wait``: also sample its queue wait, when answered)."""
        served = row["outcome"] not in FAILED and row["model"] is not None
        self.requests += 1
        self.tokens_in += row["tokens_in"] or 0
        self.tokens_out += row["tokens_out"] or 0
        if row["outcome"] == RequestOutcome.CANCELLED:
            self.cancelled += 1
        if row["outcome"] == RequestOutcome.FALLBACK:
            self.fallbacks += 1
            self.reasons[row["fallback_reason"] or "unknown"] += 1
        if served:
            self.served += 1
            self.local += int(row["is_local"] or 0)
            self.latencies.append(row["total_ms"] or 0.0)
            if row["tokens_per_s"]:
                self.tps.append(row["tokens_per_s"])
            if wait:
                self.waits.append(row["queue_wait_ms"] or 0.0)
        if row["acceptable"] is not None:
            self.rated += 1
            self.acceptable += int(row["acceptable"])
