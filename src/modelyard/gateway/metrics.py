"""Prometheus metrics for one gateway, on its own registry (two apps in a process never collide).

Counters and histograms are fed once per finished request from the router's record (the
same object the routing log stores), so /metrics and the log can never disagree. Live
gauges (in-flight, queue depth, model state) are read from the router at scrape time
instead of being updated on every slot change; with shared state (Redis) they are the whole
system's, from a view at most ``state.refresh`` old, and the store's own health is exported too.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from modelyard.gateway.answer_budget import AnswerBudget
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
        # what /healthz's log.forward says of rows sent altered, as counters: prometheus.io/docs/practices/naming —
        # an accumulating count ends in _total (CounterMetricFamily adds it), a countable thing is no unit
        yield CounterMetricFamily("modelyard_log_forward_nul_replaced_rows",
                                  "Rows sent to PostgreSQL with a NUL character replaced by U+FFFD (its text refuses "
                                  "NUL; the local file keeps it)", value=h.nul_replaced)
        yield CounterMetricFamily("modelyard_log_forward_narrowed_rows",
                                  "Rows sent to PostgreSQL with characters its database encoding lacks replaced by '?'",
                                  value=h.narrowed)
        yield CounterMetricFamily("modelyard_log_forward_undecodable_texts",
                                  "Spool texts that were not UTF-8 (another program wrote them), sent with U+FFFD",
                                  value=h.undecodable)
        yield CounterMetricFamily("modelyard_log_forward_discarded_rows",
                                  "Requests PostgreSQL took without an error but did not keep: a trigger or rule on "
                                  "its table discarded them (kept in the local file only)", value=h.discarded)
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


class _AnswerBuffers(Collector):
    """The answer budget (``gateway.max_answers_mb``), read at scrape time: what /healthz's ``answer_buffers`` says,
    for a Prometheus alert on slow clients holding the gateway's memory or waiting on a spent budget."""

    def __init__(self, budget: AnswerBudget):
        self.budget = budget

    def collect(self) -> Iterable[Metric]:
        b = self.budget
        yield GaugeMetricFamily("modelyard_answer_buffers_budget_bytes", "gateway.max_answers_mb in bytes: the "
                                "answers buffered ahead of slow clients, all connections together", value=b.total)
        yield GaugeMetricFamily("modelyard_answer_buffers_held_bytes", "Bytes of the answer budget held by "
                                "connections for answers their clients have not taken yet", value=b.held)
        yield GaugeMetricFamily("modelyard_answer_buffers_peak_bytes", "The most of the answer budget held at once",
                                value=b.peak)
        yield GaugeMetricFamily("modelyard_answer_buffers_waiting_connections", "Connections whose answer waits on "
                                "their client, its model slot held, because the answer budget is spent",
                                value=b.waiting)
        yield CounterMetricFamily("modelyard_answer_buffers_refused", "Steps of the answer budget refused (an "
                                  "answer then waited on its client)", value=b.refused)


