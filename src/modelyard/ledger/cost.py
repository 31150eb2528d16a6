"""What the setup cost against going all-cloud: the one policy ``report``, the dashboard and ``replay`` count by.

Each of them once had its own copy, and the copies drifted: the dashboard priced every attempt's tokens for
all-cloud (a request that failed on the cloud and was answered locally counted twice) and showed a billed model
without a price as free. The rules, fixed here:

- *spend*: the sum of ``cost_usd`` over **attempts** (a failed attempt that consumed tokens was billed too).
- *unpriced*: attempts on a billed (hosted) backend that logged tokens at a cost of 0 — the model had no
  ``price`` in the config. Spend is then a lower bound (``$0.00+?``), said as "price unknown", never as free.
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
from collections.abc import Hashable
from dataclasses import asdict, dataclass, field

from modelyard import registry
from modelyard.config.schema import Config
from modelyard.ledger.aggregate import FAILED
from modelyard.ledger.store import LogConnection
from modelyard.router.records import RequestRecord


def money(usd: float) -> str:
    """$1,234.50 / $0.0140 / -$0.09 / $0.000010: cents for real money, more digits for the small sums of
    light use, and never $0.0000 or an exponent for a sum that is not zero (a cap of $0.00001 read "$1e-05")."""
    sign = "-" if usd < 0 else ""
    usd = abs(usd)
    if usd >= 1 or usd == 0:
        return f"{sign}${usd:,.2f}"
    return f"{sign}${usd:.{max(4, 1 - math.floor(math.log10(usd)))}f}"


@functools.lru_cache(maxsize=64)
def _hosted(provider: str) -> bool:
    return registry.is_hosted(provider)


def billed_at_zero(provider: str | None, cost_usd: float | None, tokens_in: int | None, tokens_out: int | None) -> bool:
    """An attempt a billed (hosted) backend answered with tokens, logged at $0: the model has no ``price`` in the
    config, so what it cost is unknown — not free."""
    return not cost_usd and bool(tokens_in or tokens_out) and _hosted(provider or "")


def spend_cell(usd: float, unpriced: bool) -> str:
    """A spend as a table cell: ``$0.35``, or with some attempts unpriced ``price unknown`` / ``$0.35 + price
    unknown`` (``report``, ``stats``, ``log`` and the route line say it alike)."""
    if not unpriced:
        return money(usd)
    return f"{money(usd)} + price unknown" if usd else "price unknown"


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
    """Counts one period's attempts and requests into :class:`Costs`: from log rows (:meth:`attempt` for each of a
    request's attempts, then :meth:`request`, which takes its answering attempt's tokens from them) or from the
    router's records (:meth:`record`, what replay's simulation finishes)."""

    spend_usd: float = 0.0
    unpriced: dict[str, list[int]] = field(default_factory=dict)
    unpriced_agents: set[str] = field(default_factory=set)
    answered: int = 0
    answered_local: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    #: request → (seq, tokens in, tokens out) of its latest attempt so far: the one that answered an answered request
    _last: dict[Hashable, tuple[int, int, int]] = field(default_factory=dict)

    def _count(self, model: str, provider: str | None, agent: str, cost: float, tin: int, tout: int) -> None:
        if billed_at_zero(provider, cost, tin, tout):
            u = self.unpriced.setdefault(model, [0, 0, 0])
            u[0], u[1], u[2] = u[0] + 1, u[1] + tin, u[2] + tout
            self.unpriced_agents.add(agent)
        self.spend_usd += cost

    def _answer(self, local: bool, tin: int, tout: int) -> None:
        self.answered += 1
        self.answered_local += int(local)
        self.tokens_in += tin
        self.tokens_out += tout

    def attempt(self, request_id: Hashable, seq: int, *, model: str, provider: str | None, agent: str,
                cost_usd: float | None, tokens_in: int | None, tokens_out: int | None) -> float:
        """Count one attempt (a log row); return its cost (0 for none logged)."""
        tin, tout, cost = tokens_in or 0, tokens_out or 0, cost_usd or 0.0
        if (prev := self._last.get(request_id)) is None or seq > prev[0]:
            self._last[request_id] = (seq, tin, tout)
        self._count(model, provider, agent, cost, tin, tout)
        return cost

    def request(self, request_id: Hashable, *, answered: bool, local: bool, tokens_in: int | None,
                tokens_out: int | None) -> None:
        """Count one request (a log row) after its attempts. ``tokens_*``: the request's own, used only when no
        attempt of it was fed (an old log's request without attempt rows)."""
        answer = self._last.pop(request_id, None)
        if answered:
            self._answer(local, answer[1] if answer else tokens_in or 0, answer[2] if answer else tokens_out or 0)

    def record(self, r: RequestRecord, *, answered: bool, local: bool) -> None:
        """Count one finished request with its attempts (the router's record): its last attempt answered it."""
        for a in r.attempts:
            self._count(a.model, a.provider, r.agent, a.cost_usd, a.tokens_in, a.tokens_out)
        if answered:
            last = r.attempts[-1] if r.attempts else r
            self._answer(local, last.tokens_in, last.tokens_out)

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
                     set(self.unpriced_agents), counterfactuals)


def log_costs(conn: LogConnection, config: Config, start: float, end: float, months: float) -> Costs:
    """The costs of the requests logged in ``[start, end)`` (the dashboard's month so far). Reads the columns it
    needs only — never the texts."""
    tally = CostTally()
    window = (start, end)
    for a in conn.execute("SELECT a.request_id, a.seq, a.model, a.provider, a.agent, a.cost_usd, a.tokens_in,"
                          " a.tokens_out FROM attempts a JOIN requests r ON r.id = a.request_id"
                          " WHERE r.ts >= ? AND r.ts < ?", window):
        tally.attempt(a["request_id"], a["seq"], model=a["model"], provider=a["provider"], agent=a["agent"],
                      cost_usd=a["cost_usd"], tokens_in=a["tokens_in"], tokens_out=a["tokens_out"])
    for r in conn.execute("SELECT id, outcome, model, is_local, tokens_in, tokens_out FROM requests"
                          " WHERE ts >= ? AND ts < ?", window):
        tally.request(r["id"], answered=r["outcome"] not in FAILED and r["model"] is not None,
                      local=bool(r["is_local"]), tokens_in=r["tokens_in"], tokens_out=r["tokens_out"])
    return tally.costs(config, months)
