"""Prometheus metrics for one gateway, on its own registry (two apps in a process never collide).

Counters and histograms are fed once per finished request from the router's record (the
same object the routing log stores), so /metrics and the log can never disagree. Live
gauges (in-flight, queue depth, model state) are read from the router at scrape time
instead of being updated on every slot change; with shared state (Redis) they are the whole
system's, from a view at most ``state.refresh`` old, and the store's own health is exported too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelyard.ledger import LogWriter
from modelyard.ledger.forward import Forwarder
from modelyard.outcomes import AttemptOutcome
from modelyard.router import Condition, Router
from modelyard.router.records import RequestRecord

_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _LiveState(Collector):
    def __init__(self, router: Router):
        self.router = router

    def collect(self) -> Iterable[Metric]:
        in_flight = GaugeMetricFamily("modelyard_in_flight", "Requests being answered by a model", labels=["model"])
        waiting = GaugeMetricFamily("modelyard_queue_depth", "Requests waiting for a free slot", labels=["model"])
        limit = GaugeMetricFamily("modelyard_slots", "max_concurrent of a model", labels=["model"])
        state = GaugeMetricFamily("modelyard_model_state", "1 for the model's current state", labels=["model", "state"])
        for m in self.router.model_states():
            in_flight.add_metric([m.name], m.in_flight)
            waiting.add_metric([m.name], m.waiting)
            limit.add_metric([m.name], m.limit)
            for s in Condition:
                state.add_metric([m.name, s.value], 1.0 if m.state is s else 0.0)
        return [in_flight, waiting, limit, state, *self._shared()]

    def _shared(self) -> list[Metric]:
        """The shared store (Redis), when per-model state lives there: up, instances, staleness, errors."""
        status = self.router.pool.state_status()
        if status is None:
            return []
        up = GaugeMetricFamily("modelyard_shared_state_up", "1 while the shared state (Redis) answers")
        up.add_metric([], 1.0 if status.up else 0.0)
        instances = GaugeMetricFamily("modelyard_shared_state_instances",
                                      "Processes sharing the state, as last counted")
        instances.add_metric([], status.instances)
        age = GaugeMetricFamily("modelyard_shared_state_view_age_seconds",
                                "Age of the cached view behind in_flight, queue_depth and model_state")
        age.add_metric([], -1.0 if status.view_age is None else status.view_age)
        errors = CounterMetricFamily("modelyard_shared_state_errors", "Calls to the shared state that failed")
        errors.add_metric([], status.errors)
        return [up, instances, age, errors]


class _ForwardState(Collector):
    """The copy of the routing log to PostgreSQL (``log.url``), read at scrape time."""

    def __init__(self, forwarder: Forwarder):
        self.forwarder = forwarder

    def collect(self) -> Iterable[Metric]:
        h = self.forwarder.health()
        yield CounterMetricFamily("modelyard_log_forwarded_rows", "Requests copied from the local spool to PostgreSQL",
                                  value=h.forwarded)
        yield CounterMetricFamily("modelyard_log_forward_refused_rows",
                                  "Requests PostgreSQL refused even repaired (kept in the local file only)",
                                  value=h.refused)
        yield CounterMetricFamily("modelyard_log_forward_failures", "Failed forwarding attempts (retried)",
                                  value=h.failures)
        yield GaugeMetricFamily("modelyard_log_forward_backlog", "Requests in the local spool not yet in PostgreSQL",
                                value=h.backlog)
        yield GaugeMetricFamily("modelyard_log_forward_backlog_age_seconds",
                                "Age of the oldest request not yet in PostgreSQL", value=h.oldest_backlog_s or 0.0)
        yield GaugeMetricFamily("modelyard_log_forward_connected", "1 while connected to the PostgreSQL log",
                                value=1.0 if h.connected else 0.0)
        yield GaugeMetricFamily("modelyard_log_forward_active",
                                "1 if this process forwards the host's spool (one process per host does)",
                                value=1.0 if h.active else 0.0)
        yield GaugeMetricFamily("modelyard_log_forward_degraded", "1 while forwarding to PostgreSQL is in trouble",
                                value=1.0 if h.degraded else 0.0)


class _LogState(Collector):
    """The routing log writer's counters, read at scrape time (nothing per row on the hot path)."""

    def __init__(self, writer: LogWriter):
        self.writer = writer

    def collect(self) -> Iterable[Metric]:
        h = self.writer.health()
        yield CounterMetricFamily("modelyard_log_rows_written", "Routing-log rows committed", value=h.written)
        yield CounterMetricFamily("modelyard_log_rows_lost", "Routing-log rows that could not be stored",
                                  value=h.lost)
        yield CounterMetricFamily("modelyard_log_rows_dropped",
                                  "Requests dropped unwritten because the log's queue was full (a stalled disk)",
                                  value=h.dropped)
        yield CounterMetricFamily("modelyard_log_rows_repaired",
                                  "Routing-log rows stored after repairing values SQLite refused", value=h.repaired)
        yield CounterMetricFamily("modelyard_log_write_failures", "Failed routing-log writes, recovered or not",
                                  value=h.failures)
        yield GaugeMetricFamily("modelyard_log_queue_depth", "Routing-log rows waiting to be written", value=h.queued)
        yield GaugeMetricFamily("modelyard_log_rows_held", "Routing-log rows the store refused (disk full, locked), "
                                "held to be written again", value=h.held)
        yield GaugeMetricFamily("modelyard_log_writer_up", "1 while the routing-log writer thread runs",
                                value=1.0 if h.alive else 0.0)
        yield GaugeMetricFamily("modelyard_log_degraded", "1 while the routing log had a failure in the last 5 min "
                                "or its writer is down", value=1.0 if h.degraded else 0.0)