class _Runtime(Collector):
    """What a process running for weeks watches for growth: asyncio tasks on the gateway's event loop and
    threads (with ``process_resident_memory_bytes`` and ``process_open_fds`` from prometheus_client's
    ProcessCollector beside it). Read at scrape time, on the loop's thread; nothing per request."""

    def collect(self) -> Iterable[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # collected off the loop (a test, a thread): the count is the loop's alone
            tasks = None
        if tasks is not None:
            yield GaugeMetricFamily("modelyard_event_loop_tasks", "asyncio tasks alive on the gateway's event loop",
                                    value=tasks)
        yield GaugeMetricFamily("modelyard_threads", "Python threads alive in this process",
                                value=threading.active_count())


class _Counts(Collector):
    """The per-request counters and histograms, kept as plain numbers and exported at scrape time.

    prometheus_client's ``Counter.inc`` and ``Histogram.observe`` take a lock, check the metric's state and
    walk the buckets in Python on every call: the five to seven of them per answered request were ~3.7% of
    ``serve``'s instructions per request at 50 clients (issue #15). Here a request adds to numbers in dicts
    (one thread, the event loop's, writes them; a scrape reads them on the same loop) and the samples are
    built when /metrics asks, exactly as prometheus_client writes them (``_total``/``_created``,
    cumulative ``_bucket`` with ``le``, ``_count``, ``_sum``).
    """

    def __init__(self) -> None:
        #: per family: labels -> [value, created]
        self.requests: dict[tuple[str, ...], list[float]] = {}
        self.fallbacks: dict[tuple[str, ...], list[float]] = {}
        self.tokens: dict[tuple[str, ...], list[float]] = {}
        self.cost: dict[tuple[str, ...], list[float]] = {}
        #: per family: label -> [count per bucket..., sum, created]
        self.queue_wait: dict[str, list[float]] = {}
        self.latency: dict[str, list[float]] = {}

    def collect(self) -> Iterable[Metric]:
        created = prometheus_metrics._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES, disable_created_metrics()
        yield _counter("modelyard_requests", "Finished requests", ("agent", "model", "outcome"), self.requests,
                       created)
        yield _counter("modelyard_fallbacks", "Attempts that moved on to another try or model",
                       ("agent", "model", "reason"), self.fallbacks, created)
        yield _histogram("modelyard_queue_wait_seconds", "Time waiting for a model slot", "model", _WAIT_BOUNDS,
                         self.queue_wait, created)
        yield _histogram("modelyard_request_duration_seconds", "Whole request, every attempt included", "agent",
                         _LATENCY_BOUNDS, self.latency, created)
        yield _counter("modelyard_tokens", "Tokens by direction", ("agent", "model", "direction"), self.tokens,
                       created)
        yield _counter("modelyard_cost_usd", "Spend in USD at configured prices", ("agent", "model"), self.cost,
                       created)


_WAIT_BOUNDS = (*_WAIT_BUCKETS, math.inf)
_LATENCY_BOUNDS = (*_LATENCY_BUCKETS, math.inf)
#: attempt outcomes that moved on to another try or model (``AttemptOutcome.moved_on``, without its call)
_MOVED_ON = frozenset(o for o in AttemptOutcome if o.moved_on)


def _counter(name: str, doc: str, labelnames: tuple[str, ...], values: dict[tuple[str, ...], list[float]],
             created: bool) -> Metric:
    family = Metric(name, doc, "counter")
    for key, (value, at) in list(values.items()):
        labels = dict(zip(labelnames, map(str, key), strict=True))
        family.add_sample(name + "_total", labels, value)
        if created:
            family.add_sample(name + "_created", labels, at)
    return family


def _histogram(name: str, doc: str, labelname: str, bounds: tuple[float, ...], values: dict[str, list[float]],
               created: bool) -> Metric:
    family = Metric(name, doc, "histogram")
    n = len(bounds)
    for key, counts in list(values.items()):
        labels = {labelname: str(key)}
        total = 0.0
        for bound, count in zip(bounds, counts[:n], strict=True):
            total += count
            family.add_sample(name + "_bucket", {**labels, "le": floatToGoString(bound)}, total)
        family.add_sample(name + "_count", labels, total)
        family.add_sample(name + "_sum", labels, counts[n])
        if created:
            family.add_sample(name + "_created", labels, counts[n + 1])
    return family


def _bump(values: dict[Any, list[float]], key: Any, amount: float) -> None:
    entry = values.get(key)
    if entry is None:
        entry = values[key] = [0, time.time()]
    entry[0] += amount


def _observe(values: dict[Any, list[float]], key: Any, bounds: tuple[float, ...], amount: float) -> None:
    entry = values.get(key)
    if entry is None:  # a count per bucket (the first bound at or above the amount), the sum, when it was made
        entry = values[key] = [0] * len(bounds) + [0.0, time.time()]
    entry[bisect_left(bounds, amount)] += 1
    entry[-2] += amount


class GatewayMetrics:
    def __init__(self, router: Router, writer: LogWriter | None = None, *, forwarder: Forwarder | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.counts = _Counts()
        r.register(self.counts)
        r.register(_LiveState(router))
        r.register(_Runtime())
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_open_fds, ... (Linux only: /proc)
        if writer is not None:
            r.register(_LogState(writer))
        if forwarder is not None:
            r.register(_ForwardState(forwarder))

    def watch_hosting(self, status: Callable[[], dict[str, Any]]) -> None:
        """``modelyard serve``: export what :class:`~modelyard.gateway.hosting.Hosting` reports."""
        self.registry.register(_Hosted(status))

    def watch_answers(self, budget: AnswerBudget) -> None:
        """Export the answer budget's state (``modelyard_answer_buffers_*``)."""
        self.registry.register(_AnswerBuffers(budget))

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request (called from the router's sink, on the event loop's thread)."""
        counts = self.counts
        agent = record.agent
        _bump(counts.requests, (agent, record.model or "none", record.outcome), 1)
        _observe(counts.latency, agent, _LATENCY_BOUNDS, record.total_ms / 1000)
        for a in record.attempts:
            outcome = a.outcome
            if a.queue_wait_ms is not None and outcome is not AttemptOutcome.SKIPPED:
                _observe(counts.queue_wait, a.model, _WAIT_BOUNDS, a.queue_wait_ms / 1000)
            if outcome in _MOVED_ON:
                _bump(counts.fallbacks, (agent, a.model, a.reason or "unknown"), 1)
            if a.tokens_in:
                _bump(counts.tokens, (agent, a.model, "in"), a.tokens_in)
            if a.tokens_out:
                _bump(counts.tokens, (agent, a.model, "out"), a.tokens_out)
            if a.cost_usd:
                _bump(counts.cost, (agent, a.model), a.cost_usd)
