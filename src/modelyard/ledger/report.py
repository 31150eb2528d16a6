"""The monthly report: what the setup did, what it cost against going all-cloud, and what to change.

Everything comes from the routing log. Definitions (they decide the numbers, so they are fixed here):

- *requests / tokens*: request rows whose ``ts`` is in the period; tokens are the request's (all its
  attempts), a model's those of its own attempts (as its spend: a request's tokens on its answering model put a
  cloud attempt's prompt that broke off on the local model that answered after it). *Local share*: answered
  requests answered by a local model.
- *spend, local cost, unpriced, all-cloud, savings*: :mod:`modelyard.ledger.cost` — one policy shared with the
  dashboard and ``replay``. Spend is attributed to the attempt's model and the request's agent.
- *queue wait per model*: from attempts, so waits that ended in a queue timeout count at full length.
- *servers*: a model name the period shows on several servers (``attempts.backend``: two Ollama boxes serving
  ``qwen2.5:7b``) is a row per server, host:port; a request is its answering attempt's server's. Rows from before
  servers were logged are "unknown server" beside known ones, and a recommendation then names the server and
  never counts them against it. Advice reads only this config's server of a model (another config's model of
  the same name, sharing the log, is its own business). Spend (and the spend caps) stay per name.
- *blame*: a fallback recommendation names the models whose attempts failed **in the log** (an attempt that
  moved the request on or broke off), never the current config's primary by assumption — the log may have
  been written under another config. Where the log's models are not the ones the current config would
  use, the report says so (:class:`ConfigDrift`).
"""

from __future__ import annotations

import calendar
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.config.direct import direct_agent
from modelyard.config.schema import Config, SpendWindow
from modelyard.errors import Reason
from modelyard.ledger import bench_runs, queries
from modelyard.ledger.aggregate import FAILED, FAILED_ATTEMPTS, FEW, Group, Servers, on_server, p95_of, wilson
from modelyard.ledger.cost import Costs, Counterfactual, log_costs, money
from modelyard.ledger.probes import backends_of
from modelyard.ledger.store import LogConnection
from modelyard.outcomes import AttemptOutcome, RequestOutcome
from modelyard.router.spend import window_start

#: recommendation thresholds (documented in the report's output with the numbers that crossed them)
FALLBACK_RATE_ALERT = 0.10
MIN_REQUESTS = 20
QUEUE_RISK_RATIO = 0.8
#: fewer queue waits say nothing; from here to FEW (no p95 yet) the waits near the timeout are counted instead
MIN_WAIT_SAMPLES = 10
MOVE_LOCAL_MIN_RATED = 5
MOVE_LOCAL_ACCEPTABLE = 0.8


@dataclass
class Period:
    start: float
    end: float
    label: str
    #: how many months of fixed local cost (electricity, hardware) this period carries
    months: float


def month_period(month: str | None = None, now: datetime | None = None) -> Period:
    """``YYYY-MM`` as a UTC calendar month; default the current one, to date.

    UTC, as the spend caps count a month (:func:`modelyard.router.spend.window_start`) and as Anthropic's and
    OpenAI's cost reports bucket days: the report of a month is the month a cap and an invoice count, and every
    host sharing a log reads the same one. It was the reader's local month: a request at 01:00 UTC on the 1st,
    the evening before in New York, counted against April's cap and in March's report there."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if month:
        try:
            first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"--month takes a year and a month, like 2026-03: {month!r} is not one") from None
    else:
        first = datetime.fromtimestamp(window_start(SpendWindow.MONTH, now.timestamp()), UTC)
    days = calendar.monthrange(first.year, first.month)[1]
    nxt = first + timedelta(days=days)
    start, end = first.timestamp(), nxt.timestamp()
    covered = (min(end, now.timestamp()) - start) / (end - start)
    return Period(start, end, f"{first:%Y-%m} UTC", max(0.0, min(1.0, covered)))


def calendar_months(start: float, end: float) -> float:
    """How many months ``[start, end)`` spans, each UTC calendar month counted by the share of it covered: the rule
    :func:`month_period` uses, so that every window of every command says "a month" the same way. February 2026 whole
    is 1.0 (a 30-day month read it as 28/30, and ``replay``'s per-month spend over it as 30/28 of what ``report
    --month 2026-02`` showed); 7 days in a 31-day month are 7/31."""
    months = 0.0
    at = datetime.fromtimestamp(start, UTC)
    first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while first.timestamp() < end:
        nxt = first + timedelta(days=calendar.monthrange(first.year, first.month)[1])
        lo, hi = max(start, first.timestamp()), min(end, nxt.timestamp())
        if hi > lo:
            months += (hi - lo) / (nxt.timestamp() - first.timestamp())
        first = nxt
    return months


def utc_moment(text: str) -> float:
    """A date or time as ``--since``/``--until`` take it: UTC unless it carries an offset — as the log stores time and
    ``report --month`` reads months; it was this machine's local time, so the same command read another window on a
    host in another zone. ValueError when it is not an ISO date or time."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def days_period(days: float, now: float | None = None) -> Period:
    if days <= 0:
        raise ValueError("--days must be positive")
    end = now if now is not None else time.time()
    return Period(end - days * 86400, end, f"last {days:g} days", calendar_months(end - days * 86400, end))


