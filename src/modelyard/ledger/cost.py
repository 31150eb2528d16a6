"""What the setup cost against going all-cloud: the one policy ``report``, the dashboard and ``replay`` count by.

Each of them once had its own copy, and the copies drifted: the dashboard priced every attempt's tokens for
all-cloud (a request that failed on the cloud and was answered locally counted twice) and showed a billed model
without a price as free. The rules, fixed here:

- *spend*: the sum of ``cost_usd`` over **attempts** (a failed attempt that consumed tokens was billed too).
- *unpriced*: attempts on a billed (hosted) backend that logged tokens at a cost of 0 — the model had no
  ``price`` in the config. Spend is then a lower bound (``$0.00+?``), said as "price unknown", never as free.
  Billed is a property of the **server** an attempt went to (``attempts.backend``), not of the model's name: one name
  on a cloud API and on a local relay (two configs sharing a log, an endpoint moved) had the local relay's free
  attempts called "price unknown" under the cloud config, and the cloud's unpriced ones called free under the other
  (:class:`Billing`).
- *local cost*: config ``report.electricity_usd_per_month + hardware_usd_per_month`` times the months the period
  covers. When local models answered and both are 0, the local cost is *not set*, not $0.00.
- *all-cloud (counterfactual)*: each **answered** request asked once of each ``report.counterfactual`` model, at
  its answering attempt's tokens (not those of attempts that failed before it: an all-cloud setup would not have
  made them), as the answering model counted them.
- *savings* = all-cloud − (spend + local cost); "at most" when spend is a lower bound or the local cost not set.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

from modelyard import registry
from modelyard.config.billed import billed_endpoint
from modelyard.config.schema import Config
from modelyard.ledger.aggregate import FAILED, UNKNOWN_SERVER, server_label
from modelyard.ledger.probes import backends_of
from modelyard.ledger.store import LogConnection
from modelyard.router.records import RequestRecord


def money(usd: float) -> str:
    """$1,234.50 / $0.0140 / -$0.09 / $0.000010: cents for real money, more digits for the small sums of
    light use, and never $0.0000 or an exponent for a sum that is not zero (a cap of $0.00001 read "$1e-05")."""
    sign = "-" if usd < 0 else ""
    usd = abs(usd)
    # a sum that rounds to a dollar at four decimals is written as dollars ($0.99996 read "$1.0000")
    if usd >= 0.99995 or usd == 0:
        return f"{sign}${usd:,.2f}"
    return f"{sign}${usd:.{max(4, 1 - math.floor(math.log10(usd)))}f}"


@functools.lru_cache(maxsize=64)
def _hosted(provider: str) -> bool:
    return registry.is_hosted(provider)


def billed_at_zero(provider: str | None, cost_usd: float | None, tokens_in: int | None, tokens_out: int | None,
                   billed: bool = False) -> bool:
    """An attempt a billed backend answered with tokens, logged at $0: the model has no ``price`` in the config, so
    what it cost is unknown — not free. ``billed``: the model is billed whatever its provider (config/billed.py)."""
    return not cost_usd and bool(tokens_in or tokens_out) and (billed or _hosted(provider or ""))


@dataclass(frozen=True)
class Billing:
    """Which logged attempts went to a billed server: a hosted provider, an endpoint of a paid API
    (:func:`~modelyard.config.billed.billed_endpoint`, read from the attempt's ``backend``), or this config's billed
    model on its own server. An attempt logged before servers were kept (no ``backend``) goes by the name, as before."""

    #: this config's billed models → the server each is on here (:func:`~modelyard.ledger.probes.backend_of`)
    here: dict[str, str]

    @classmethod
    def of(cls, config: Config) -> Billing:
        billed = {name for name, m in config.models.items() if m.billed}
        if not billed:
            return cls({})
        backends = backends_of(config)
        return cls({name: backends[name] for name in billed})

    def billed(self, model: str | None, provider: str | None, backend: str | None) -> bool:
        if _hosted(provider or ""):
            return True
        if not backend:
            return model in self.here
        endpoint = backend.split(" ")[1] if backend.count(" ") >= 2 else ""
        return billed_endpoint(endpoint) or self.here.get(model or "") == backend


#: what a billed model's cost is when it has no ``price``: said so, never as $0 (every figure below words it so)
PRICE_UNKNOWN = "price unknown"


def request_cost(usd: float) -> str:
    """One request's cost in the route line and ``log``: four decimals as ever (``$0.0000`` for a local answer), and
    the digits of :func:`money` for a billed one under a tenth of a cent — a Claude Haiku "hello" ($0.000039) read
    ``$0.0000``, the cost of a local model's answer, beside "wait 0ms … 14→5 tok"."""
    return money(usd) if 0 < usd < 0.001 else f"${usd:.4f}"


def spend_cell(usd: float, unpriced: bool) -> str:
    """A spend as a table cell: ``$0.35``, or with some attempts unpriced ``price unknown`` / ``$0.35 + price
    unknown`` (``report``, ``stats``, ``log`` and the route line say it alike)."""
    if not unpriced:
        return money(usd)
    return f"{money(usd)} + {PRICE_UNKNOWN}" if usd else PRICE_UNKNOWN


@dataclass
class Counterfactual:
    model: str
    input_usd_per_m: float
    output_usd_per_m: float
    cost_usd: float
    savings_usd: float
    savings_pct: float | None
    #: the answered requests whose answering attempt's tokens it prices
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass
class Costs:
    """The cost figures of one period, and how to say them truthfully."""

    spend_usd: float
    local_cost_usd: float
    #: False when local models answered but the config sets no electricity or hardware cost
    local_cost_set: bool
    #: model → [attempts, tokens in, tokens out] billed by a hosted backend but logged at $0 (no price configured)
    unpriced: dict[str, list[int]]
    #: agents with such attempts: their spend is a lower bound
    unpriced_agents: set[str]
    counterfactuals: list[Counterfactual]
    #: model → the servers (``attempts.backend``; None: not logged) of its unpriced attempts
    unpriced_servers: dict[str, set[str | None]] = field(default_factory=dict)

    def unpriced_on(self, model: str, server: str | None) -> bool:
        """Whether the row of ``model`` on ``server`` (a label of :class:`~modelyard.ledger.aggregate.Servers`; None:
        the name had one server) has unpriced attempts: the cloud's "price unknown" is not the local relay's."""
        if model not in self.unpriced:
            return False
        if server is None:
            return True
        return any(server in ((UNKNOWN_SERVER,) if b is None else (server_label(b), b))
                   for b in self.unpriced_servers.get(model, {None}))

    @property
    def total_usd(self) -> float:
        return self.spend_usd + self.local_cost_usd

    @property
    def savings_bounded(self) -> bool:
        """Savings are an upper bound: part of the spend is unpriced or the local cost is not set."""
        return bool(self.unpriced) or not self.local_cost_set

    def spend_text(self, scale: float = 1.0) -> str:
        """``$0.35`` or ``$0.35+?`` when some billed attempts have no price (``scale``: e.g. to a month)."""
        return money(self.spend_usd * scale) + ("+?" if self.unpriced else "")

    def local_text(self) -> str:
        return money(self.local_cost_usd) if self.local_cost_set else "not set"

    def total_text(self) -> str:
        return money(self.total_usd) + ("+?" if self.savings_bounded else "")

    def savings_text(self, c: Counterfactual) -> str:
        pct = f"{c.savings_pct:.0f}%" if c.savings_pct is not None else "–"
        saved = f"{money(c.savings_usd)} ({pct})"
        return f"at most {saved}" if self.savings_bounded else saved

    def unpriced_text(self) -> str:
        """``haiku (3 attempts, 3,000/1,500 tokens), …`` or ''."""
        return ", ".join(f"{m} ({a} attempt{'s' if a != 1 else ''}, {i:,}/{o:,} tokens)"
                         for m, (a, i, o) in sorted(self.unpriced.items()))

    def warnings(self) -> list[str]:
        """What makes the figures bounds, in words (empty when they are exact)."""
        out = []
        if not self.local_cost_set:
            out.append("local cost not set: local models answered, but report.electricity_usd_per_month and "
                       "hardware_usd_per_month are 0 — the savings leave out what the local machine costs to run")
        if self.unpriced:
            out.append(f"price unknown: {self.unpriced_text()} — a billed model without a price in the config was "
                       "logged at $0; set its price (USD per million tokens) to count it")
        return out

    def to_dict(self) -> dict[str, object]:
        return {"cloud_spend_usd": self.spend_usd, "local_cost_usd": self.local_cost_usd,
                "total_usd": self.total_usd, "counterfactuals": [asdict(c) for c in self.counterfactuals],
                "unpriced": {m: {"attempts": a, "tokens_in": i, "tokens_out": o}
                             for m, (a, i, o) in sorted(self.unpriced.items())},
                "unpriced_agents": sorted(self.unpriced_agents), "local_cost_set": self.local_cost_set}

    def texts(self) -> dict[str, object]:
        """The figures as shown (the dashboard shows these; they are the report's words)."""
        return {"spend": self.spend_text(), "local": self.local_text(), "total": self.total_text(),
                "savings": {c.model: self.savings_text(c) for c in self.counterfactuals},
                "warnings": self.warnings()}


@dataclass
class CostTally:
    """Counts one period into :class:`Costs`: from the routing log (:func:`log_costs`, in SQL) or from the router's
    records as they finish (:meth:`record`, what replay's simulation produces)."""

    spend_usd: float = 0.0
    unpriced: dict[str, list[int]] = field(default_factory=dict)
    unpriced_agents: set[str] = field(default_factory=set)
    unpriced_servers: dict[str, set[str | None]] = field(default_factory=dict)
    answered: int = 0
    answered_local: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    def _unpriced(self, model: str, agent: str, attempts: int, tin: int, tout: int,
                  backend: str | None = None) -> None:
        u = self.unpriced.setdefault(model, [0, 0, 0])
        u[0], u[1], u[2] = u[0] + attempts, u[1] + tin, u[2] + tout
        self.unpriced_agents.add(agent)
        self.unpriced_servers.setdefault(model, set()).add(backend or None)

    def record(self, r: RequestRecord, *, answered: bool, local: bool) -> None:
        """Count one finished request with its attempts: its last attempt is the one that answered it."""
        for a in r.attempts:
            if billed_at_zero(a.provider, a.cost_usd, a.tokens_in, a.tokens_out, a.billed):
                self._unpriced(a.model, r.agent, 1, a.tokens_in, a.tokens_out)
            self.spend_usd += a.cost_usd
        if answered:
            last = r.attempts[-1] if r.attempts else r
            self.answered += 1
            self.answered_local += int(local)
            self.tokens_in += last.tokens_in
            self.tokens_out += last.tokens_out

    def costs(self, config: Config, months: float) -> Costs:
        """The figures, with the local cost for ``months`` of the config's fixed costs."""
        fixed = config.report.electricity_usd_per_month + config.report.hardware_usd_per_month
        local_cost = fixed * months
        counterfactuals = []
        for name, price in config.report.counterfactual.items():
            cf = (self.tokens_in * price.input + self.tokens_out * price.output) / 1e6
            saved = cf - (self.spend_usd + local_cost)
            counterfactuals.append(Counterfactual(name, price.input, price.output, cf, saved,
                                                  saved / cf * 100 if cf else None, self.answered,
                                                  self.tokens_in, self.tokens_out))
        return Costs(self.spend_usd, local_cost, bool(fixed) or not self.answered_local, dict(self.unpriced),
                     set(self.unpriced_agents), counterfactuals,
                     {m: set(b) for m, b in self.unpriced_servers.items()})


#: the requests whose attempts :func:`log_costs` reads: several attempts (the answering one is not the request), or
#: a cloud answer logged at $0 (a price may be unknown); every other request's own row says all (its one attempt's
#: cost and tokens), and a lookup per request doubled the dashboard's read
_ATTEMPTS_NEEDED = ("r.n_attempts > 1 OR (COALESCE(r.cost_usd, 0) = 0 AND (r.tokens_in > 0 OR r.tokens_out > 0)"
                    " AND COALESCE(r.is_local, 0) = 0)")


def log_costs(conn: LogConnection, config: Config, start: float, end: float, months: float) -> Costs:
    """The costs of the requests logged in ``[start, end)``, summed by the database in one pass (the dashboard reads
    the month so far every few seconds). A request's answering attempt is its last, ``seq = n_attempts - 1`` (the
    writer numbers them so); a request logged without attempt rows, as an old log may hold, counts its own row."""
    tally = CostTally()
    # provider: openai pointed at a paid API (OpenRouter, Groq…) is billed too — on that server, not by its name
    billing = Billing.of(config)
    failed = ", ".join("?" * len(FAILED))
    for g in conn.execute(
            "SELECT a.model AS model, a.agent AS agent, a.provider AS provider, a.backend AS backend,"
            " CASE WHEN (a.seq IS NULL OR a.seq = r.n_attempts - 1) AND r.model IS NOT NULL"
            f" AND r.outcome NOT IN ({failed}) THEN 1 ELSE 0 END AS answering,"
            " CASE WHEN r.is_local = 1 THEN 1 ELSE 0 END AS on_local,"
            " CASE WHEN a.seq IS NOT NULL AND COALESCE(a.cost_usd, 0) = 0 AND (a.tokens_in > 0 OR a.tokens_out > 0)"
            " THEN 1 ELSE 0 END AS at_zero, COUNT(*) AS n, COALESCE(SUM(COALESCE(a.cost_usd, r.cost_usd)), 0) AS cost,"
            " COALESCE(SUM(COALESCE(a.tokens_in, r.tokens_in)), 0) AS tin,"
            " COALESCE(SUM(COALESCE(a.tokens_out, r.tokens_out)), 0) AS tout"
            f" FROM requests r LEFT JOIN attempts a ON a.request_id = r.id AND ({_ATTEMPTS_NEEDED})"
            " WHERE r.ts >= ? AND r.ts < ? GROUP BY 1, 2, 3, 4, 5, 6, 7", (*FAILED, start, end)):
        n, tin, tout = int(g["n"]), int(g["tin"]), int(g["tout"])
        tally.spend_usd += float(g["cost"])
        if g["answering"]:
            tally.answered += n
            tally.answered_local += n if g["on_local"] else 0
            tally.tokens_in += tin
            tally.tokens_out += tout
        if g["at_zero"] and billing.billed(g["model"], g["provider"], g["backend"]):
            tally._unpriced(g["model"], g["agent"], n, tin, tout, g["backend"])
    return tally.costs(config, months)
