"""Data behind the dashboard page: the routing log, per-agent latency and fallbacks, month-to-date
cost against the all-cloud counterfactual, and live model states.

Reads use a short-lived connection in a worker thread, so a slow disk or database never stalls
the event loop that serves completions (SQLite's WAL lets them read while the writer commits;
with ``log.url`` they read PostgreSQL, every host's requests).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from modelyard.config.schema import Config
from modelyard.ledger.aggregate import FAILED
from modelyard.ledger.cost import log_costs
from modelyard.ledger.queries import recent, stats
from modelyard.ledger.report import month_period
from modelyard.ledger.store import LogConnection, LogStore
from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.router import Router

OUTCOMES = tuple(o.value for o in RequestOutcome)
_LOG_COLUMNS = ("id", "ts", "agent", "model", "outcome", "fallback_reason", "n_attempts", "queue_wait_ms",
                "ttft_ms", "total_ms", "tokens_in", "tokens_out", "cost_usd", "error")


#: the answers the latency timeline draws: the month's latest (its max is theirs, and the page says so)
LATENCY_POINTS = 300
#: the outcomes of a request that was answered (RequestOutcome.answered): the ones the latency timeline times
_ANSWERED = tuple(o.value for o in RequestOutcome if o.answered)
_ANSWERED_IN = ", ".join("?" * len(_ANSWERED))
#: the attempts that moved their request on to the next model, the failures the chart of reasons counts
_TO_NEXT_MODEL = (AttemptOutcome.FALLBACK.value, AttemptOutcome.SKIPPED.value)


def month_start(now: datetime | None = None) -> float:
    """The current UTC month's first second: the month ``report`` and the spend caps count (it was local)."""
    return month_period(None, now).start


def _read(store: LogStore, fn: Any, *args: Any, **kwargs: Any) -> Any:
    conn = store.connect(readonly=True)
    try:
        return fn(conn, *args, **kwargs)
    finally:
        conn.close()


def _log(conn: LogConnection, limit: int, agent: str | None, model: str | None,
         outcome: str | None) -> list[dict[str, Any]]:
    rows = recent(conn, limit, agent=agent, model=model, outcome=outcome)
    return [{k: row[k] for k in _LOG_COLUMNS} for row in rows]


