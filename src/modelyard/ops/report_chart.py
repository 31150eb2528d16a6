"""The report as one image: traffic per agent (local vs cloud), latency, and cost against all-cloud.

matplotlib with the Agg backend (no display needed); the file suffix picks PNG or SVG.
"""

from __future__ import annotations

from pathlib import Path

from modelyard.ledger.report import Report, money


def render_chart(report: Report, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"chart file must end in .png or .svg, not {path.suffix or '(none)'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (traffic, latency, cost) = plt.subplots(1, 3, figsize=(15, 4.8))
    fig.suptitle(f"modelyard report — {report.period.label}")

    names = [g.key for g in report.agents]
    local = [g.local for g in report.agents]
    cloud = [g.served - g.local for g in report.agents]
    failed = [g.requests - g.served for g in report.agents]
    traffic.bar(names, local, label="local", color="#4c9a5b")
    traffic.bar(names, cloud, bottom=local, label="cloud", color="#5b7bd5")
    traffic.bar(names, failed, bottom=[a + b for a, b in zip(local, cloud, strict=True)], label="failed",
                color="#c85a54")
    traffic.set_title(f"requests per agent ({report.totals.local_share:.0%} local)")
    traffic.legend()
    traffic.tick_params(axis="x", rotation=30)

    summaries = [g.summary() for g in report.agents]
    p50 = [(s["latency_p50_ms"] or 0) / 1000 for s in summaries]
    p95 = [(s["latency_p95_ms"] or 0) / 1000 for s in summaries]
    xs = range(len(names))
    latency.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    latency.bar([x + 0.2 for x in xs], p95, width=0.4, label="p95")
    latency.set_xticks(list(xs), names, rotation=30)
    latency.set_ylabel("seconds")
    latency.set_title("latency per agent")
    latency.legend()

    labels = ["actual"] + [c.model for c in report.counterfactuals]
    values = [report.total_cost_usd] + [c.cost_usd for c in report.counterfactuals]
    bars = cost.bar(labels, values, color=["#4c9a5b"] + ["#999999"] * len(report.counterfactuals))
    cost.bar_label(bars, labels=[money(v) for v in values])
    cost.set_ylabel("USD")
    cost.set_title("cost vs all-cloud")
    cost.tick_params(axis="x", rotation=30)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