@dataclass
class Recommendation:
    kind: str  # fallback_rate | cascade_risk | move_local | tiering | bench
    subject: str
    message: str
    numbers: dict[str, Any]


@dataclass
class ConfigDrift:
    """Where the logged traffic does not match the current config: the log was written under another one."""

    #: models attempted in the period that the current config does not define
    unknown_models: list[str]
    #: agent → the models attempted for it in the period that are not in its current chain
    agents: dict[str, list[str]]

    def __bool__(self) -> bool:
        return bool(self.unknown_models or self.agents)

    def describe(self, config: Config) -> str:
        parts = []
        if self.unknown_models:
            parts.append("models in the log but not in this config: " + ", ".join(self.unknown_models))
        for agent, extra in sorted(self.agents.items()):
            a = config.agents.get(agent)
            chain = " → ".join(a.chain) if a else "no such agent now"
            parts.append(f"agent {agent} used {', '.join(extra)} in the log (current chain: {chain})")
        return "the log's models differ from the current config — " + "; ".join(parts)


@dataclass
class Report:
    period: Period
    totals: Group
    agents: list[Group]
    models: list[Group]
    costs: Costs
    recommendations: list[Recommendation]
    drift: ConfigDrift

    # the cost figures by their old names (scripts and the chart read them)
    @property
    def spend_usd(self) -> float:
        return self.costs.spend_usd

    @property
    def local_cost_usd(self) -> float:
        return self.costs.local_cost_usd

    @property
    def counterfactuals(self) -> list[Counterfactual]:
        return self.costs.counterfactuals

    @property
    def unpriced(self) -> dict[str, list[int]]:
        return self.costs.unpriced

    @property
    def unpriced_agents(self) -> set[str]:
        return self.costs.unpriced_agents

    @property
    def local_cost_set(self) -> bool:
        return self.costs.local_cost_set

    @property
    def total_cost_usd(self) -> float:
        return self.costs.total_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": asdict(self.period),
            "totals": self.totals.summary(),
            "agents": [g.summary() for g in self.agents],
            "models": [g.summary() for g in self.models],
            "cost": self.costs.to_dict(),
            "recommendations": [asdict(r) for r in self.recommendations],
            "config_drift": asdict(self.drift),
        }


