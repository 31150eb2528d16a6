"""Human-readable renderings of routing records, shared by ask, chat and log."""

from __future__ import annotations

from modelyard.outcomes import AttemptOutcome
from modelyard.router.records import RequestRecord


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f}s" if value >= 10_000 else f"{value:.0f}ms"


def route_line(record: RequestRecord) -> str:
    """``chat → qwen (fallback after claude-haiku: missing_credentials) · wait 0ms · TTFT 300ms · …``"""
    parts = [f"{record.agent} → {record.model or 'nobody'}"]
    detours = [f"{a.model}: {a.reason}" for a in record.attempts if a.outcome is not AttemptOutcome.OK and a.reason]
    if detours:
        parts[0] += f" (after {'; '.join(detours)})"
    parts.append(f"wait {ms(record.queue_wait_ms)}")
    parts.append(f"TTFT {ms(record.ttft_ms)}")
    parts.append(f"total {ms(record.total_ms)}")
    if record.tokens_per_s:
        parts.append(f"{record.tokens_per_s:.1f} tok/s")
    parts.append(f"{record.tokens_in}→{record.tokens_out} tok")
    parts.append(f"${record.cost_usd:.4f}")
    parts.append(f"id {record.id}")
    return " · ".join(parts)
