"""Human-readable renderings of routing records, shared by ask, chat and log, and tables that fit the terminal."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from modelyard.ledger.aggregate import FEW, has_p95  # a rate as a count below FEW (used here, re-exported)
from modelyard.ledger.cost import billed_at_zero, request_cost, spend_cell
from modelyard.outcomes import AttemptOutcome
from modelyard.router.records import RequestRecord


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f}s" if value >= 10_000 else f"{value:.0f}ms"


def share(part: int, whole: int) -> str:
    """``part`` of ``whole``: a percentage, or the count itself when ``whole`` is small (1 of 2 read '50%')."""
    if not whole:
        return "–"
    return f"{part}/{whole}" if whole < FEW else f"{part / whole:.0%}"


def p95_cell(value: float | None, n: int) -> str:
    """A p95 of ``n`` samples, '–' when they are too few to have one."""
    return ms(value) if has_p95(n) else "–"


def usd(value: float) -> str:
    """$2.00 · $0.50 · $0.0031 · $0.000010: two significant digits below a dollar, so a small sum spent is not
    shown as $0.00 (a cap of $0.003 read "over its spend cap: $0.00 spent"), and never an exponent."""
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.{max(2, 1 - math.floor(math.log10(abs(value))))}f}"


def plain(value: float) -> str:
    """A number as written in a config: 2, 0.003, 0.00001 (``:g`` gave 1e-05)."""
    return f"{value:f}".rstrip("0").rstrip(".")


def route_line(record: RequestRecord) -> str:
    """``chat → qwen (fallback after claude-haiku: missing_credentials) · wait 0ms · TTFT 300ms · …``"""
    # stopped before its first token, the request has no model yet; the one it was asking is said ("nobody" read
    # as if no model had been tried)
    asked = next((a.model for a in record.attempts[-1:] if a.outcome is AttemptOutcome.CANCELLED), None)
    parts = [f"{record.agent} → {record.model or asked or 'nobody'}"]
    # the tries it moved on from; not the answering one a Ctrl-C cut ("qwen (after qwen: cancelled)")
    detours = [f"{a.model}: {a.reason}" for a in record.attempts if a.outcome.moved_on and a.reason]
    if detours:  # a retry that failed the same way is one detour, counted: "llama: connect_error ×2"
        runs = [(d, len(list(same))) for d, same in itertools.groupby(detours)]
        parts[0] += f" (after {'; '.join(d if n == 1 else f'{d} ×{n}' for d, n in runs)})"
    if not record.outcome.answered:
        parts.append(str(record.outcome).upper())
    parts.append(f"wait {ms(record.queue_wait_ms)}")
    parts.append(f"TTFT {ms(record.ttft_ms)}")
    parts.append(f"total {ms(record.total_ms)}")
    if record.tokens_per_s:
        parts.append(f"{record.tokens_per_s:.1f} tok/s")
    elif record.tokens_out > 1 and record.outcome.answered:  # no figure to give (router/speed.py), not a made-up one
        parts.append("— tok/s")
    parts.append(f"{record.tokens_in}→{record.tokens_out} tok")
    if note := next((a.detail for a in record.attempts if a.outcome is AttemptOutcome.OK and a.detail), ""):
        parts.append(note)
    if record.truncated and record.context_full:  # not the budget: the prompt and answer filled the context
        parts.append("TRUNCATED: the model's context is full")
    elif record.truncated:  # the budget really sent: a clamped one is said in the note before it
        budget = f"={record.max_tokens}" if record.max_tokens else ""
        parts.append(f"TRUNCATED at max_tokens{budget}")
    # a billed model without a price logged $0: not free ('price unknown', as `report` says it)
    unpriced = any(billed_at_zero(a.provider, a.cost_usd, a.tokens_in, a.tokens_out, a.billed) for a in record.attempts)
    parts.append(spend_cell(record.cost_usd, True) if unpriced else request_cost(record.cost_usd))
    parts.append(f"id {record.id}")
    return " · ".join(parts)


@dataclass(frozen=True)
class Column:
    """A table column that is shown whole or not at all (see :func:`fit_table`)."""

    name: str
    #: lower is kept first when the terminal is narrow
    priority: int
    justify: JustifyMethod = "left"
    #: takes the width left over (text ellipsised), shown only when at least ``min_width`` is left
    flexible: bool = False
    min_width: int = 12
    #: a flexible column whose text wraps onto more lines instead of ending in "…"
    wrap: bool = False


#: what separates two columns in :func:`fit_table`'s light box (no outer edges): padding, rule, padding
_GAP = 3


def fit_table(columns: list[Column], rows: list[dict[str, str]], width: int,
              row_styles: list[str | None] | None = None) -> Table:
    """A table of the columns (given in display order) that fit ``width`` whole, chosen by priority:
    a narrow terminal loses whole columns rather than getting every column squeezed to a few
    unreadable characters. The box is light (a rule under the header, none around) to leave the
    text the room."""
    room = width + _GAP  # the first column pays no gap
    widths: dict[str, int] = {}
    for col in sorted(columns, key=lambda c: c.priority):
        natural = max([cell_len(col.name), *(cell_len(r.get(col.name, "")) for r in rows)])
        if col.flexible:
            left = room - _GAP
            if left < min(natural, col.min_width):
                continue
            natural = min(natural, left)
        elif natural + _GAP > room:
            continue
        widths[col.name] = natural
        room -= natural + _GAP
    shown = [c for c in columns if c.name in widths]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    for col in shown:
        table.add_column(col.name, justify=col.justify, no_wrap=not col.wrap,
                         overflow="fold" if col.wrap else "ellipsis", max_width=widths[col.name])
    for row, style in zip(rows, row_styles or [None] * len(rows), strict=True):
        table.add_row(*(Text(row.get(col.name, "")) for col in shown), style=style)
    return table


def left_out(columns: list[Column], table: Table) -> str | None:
    """The line under a :func:`fit_table` that lost columns: which, and where every figure still is."""
    shown = {str(col.header) for col in table.columns}
    names = [c.name or "name" for c in columns if c.name not in shown]
    return f"(too narrow for: {', '.join(names)}; --json has every figure)" if names else None
