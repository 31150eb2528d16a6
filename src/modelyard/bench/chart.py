"""The bench as one image: quality, useful throughput and tool-call behaviour per agent and model.

Left: pass@1 (bar) and pass^k (black tick) per agent, one bar per model, the recommended primary
starred. Middle: passing answers per minute at each model's concurrency (log scale: models differ by
orders of magnitude, when they do). Right: for tool-call tasks, the share of structured calls and of calls written
as text, per model. matplotlib with the Agg backend; the suffix picks PNG or SVG.
"""

from __future__ import annotations

from pathlib import Path

from modelyard.bench.recommend import Recommendation
from modelyard.bench.score import Score

_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def render_chart(scores: list[Score], recs: list[Recommendation], path: str | Path, title: str) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"chart file must end in .png or .svg, not {path.suffix or '(none)'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = list(dict.fromkeys(s.agent for s in scores))
    models = list(dict.fromkeys(s.model for s in scores))
    table = {(s.agent, s.model): s for s in scores}
    primary = {r.agent: r.ranked[0].model for r in recs if r.ranked}
    width = 0.8 / max(len(models), 1)

    fig, (quality, speed, tools) = plt.subplots(1, 3, figsize=(17, 6), gridspec_kw={"width_ratios": [3, 3, 2]})
    fig.suptitle(title)
    for m, model in enumerate(models):
        color = _COLORS[m % len(_COLORS)]
        xs = [a + (m - (len(models) - 1) / 2) * width for a in range(len(agents))]
        cells = [table.get((agent, model)) for agent in agents]
        quality.bar(xs, [c.pass_at_1 * 100 if c else 0 for c in cells], width, label=model, color=color)
        for x, c, agent in zip(xs, cells, agents, strict=True):
            if c and c.pass_hat_k is not None:
                quality.plot([x - width / 2.5, x + width / 2.5], [c.pass_hat_k * 100] * 2, color="black", lw=2)
            if c and primary.get(agent) == model:
                quality.annotate("★", (x, c.pass_at_1 * 100 + 1.5), ha="center", fontsize=13, color="#b8860b")
        speed.bar(xs, [(c.passing_per_min or 0) if c else 0 for c in cells], width, label=model, color=color)
    k = scores[0].k if scores else 0
    quality.set_title(f"pass@1 (bars), pass^{k} (black ticks); ★ recommended primary")
    quality.set_ylabel("% of runs / tasks")
    quality.set_ylim(0, 112)
    speed.set_title("passing answers per minute at the model's concurrency")
    rates = [s.passing_per_min for s in scores if s.passing_per_min]
    if rates and max(rates) > 20 * min(rates):  # models orders of magnitude apart: log scale keeps all visible
        speed.set_yscale("log")
    for ax in (quality, speed):
        ax.set_xticks(range(len(agents)), agents, rotation=20)
    handles, labels = quality.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=min(len(models), 8), fontsize=9, title="models")

    tool_scores = {m: [s for s in scores if s.model == m and s.tool_runs] for m in models}
    shown = [m for m in models if tool_scores[m]]
    if shown:
        structured = [100 * sum(s.structured for s in tool_scores[m]) / sum(s.tool_runs for s in tool_scores[m])
                      for m in shown]
        text = [100 * sum(s.text_calls for s in tool_scores[m]) / sum(s.tool_runs for s in tool_scores[m])
                for m in shown]
        other = [100 - a - b for a, b in zip(structured, text, strict=True)]
        tools.barh(shown, structured, color="#55a868", label="structured, valid")
        tools.barh(shown, text, left=structured, color="#dd8452", label="written as text")
        tools.barh(shown, other, left=[a + b for a, b in zip(structured, text, strict=True)], color="#cccccc",
                   label="no / invalid call")
        tools.set_xlim(0, 100)
        tools.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=3)
    else:
        tools.text(0.5, 0.5, "no tool-call tasks", ha="center", va="center", transform=tools.transAxes)
        tools.set_yticks([])
    tools.set_title("tool-call tasks: how the call was made (%)")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