def _summary(conn: LogConnection, config: Config, since: float) -> dict[str, Any]:
    agents: list[dict[str, Any]] = []
    for g in stats(conn, since, by="agent"):
        agents.append({"agent": g.key, "requests": g.requests, "failed": g.failed, "cancelled": g.cancelled,
                       "fallbacks": g.fallbacks,
                       "fallback_rate": g.fallback_rate, "p50_ms": g.p50, "p95_ms": g.p95,
                       "local_share": g.local_share, "reasons": {}})
    by_agent = {a["agent"]: a for a in agents}
    # the attempts of the requests in the window, as every other figure here counts them (by the request's ts): by
    # the attempt's own, a request begun before midnight UTC on the 1st put its later failed attempts in the new
    # month's reasons, under an agent whose requests of the month did not hold it
    for row in conn.execute(
            "SELECT a.agent AS agent, a.reason AS reason, COUNT(*) AS n FROM attempts a JOIN requests r"
            " ON r.id = a.request_id WHERE r.ts >= ? AND a.outcome IN (?, ?)"
            " GROUP BY a.agent, a.reason", (since, *_TO_NEXT_MODEL)):
        if row["agent"] in by_agent:
            by_agent[row["agent"]]["reasons"][row["reason"] or "unknown"] = row["n"]
    # 'served locally': answered by a local model, as report's 'answered locally' (a cancelled request that had begun
    # on one is not, nor counted twice as served and as cancelled)
    unanswered = ", ".join("?" * len(FAILED))
    totals = conn.execute(
        "SELECT COUNT(*) AS n, COALESCE(SUM(tokens_in), 0) AS tin, COALESCE(SUM(tokens_out), 0) AS tout,"
        f" COALESCE(SUM(CASE WHEN is_local = 1 AND outcome NOT IN ({unanswered}) THEN 1 ELSE 0 END), 0) AS local,"
        f" COALESCE(SUM(CASE WHEN outcome IN ({_ANSWERED_IN}) THEN 1 ELSE 0 END), 0) AS timed"
        " FROM requests WHERE ts >= ?", (*FAILED, *_ANSWERED, since)).fetchone()
    # the report's own policy (ledger/cost.py): all-cloud asks each answered request once, a billed model without a
    # price is 'price unknown' (spend a lower bound, savings 'at most'), the local cost counts for the month so far
    month = month_period()  # the local cost: the part of this month gone by
    costs = log_costs(conn, config, since, max(month.end, since), month.months)
    counterfactual = [{"name": c.model, "usd": c.cost_usd, "savings_usd": c.savings_usd, "savings_pct": c.savings_pct,
                       "savings_text": costs.savings_text(c), "requests": c.requests, "tokens_in": c.tokens_in,
                       "tokens_out": c.tokens_out} for c in costs.counterfactuals]
    latency = [dict(r) for r in conn.execute(
        f"SELECT agent, ts, total_ms FROM requests WHERE ts >= ? AND outcome IN ({_ANSWERED_IN})"
        " ORDER BY ts DESC LIMIT ?", (since, *_ANSWERED, LATENCY_POINTS))]
    return {
        "since": since,
        "agents": agents,
        "latency": latency[::-1],
        # the timeline's points are the latest answers, not the month's: the page says "latest N of M" beside its max
        "latency_answered": totals["timed"],
        "cost": {"requests": totals["n"], "local_requests": totals["local"], "tokens_in": totals["tin"],
                 "tokens_out": totals["tout"], "actual_usd": costs.spend_usd,
                 "extra_usd": config.report.electricity_usd_per_month + config.report.hardware_usd_per_month,
                 "local_cost_usd": costs.local_cost_usd, "total_usd": costs.total_usd,
                 "local_cost_set": costs.local_cost_set, "savings_bounded": costs.savings_bounded,
                 "unpriced": costs.to_dict()["unpriced"], "text": costs.texts(),
                 "counterfactual": counterfactual},
    }


def model_states(router: Router) -> list[dict[str, Any]]:
    return [{"name": m.name, "provider": m.provider, "state": m.state, "detail": m.detail, "in_flight": m.in_flight,
             "waiting": m.waiting, "limit": m.limit, "is_local": m.is_local} for m in router.model_states()]


async def log_rows(store: LogStore, *, limit: int = 100, agent: str | None = None, model: str | None = None,
                   outcome: str | None = None) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_read, store, _log, limit, agent, model, outcome)


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Summaries:
    """The month-so-far summary, shared: one read of the log at a time, and a result reused while it is fresh.

    Each open dashboard asks for it every 2 s, and it reads every request of the month (per-agent percentiles):
    at 10,000 requests a day that is 300,000 rows by the month's end, 10–20 s of a worker thread holding the GIL
    against the event loop that serves completions — so one tab kept a core busy for good, and every further tab or
    script polling ``/api/summary`` started another read beside it. Now callers arriving while a read runs wait for
    that read, and a result is reused for ``max(MIN_FRESH, DUTY × how long it took)``: a small log is read at most
    every MIN_FRESH seconds, a large one at most 1/DUTY of the time, however many clients poll. Live model
    states are added to every answer.
    """

    MIN_FRESH = 5.0
    DUTY = 10.0

    def __init__(self, store: LogStore, config: Config, router: Router):
        self.store, self.config, self.router = store, config, router
        self._data: dict[str, Any] | None = None
        self._until = 0.0
        self._reading: asyncio.Future[dict[str, Any]] | None = None
        #: reads of the log made so far (what the tests count)
        self.reads = 0

    async def get(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        data = self._data
        if data is None or loop.time() >= self._until:
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._read())
                self._reading.add_done_callback(_seen)  # a failure all its callers left is not "never retrieved"
            data = await asyncio.shield(self._reading)  # a caller that goes away leaves the read to the others
        return {**data, "models": model_states(self.router)}

    async def _read(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            self.reads += 1
            data = await asyncio.to_thread(_read, self.store, _summary, self.config, month_start())
            took = loop.time() - started
            self._data, self._until = data, loop.time() + max(self.MIN_FRESH, self.DUTY * took)
            return data
        finally:
            self._reading = None