def build_report(conn: LogConnection, config: Config, period: Period, *, bench: LogConnection | None = None,
                 revisers: frozenset[str] = frozenset()) -> Report:
    """``bench``: where ``modelyard bench`` wrote its runs (this host's SQLite file), if not ``conn``.
    ``revisers``: agents whose hand-off revises an answer for the person (``agents.topology`` knows which; the log
    layer does not import it)."""
    window = (period.start, period.end)
    totals = Group("all")
    agents: dict[str, Group] = {}
    #: per (model, server): the server only when the period shows the model's name on several (:class:`Servers`)
    models: dict[tuple[str, str | None], Group] = {}
    # local-fallback ratings per agent: answers by a local model after the (cloud) primary failed
    local_fallback: dict[str, Group] = {}
    attempts = conn.execute(
        "SELECT a.request_id, a.seq, a.model, a.agent, a.outcome, a.reason, a.queue_wait_ms, a.cost_usd, a.backend, "
        "a.tokens_in, a.tokens_out, r.n_attempts FROM attempts a JOIN requests r ON r.id = a.request_id "
        "WHERE r.ts >= ? AND r.ts < ?",
        window).fetchall()
    servers = Servers.of((a["model"], a["backend"]) for a in attempts)
    # a request of a model on several servers is its answering attempt's (its last: the writer numbers them so)
    answered_on = {a["request_id"]: a["backend"] for a in attempts
                   if a["model"] in servers.split and a["seq"] == a["n_attempts"] - 1} if servers else {}
    advice = _Advice(backends_of(config), servers)

    def model_group(model: str, backend: str | None) -> Group:
        server = servers.label(model, backend)
        return models.setdefault((model, server), Group(model, server))

    rows = conn.execute("SELECT * FROM requests WHERE ts >= ? AND ts < ? ORDER BY ts", window).fetchall()
    for row in rows:
        served = row["outcome"] not in FAILED and row["model"] is not None
        totals.add(row)
        agents.setdefault(row["agent"], Group(row["agent"])).add(row)
        # a request cancelled mid-answer counts under the model that was answering it, as ``stats`` counts it (the
        # two tables disagreed on the same log); the model failed no one: it shows as cancelled, not failed
        backend = answered_on.get(row["id"])
        if served or (row["outcome"] == RequestOutcome.CANCELLED and row["model"] is not None):
            # model waits and tokens: from its attempts (a request's tokens are all its attempts', a cloud attempt
            # that broke off among them); a row logged without attempts (an old log) says its own
            model_group(row["model"], backend).add(row, wait=False, tokens=not row["n_attempts"])
        if (row["outcome"] == RequestOutcome.FALLBACK and row["is_local"] and row["acceptable"] is not None
                and (key := advice.key(row["model"], backend)) is not None):
            lf = local_fallback.setdefault(row["agent"], Group(row["agent"]))
            lf.rated += 1
            lf.acceptable += int(row["acceptable"])
            lf.reasons[key] += 1

    queue_bounds: dict[Key, float] = {}
    queue_timeouts: Counter = Counter()
    #: agent → (model, server) → reasons of its attempts that failed (what a fallback recommendation blames)
    failing: dict[str, dict[Key, Counter]] = {}
    attempted: dict[str, set[str]] = {}
    #: (model, server) → its queue waits that advice may read (this config's server's)
    advice_waits: dict[Key, list[float]] = {}
    for a in attempts:
        attempted.setdefault(a["agent"], set()).add(a["model"])
        model = model_group(a["model"], a["backend"])
        agent = agents.setdefault(a["agent"], Group(a["agent"]))
        # another config's model of the same name on another server (a shared log): its failures and queue waits
        # are not advice about this config's model; nor, beside known servers, a row whose server was not logged
        key = advice.key(a["model"], a["backend"])
        if _failed_attempt(a["outcome"]):
            if key is not None:
                failing.setdefault(a["agent"], {}).setdefault(key, Counter())[a["reason"] or "unknown"] += 1
            model.failed_attempts += 1
            agent.failed_attempts += 1
            totals.failed_attempts += 1
        model.tokens_in += a["tokens_in"] or 0
        model.tokens_out += a["tokens_out"] or 0
        cost = a["cost_usd"] or 0.0
        totals.spend += cost
        agent.spend += cost
        model.spend += cost
        if a["outcome"] != AttemptOutcome.SKIPPED:
            model.waits.append(a["queue_wait_ms"] or 0.0)  # the table: each row's own server's waits
            if key is not None:
                advice_waits.setdefault(key, []).append(a["queue_wait_ms"] or 0.0)
                # the bound this attempt really had: the router's own rule (agent overrides included)
                bound = config.timeouts_for(a["agent"], a["model"]).queue
                queue_bounds[key] = min(bound, queue_bounds.get(key, bound))
        if a["reason"] == Reason.QUEUE_TIMEOUT and key is not None:
            queue_timeouts[key] += 1
    drift = config_drift(config, attempted)

    costs = log_costs(conn, config, period.start, period.end, period.months)  # the dashboard's own figures

    recs = (_fallback_recommendations(config, agents, failing, drift)
            + _recommendations(config, agents, advice_waits, local_fallback, queue_timeouts, queue_bounds, revisers)
            + _bench_citations(bench or conn, config))
    by_requests = lambda g: (-g.requests, g.key)  # noqa: E731
    return Report(period, totals, sorted(agents.values(), key=by_requests), queries.by_requests(models.values()),
                  costs, recs, drift)