class _Hosted(Collector):
    """What serve hosts besides the API: front-ends borrowing its limits, and the Telegram bot."""

    def __init__(self, status: Callable[[], dict[str, Any]]):
        self.status = status

    def collect(self) -> Iterable[Metric]:
        status = self.status()
        borrowers = len(status["lending"]["borrowers"])
        yield GaugeMetricFamily("modelyard_front_ends", "Front-end processes (ask, chat, telegram) on this machine "
                                "borrowing this gateway's slots and breakers", value=borrowers)
        yield GaugeMetricFamily("modelyard_telegram_up", "1 while the Telegram bot runs inside this process",
                                value=int(status["telegram"] == "running"))


class GatewayMetrics:
    def __init__(self, router: Router, writer: LogWriter | None = None, *, forwarder: Forwarder | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("modelyard_requests", "Finished requests", ["agent", "model", "outcome"], registry=r)
        self.fallbacks = Counter("modelyard_fallbacks", "Attempts that moved on to another try or model",
                                 ["agent", "model", "reason"], registry=r)
        self.queue_wait = Histogram("modelyard_queue_wait_seconds", "Time waiting for a model slot", ["model"],
                                    buckets=_WAIT_BUCKETS, registry=r)
        self.latency = Histogram("modelyard_request_duration_seconds", "Whole request, every attempt included",
                                 ["agent"], buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("modelyard_tokens", "Tokens by direction", ["agent", "model", "direction"], registry=r)
        self.cost = Counter("modelyard_cost_usd", "Spend in USD at configured prices", ["agent", "model"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}
        r.register(_LiveState(router))
        if writer is not None:
            r.register(_LogState(writer))
        if forwarder is not None:
            r.register(_ForwardState(forwarder))

    def watch_hosting(self, status: Callable[[], dict[str, Any]]) -> None:
        """``modelyard serve``: export what :class:`~modelyard.gateway.hosting.Hosting` reports."""
        self.registry.register(_Hosted(status))

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: prometheus_client validates, stringifies and locks on
        every call, and the labels of one gateway (agents x models x outcomes) are few (issue #15)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request (called from the router's sink)."""
        agent, model = record.agent, record.model or ""
        child = self._child
        child(self.requests, agent, model or "none", record.outcome).inc()
        child(self.latency, agent).observe(record.total_ms / 1000)
        for a in record.attempts:
            if a.queue_wait_ms is not None and a.outcome is not AttemptOutcome.SKIPPED:
                child(self.queue_wait, a.model).observe(a.queue_wait_ms / 1000)
            if a.outcome.moved_on:
                child(self.fallbacks, agent, a.model, a.reason or "unknown").inc()
            if a.tokens_in:
                child(self.tokens, agent, a.model, "in").inc(a.tokens_in)
            if a.tokens_out:
                child(self.tokens, agent, a.model, "out").inc(a.tokens_out)
            if a.cost_usd:
                child(self.cost, agent, a.model).inc(a.cost_usd)
