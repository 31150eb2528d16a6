"""`report --chart`: long agent and model names never overlap each other or a neighbouring panel, and
cancelled requests (the caller went away) are not drawn as failed."""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path

import yaml

from modelyard.config import load_config
from modelyard.errors import Reason
from modelyard.ledger import connect
from modelyard.ledger.report import build_report, days_period
from modelyard.ledger.writer import LogWriter
from modelyard.ops.report_chart import build_figure, render_chart
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.router.records import Attempt, RequestRecord, new_request_id

AGENTS = ["research-assistant-for-quarterly-reports", "engineer", "customer-support-triage-bot", "writer",
          "utility-formatting-and-summaries"]
CLOUD = ["claude-sonnet-4-5-20250929", "gpt-4.1-mini-2025-04-14", "gemini-2.5-flash-preview-05-20"]


def report(tmp_path: Path):
    log = tmp_path / "log.sqlite3"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "log": {"path": str(log)},
        "report": {"counterfactual": {name: {"input": 3, "output": 15} for name in CLOUD}},
        "models": {"qwen2.5-coder-7b-instruct-q4_k_m": {"provider": "ollama"}},
        "agents": {"chat": {"primary": "qwen2.5-coder-7b-instruct-q4_k_m"}},
    }))
    model = "qwen2.5-coder-7b-instruct-q4_k_m"
    writer = LogWriter(log, local_models=[model])
    now = time.time() - 60
    for i, agent in enumerate(AGENTS):
        for j in range(3 + i):
            writer.submit(RequestRecord(new_request_id(), agent, ts=now + i + j / 10, outcome=RequestOutcome.OK,
                                        model=model, total_ms=500 + 300 * j, tokens_in=100, tokens_out=200,
                                        attempts=[Attempt(model, "ollama", Outcome.OK, started_at=now)]))
    for outcome, n in ((RequestOutcome.CANCELLED, 4), (RequestOutcome.FAILED, 1)):
        for _ in range(n):
            attempt = Attempt(model, "ollama", Outcome.CANCELLED if outcome is RequestOutcome.CANCELLED
                              else Outcome.FALLBACK, Reason.CANCELLED if outcome is RequestOutcome.CANCELLED
                              else Reason.SERVER_ERROR, started_at=now)
            writer.submit(RequestRecord(new_request_id(), "engineer", ts=now + 30, outcome=outcome, total_ms=100,
                                        attempts=[attempt]))
    writer.close()
    return build_report(connect(log), load_config(path), days_period(1))


def test_cancelled_requests_are_not_failed(tmp_path: Path) -> None:
    r = report(tmp_path)
    engineer = next(g for g in r.agents if g.key == "engineer")
    assert (engineer.requests, engineer.served, engineer.failed, engineer.cancelled) == (9, 4, 1, 4)
    assert engineer.summary()["failed"] == 1 and engineer.summary()["cancelled"] == 4
    fig = build_figure(r)
    try:
        traffic = fig.axes[0]
        drawn = {c.get_label(): [bar.get_width() for bar in c] for c in traffic.containers}
        row = [g.key for g in r.agents].index("engineer")
        assert drawn["failed"][row] == 1 and drawn["cancelled"][row] == 4
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_long_names_never_overlap(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = build_figure(report(tmp_path))
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labels = []  # (axes index, text, extent)
        for i, ax in enumerate(fig.axes):
            (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
            shown = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]  # drawn ticks only
            shown += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
            for t in shown + ax.texts:
                if t.get_visible() and t.get_text():
                    labels.append((i, t.get_text(), t.get_window_extent(renderer)))
        assert any("research-assistant-for-qua" in text for _, text, _ in labels)
        assert any("claude-sonnet-4-5-20250929" in text for _, text, _ in labels)
        for (_, a, box_a), (_, b, box_b) in combinations(labels, 2):
            assert not box_a.overlaps(box_b), (a, b)
        for i, text, box in labels:  # no label reaches into another panel's plot area
            for j, ax in enumerate(fig.axes):
                if j != i:
                    assert not box.overlaps(ax.get_window_extent(renderer)), (text, j)
        page = fig.bbox
        for _, text, box in labels:
            assert page.x0 <= box.x0 and box.x1 <= page.x1, text  # nothing cut off at the edges
    finally:
        plt.close(fig)
    again = tmp_path / "again"
    again.mkdir()
    png = render_chart(report(again), tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_p95_bar_from_fewer_than_twenty_answers(tmp_path: Path) -> None:
    """The tables show no p95 of fewer than 20 answers (it would be the slowest one); the chart drew it anyway, a
    3-answer agent's slowest answer as its p95."""
    r = report(tmp_path)
    fig = build_figure(r)
    try:
        latency = fig.axes[1]
        p50, p95 = latency.containers[0], latency.containers[1]
        assert all(len(g.latencies) < 20 for g in r.agents)
        assert [bar.get_width() for bar in p95] == [0] * len(r.agents)
        assert all(bar.get_width() > 0 for bar in p50)
        assert p95.get_label() == "p95 (of 20+ answers)"
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
