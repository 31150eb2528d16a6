"""The report as one image: traffic per agent (local vs cloud), latency, and cost against all-cloud.

matplotlib with the Agg backend (no display needed); the file suffix picks PNG or SVG.

Every panel is a horizontal bar chart: names sit one per row on the left, so a long agent or model
name (``claude-sonnet-4-5-20250929``) takes margin, never its neighbour's place — rotated labels under
vertical bars overlapped as soon as names grew. Names longer than :data:`LABEL_CHARS` are shortened
with an ellipsis. Cancelled requests (the caller went away) are drawn apart from failed ones. Latency per model
has a bar per server when the period shows a model's name on several (``qwen2.5:7b @ gpu-b:11434``): the slow box
of two is the one to see, and a shortened name keeps its server whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.ledger.aggregate import FEW, Group, has_p95
from modelyard.ledger.report import Report, money

#: the longest name drawn whole; longer ones end in "…"
LABEL_CHARS = 28


def short(name: str, limit: int = LABEL_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def group_label(g: Group) -> str:
    """A model's row: its name, and its server when it had several — the name shortened first, so two rows of one
    model never read alike."""
    if g.server is None:
        return short(g.key)
    server = short(g.server, LABEL_CHARS - 8)
    return f"{short(g.key, max(8, LABEL_CHARS - 3 - len(server)))} @ {server}"


def _latency(ax: Any, groups: list[Group], title: str) -> None:
    """p50 and p95 bars, one row per group."""
    ys = list(range(len(groups)))
    summaries = [g.summary() for g in groups]
    ax.barh([y - 0.2 for y in ys], [(s["latency_p50_ms"] or 0) / 1000 for s in summaries], height=0.4, label="p50")
    # no p95 bar from fewer than FEW answers, as the tables show none: it would be their slowest one, drawn as a p95
    ax.barh([y + 0.2 for y in ys], [(s["latency_p95_ms"] or 0) / 1000 if has_p95(len(g.latencies)) else 0
                                    for s, g in zip(summaries, groups, strict=True)], height=0.4,
            label=f"p95 (of {FEW}+ answers)")
    ax.set_yticks(ys, [group_label(g) for g in groups])
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")


def build_figure(report: Report) -> Any:
    """The chart as a matplotlib Figure (the caller saves or inspects it, then closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [g for g in report.models if g.latencies]  # a model that only failed has no latency to draw
    rows = max(len(report.agents), len(models), len(report.counterfactuals) + 1, 3)
    fig, (traffic, latency, cost, by_model) = plt.subplots(1, 4, figsize=(21, 2.2 + 0.38 * rows),
                                                           layout="constrained")
    fig.suptitle(f"modelyard report — {report.period.label}")

    names = [short(g.key) for g in report.agents]
    ys = list(range(len(names)))
    segments = [("local", [g.local for g in report.agents], "#4c9a5b"),
                ("cloud", [g.served - g.local for g in report.agents], "#5b7bd5"),
                ("failed", [g.failed for g in report.agents], "#c85a54"),
                ("cancelled", [g.cancelled for g in report.agents], "#b0b0b0")]
    left = [0] * len(names)
    for label, values, color in segments:
        if label == "cancelled" and not any(values):
            continue
        traffic.barh(ys, values, left=left, label=label, color=color)
        left = [a + b for a, b in zip(left, values, strict=True)]
    traffic.set_yticks(ys, names)
    traffic.invert_yaxis()
    traffic.set_xlabel("requests")
    traffic.set_title(f"requests per agent ({report.totals.local_share:.0%} local)")
    traffic.legend(loc="lower right", fontsize="small")

    _latency(latency, report.agents, "latency per agent")
    _latency(by_model, models, "latency per model" + (" and server" if any(g.server for g in models) else ""))

    labels = ["actual"] + [f"all {short(c.model)}" for c in report.counterfactuals]
    amounts = [report.total_cost_usd] + [c.cost_usd for c in report.counterfactuals]
    cys = list(range(len(labels)))
    bars = cost.barh(cys, amounts, color=["#4c9a5b"] + ["#999999"] * len(report.counterfactuals))
    # the actual bar as the report says it: '$0.35+?' when a price is unknown or the local cost not set
    cost.bar_label(bars, labels=[report.costs.total_text()] + [money(v) for v in amounts[1:]], padding=3)
    cost.set_yticks(cys, labels)
    cost.invert_yaxis()
    cost.set_xlim(0, max([*amounts, 1e-9]) * 1.35)  # room for the amounts at the bars' ends
    cost.set_xlabel("USD")
    cost.set_title("cost vs all-cloud")
    return fig


def render_chart(report: Report, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"chart file must end in .png or .svg, not {path.suffix or '(none)'}")
    import matplotlib.pyplot as plt

    fig = build_figure(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