#: what a recommendation is about: a model, and its server when the period shows its name on several
Key = tuple[str, str | None]


@dataclass(frozen=True)
class _Advice:
    """Which attempts a recommendation may read, and under which key."""

    #: this config's server of each of its models (:func:`~modelyard.ledger.probes.backends_of`)
    backends: dict[str, str]
    servers: Servers

    def key(self, model: str | None, backend: str | None) -> Key | None:
        """``(model, server)`` (server None when the model had one), or None when the attempt says nothing about
        this config: another config's model of that name on another server (a shared log), or — beside attempts
        whose server is known — one logged before servers were (its server unknown, it is no specific one's)."""
        if model is None:
            return None
        mine = self.backends.get(model)
        if backend is not None and mine is not None and backend != mine:
            return None
        server = self.servers.label(model, backend)
        if server is not None and backend is None:
            return None
        return (model, server)


def _failed_attempt(outcome: str) -> bool:
    """An attempt that counts against its model (:data:`~modelyard.ledger.aggregate.FAILED_ATTEMPTS`)."""
    return outcome in FAILED_ATTEMPTS


def config_drift(config: Config, attempted: dict[str, set[str]]) -> ConfigDrift:
    """Which logged models the current config would not use (for that agent, or at all)."""
    unknown = sorted({m for models in attempted.values() for m in models} - set(config.models))
    agents = {}
    direct = {direct_agent(m): [m] for m in config.models}  # the gateway's `model:NAME`: a chain of that model
    for agent, models in attempted.items():
        chain = config.agents[agent].chain if agent in config.agents else direct.get(agent, [])
        extra = sorted(models - set(chain))
        if extra:
            agents[agent] = extra
    return ConfigDrift(unknown, agents)


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _fallback_recommendations(config: Config, agents: dict[str, Group], failing: dict[str, dict[Key, Counter]],
                              drift: ConfigDrift) -> list[Recommendation]:
    """Agents whose fallback fired often, blaming the models that failed in the log (most failures first), each on
    its server when the period shows its name on several."""
    recs: list[Recommendation] = []
    for name, g in sorted(agents.items()):
        if g.requests < MIN_REQUESTS or g.fallback_rate < FALLBACK_RATE_ALERT:
            continue
        agent = config.agents.get(name)
        chain = agent.chain if agent else []
        primary = chain[0] if chain else None
        failed = sorted(failing.get(name, {}).items(), key=lambda mc: (-sum(mc[1].values()), mc[0][0], mc[0][1] or ""))
        reasons = ", ".join(f"{r} {n}" for r, n in g.reasons.most_common())
        message = (f"agent {name}: fallback fired on {g.fallbacks} of {g.requests} requests "
                   f"({_pct(g.fallback_rate)}; {reasons})")
        blamed: str | None = None
        blamed_server: str | None = None
        if failed:
            (blamed, blamed_server), blamed_reasons = failed[0]
            message += " — failed in the log: " + "; ".join(
                f"{on_server(*k)} ({', '.join(f'{r} {n}' for r, n in c.most_common())})" for k, c in failed)
            message += " — " + _advice(config, blamed, blamed_reasons.most_common(1)[0][0], chain, blamed_server)
        if name in drift.agents:
            message += (f" — note: the log's models for this agent ({', '.join(drift.agents[name])}) are not in its "
                        f"current chain ({' → '.join(chain) or 'agent not configured now'}); the config changed "
                        "since, so this may already be fixed")
        recs.append(Recommendation(
            "fallback_rate", name, message,
            {"requests": g.requests, "fallbacks": g.fallbacks, "fallback_rate": g.fallback_rate,
             "reasons": dict(g.reasons.most_common()), "primary": primary, "blamed": blamed,
             "blamed_server": blamed_server, "failed_models": {on_server(*k): dict(c.most_common()) for k, c in failed},
             "not_in_chain": drift.agents.get(name, [])}))
    return recs


