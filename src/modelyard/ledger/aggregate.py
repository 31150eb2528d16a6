"""Per-agent / per-model aggregates of routing-log rows, shared by ``stats``, the dashboard and the report."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from modelyard.outcomes import AttemptOutcome, RequestOutcome

#: fewer samples than this: a rate is shown as a count ("1/2", not "50%") and a p95 not at all (the nearest-rank p95
#: of fewer than 20 values is their maximum) — by the report's tables and its chart alike
FEW = 20
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


def has_p95(n: int) -> bool:
    """Whether ``n`` samples have a p95 worth saying: below :data:`FEW` it is about their largest value, read as a
    tail. The one rule for ``report``'s tables and chart and ``replay`` (which showed a p95 of 2 requests)."""
    return n >= FEW


def p95_of(values: list[float]) -> float | None:
    """The p95 of ``values``, None when they are too few to have one (:func:`has_p95`)."""
    return percentile(values, 95) if has_p95(len(values)) else None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


#: what a row logged before ``m012_attempt_backend`` (``attempts.backend`` NULL) is shown on, beside known servers
UNKNOWN_SERVER = "unknown server"


def server_label(backend: str | None) -> str:
    """A server as a person names it: ``team-gpu:11434`` for ``ollama http://team-gpu:11434 qwen2.5:7b`` (what
    :func:`modelyard.ledger.probes.backend_of` keeps: provider, redacted endpoint or file, model id) — its host and
    port, never a password (userinfo is dropped), a file's name for an in-process model, the provider when neither."""
    if not backend:
        return UNKNOWN_SERVER
    provider, _, rest = backend.partition(" ")
    first = rest.split(" ", 1)[0]
    if "://" in first:
        try:
            netloc = urlsplit(first).netloc.rpartition("@")[2]
        except ValueError:  # a malformed address (an unclosed IPv6 bracket): shown as logged
            netloc = ""
        return netloc or first
    where = rest.rsplit(" ", 1)[0] if " " in rest else ""  # a model file (in-process), then the model id
    if where.strip():
        return where.strip().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or where
    return provider or backend


@dataclass(frozen=True)
class Servers:
    """The model names the routing log shows on more than one server in a window, each server with its label.

    Two Ollama boxes both serving ``qwen2.5:7b`` under one name (several configs sharing a PostgreSQL log, or an
    endpoint moved mid-month): lumped, the slow or failing one hid behind the healthy one, as LiteLLM's model
    analytics once did before it broke exceptions and latency down by deployment (BerriAI/litellm#3373). A model
    on one server stays one row, as before; rows from before servers were logged are an "unknown server" only
    beside rows whose server is known."""

    #: model → {backend (None: not logged) → label}
    split: dict[str, dict[str | None, str]]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str | None, str | None]]) -> Servers:
        """From the (model, backend) pairs of a window's attempts."""
        seen: dict[str, set[str | None]] = {}
        for model, backend in pairs:
            if model is not None:
                seen.setdefault(model, set()).add(backend or None)
        return cls({m: _labels(bs) for m, bs in seen.items() if len(bs) > 1})

    def label(self, model: str | None, backend: str | None) -> str | None:
        """The server to show ``model``'s row on: None when the model had one server (one row, as before)."""
        servers = self.split.get(model) if model is not None else None
        if servers is None:
            return None
        return servers.get(backend or None) or UNKNOWN_SERVER

    def __bool__(self) -> bool:
        return bool(self.split)


def _labels(backends: set[str | None]) -> dict[str | None, str]:
    """Short labels, made longer only where two servers would read alike (one host, two model ids: the whole
    backend, whose endpoint is already redacted)."""
    short = {b: server_label(b) for b in backends}
    counts = Counter(short.values())
    return {b: label if counts[label] == 1 or b is None else str(b) for b, label in short.items()}


def on_server(model: str, server: str | None) -> str:
    """``qwen2.5:7b on team-gpu:11434`` in a recommendation's words; the bare name when the model had one server."""
    return model if server is None else f"{model} on {server}"


@dataclass
class Group:
    key: str
    #: per model, when the window shows the name on several servers: this row's (:meth:`Servers.label`)
    server: str | None = None
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
    def label(self) -> str:
        """The row's name in a table or chart: ``qwen2.5:7b @ team-gpu:11434`` when the name is on several servers."""
        return self.key if self.server is None else f"{self.key} @ {self.server}"

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
            "key": self.key, "server": self.server, "requests": self.requests, "served": self.served,
            "failed": self.failed, "cancelled": self.cancelled, "failed_attempts": self.failed_attempts,
            "fallbacks": self.fallbacks,
            "fallback_rate": self.fallback_rate, "fallback_reasons": dict(self.reasons.most_common()),
            "local": self.local, "local_share": self.local_share, "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out, "spend_usd": self.spend,
            # no p95 from fewer than FEW samples (null), as the tables show '–': report --json printed a queue wait's
            # "p95" of 10 attempts, their slowest one
            "latency_p50_ms": percentile(self.latencies, 50), "latency_p95_ms": p95_of(self.latencies),
            "queue_wait_p50_ms": percentile(self.waits, 50), "queue_wait_p95_ms": p95_of(self.waits),
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

    def add(self, row: Any, *, wait: bool = True, tokens: bool = True) -> None:
        """Count one ``requests`` row, from either backend (``wait``: also sample its queue wait, when answered;
        ``tokens``: also its tokens — a model's row counts its own attempts' instead)."""
        served = row["outcome"] not in FAILED and row["model"] is not None
        self.requests += 1
        if tokens:
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
