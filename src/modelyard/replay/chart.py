"""``replay --chart``: queue waits and cloud spend over the period, current config against candidate."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path

from modelyard.replay.run import Replay


def render_chart(r: Replay, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"chart file must end in .png or .svg, not {path.suffix or '(none)'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (waits, cost) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    fig.suptitle(f"modelyard replay — {r.period.label}" + (f", traffic ×{r.load:g}" if r.load != 1 else ""))
    for side, label, color in ((r.current, "current", "#5b7bd5"), (r.candidate, "candidate", "#d97706")):
        buckets = sorted(side.series)
        when = [datetime.fromtimestamp(b * side.bucket_s, UTC) for b in buckets]  # UTC, as the period
        mean_wait = [side.series[b][1] / side.series[b][0] / 1000 if side.series[b][0] else 0 for b in buckets]
        waits.plot(when, mean_wait, label=label, color=color)
        cost.plot(when, list(accumulate(side.series[b][2] for b in buckets)), label=label, color=color)
    step = f"{r.current.bucket_s / 60:g} min" if r.current.bucket_s < 3600 else f"{r.current.bucket_s / 3600:g} h"
    waits.set_ylabel(f"mean queue wait per {step} (s)")
    waits.legend()
    cost.set_ylabel("cloud spend so far (USD)")
    cost.set_xlabel("UTC")
    cost.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