def _advice(config: Config, model: str, reason: str, chain: list[str], server: str | None = None) -> str:
    """What to do about ``model`` (on ``server``, when named) failing for ``reason``, naming its place in the agent's
    current chain."""
    if chain and model == chain[0]:
        who = f"its primary {on_server(model, server)}"
    elif model in chain:
        who = f"its fallback {on_server(model, server)}"
    elif model in config.models:
        who = f"{on_server(model, server)} (no longer in its chain)"
    else:
        who = f"{on_server(model, server)} (not in the current config)"
    if reason in (Reason.QUEUE_TIMEOUT, Reason.QUEUE_FULL):
        limit = config.models[model].max_concurrent if model in config.models else "?"
        return (f"{who} is saturated: raise its max_concurrent (now {limit}) if memory "
                "allows, add a model to share the load, or move the agent")
    if reason == Reason.SPEND_CAP:
        cap = config.models[model].spend_cap if model in config.models else None
        now = f"now {money(cap.usd)} per {cap.per}" if cap else "no longer in the config"
        return (f"{who} reached its spend cap ({now}): raise the cap if the answers are worth it, "
                "or give the agent a local primary")
    if reason == Reason.STATE_UNREACHABLE:  # not the model's fault: the shared state was out of reach
        limit = config.models[model].max_concurrent if model in config.models else "?"
        return (f"{who} got no slot while the shared state (Redis) was unreachable: each process's share of its "
                f"max_concurrent ({limit}) divided by the instances was 0 — look at Redis (/healthz `state`), or give "
                "it more slots than there are processes, or set state.on_outage")
    if reason in (Reason.MISSING_CREDENTIALS, Reason.AUTH_ERROR, Reason.UNAVAILABLE, Reason.MODEL_MISSING):
        return f"{who} cannot be used ({reason}): fix that or take it out of the chain"
    return f"{who} is unreliable ({reason}): move the agent or add a model"


def _recommendations(config: Config, agents: dict[str, Group], waits: dict[Key, list[float]],
                     local_fallback: dict[str, Group], queue_timeouts: Counter,
                     queue_bounds: dict[Key, float], revisers: frozenset[str] = frozenset()) -> list[Recommendation]:
    recs: list[Recommendation] = []
    for (name, server), samples in sorted(waits.items(), key=lambda kw: (kw[0][0], kw[0][1] or "")):
        if len(samples) < MIN_WAIT_SAMPLES:
            continue
        timeout_ms = queue_bounds[(name, server)] * 1000
        timeouts = queue_timeouts[(name, server)]
        p95 = p95_of(samples)
        if p95 is None:  # 10–19 waits: their "p95" is the slowest one — say the counts, and that they are few
            near = sum(1 for w in samples if w >= QUEUE_RISK_RATIO * timeout_ms)
            if not near:
                continue
            recs.append(Recommendation(
                "cascade_risk", name,
                f"model {on_server(name, server)}: {near} of {len(samples)} attempts waited "
                f"{_pct(QUEUE_RISK_RATIO)} or more of its {timeout_ms / 1000:g}s queue timeout ({timeouts} timed out "
                f"in the queue) — too few to estimate a p95 queue wait ({FEW} attempts needed): if more do, raise "
                "max_concurrent or move an agent off it",
                {"server": server, "queue_wait_p95_ms": None, "queue_timeout_s": timeout_ms / 1000, "ratio": None,
                 "attempts": len(samples), "queue_timeouts": timeouts, "near_timeout": near}))
            continue
        if p95 < QUEUE_RISK_RATIO * timeout_ms:
            continue
        recs.append(Recommendation(
            "cascade_risk", name,
            f"model {on_server(name, server)}: p95 queue wait {p95 / 1000:.1f}s is {_pct(p95 / timeout_ms)} of its "
            f"{timeout_ms / 1000:g}s queue timeout ({timeouts} of {len(samples)} attempts timed out "
            "in the queue) — a little more load and its requests spill onto fallbacks, which then queue too: "
            "raise max_concurrent or move an agent off it",
            {"server": server, "queue_wait_p95_ms": p95, "queue_timeout_s": timeout_ms / 1000,
             "ratio": p95 / timeout_ms, "attempts": len(samples), "queue_timeouts": timeouts}))

    for name, lf in sorted(local_fallback.items()):
        agent = config.agents.get(name)
        if agent is None or not agent.chain or agent.chain[0] not in config.models:
            continue
        if config.models[agent.chain[0]].is_local:
            continue
        if lf.rated < MOVE_LOCAL_MIN_RATED or (lf.acceptable_rate or 0.0) < MOVE_LOCAL_ACCEPTABLE:
            continue
        local_model, local_server = lf.reasons.most_common(1)[0][0]
        spend = agents[name].spend
        low, high = wilson(lf.acceptable, lf.rated)
        recs.append(Recommendation(
            "move_local", name,
            f"agent {name}: {lf.acceptable} of {lf.rated} rated answers from its local fallback "
            f"{on_server(local_model, local_server)} were acceptable ({_pct(lf.acceptable_rate or 0)}; 95% interval "
            f"{_pct(low)}–{_pct(high)} on {lf.rated} ratings) — making {local_model} its primary would have "
            f"saved at most {money(spend)} of cloud spend this period (all of the agent's: what {local_model} "
            "then failed would still go to the cloud)",
            {"rated": lf.rated, "acceptable": lf.acceptable, "acceptable_rate": lf.acceptable_rate,
             "acceptable_ci95": [round(low, 4), round(high, 4)],
             "local_model": local_model, "local_server": local_server, "cloud_spend_usd": spend}))

    for name, agent in sorted(config.agents.items()):
        # an agent that revises (utility) hands the answer on to the person with its edits: the default config's
        # writer → utility was told 'its output is read by utility, not a person' — it is read, revised
        agent_consumers = [c for c in agent.consumers if c in config.agents and c not in revisers]
        primary = agent.chain[0] if agent.chain else None
        if not agent_consumers or primary not in config.models or config.models[primary].is_local:
            continue
        g = agents.get(name)
        if g is None or not g.requests:  # no requests this period: nothing to move, and no spend to save
            continue
        local = [m for m in agent.chain if m in config.models and config.models[m].is_local]
        target = f" (e.g. {local[0]}, already its fallback)" if local else ""
        recs.append(Recommendation(
            "tiering", name,
            f"agent {name}: its output is read by {', '.join(agent_consumers)}, not a person, yet its primary "
            f"{primary} is cloud ({g.requests} requests, {money(g.spend)} this period) — output consumed by "
            f"another agent can run local{target}",
            {"consumers": agent_consumers, "primary": primary, "requests": g.requests, "cloud_spend_usd": g.spend}))
    return recs


def _bench_citations(conn: LogConnection, config: Config) -> list[Recommendation]:
    """Agents whose primary did clearly worse on their own tasks in the latest `modelyard bench` than another
    model measured there (10+ points of passed runs), or was not measured while others passed."""
    run_id = bench_runs.latest_run_id(conn)
    info = bench_runs.run_info(conn, run_id) if run_id else None
    if run_id is None or info is None:
        return []
    counts = bench_runs.pass_counts(conn, run_id)
    when = datetime.fromtimestamp(info[1], UTC).strftime("%Y-%m-%d %H:%M UTC")  # as every time report shows
    recs = []
    for name, agent in sorted(config.agents.items()):
        measured = {m: c for (a, m), c in counts.items() if a == name and c[1]}
        if not measured or not agent.chain:
            continue
        primary = agent.chain[0]
        mine = measured.get(primary)
        floor = (mine[0] / mine[1] + 0.10) if mine else 1e-9
        better = sorted(((m, c) for m, c in measured.items() if m != primary and c[0] / c[1] >= floor),
                        key=lambda mc: (-mc[1][0] / mc[1][1], mc[0]))
        if not better:
            continue
        now = f"its primary {primary} passed {mine[0]}/{mine[1]}" if mine else f"its primary {primary} was not measured"
        names = ", ".join(f"{m} {c[0]}/{c[1]}" for m, c in better[:3])
        recs.append(Recommendation(
            "bench", name,
            f"agent {name}: in the bench of {when} (suite {info[0]}, run {run_id}) {now} of its task runs; "
            f"better: {names} — `modelyard bench --write-config` proposes a chain",
            {"run_id": run_id, "suite": info[0], "primary": primary, "primary_passed": mine,
             "better": {m: list(c) for m, c in better}}))
    return recs
