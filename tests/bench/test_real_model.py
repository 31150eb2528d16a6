"""The starter suite's own tasks on the real embedded model (a small subset, k=1: ~20 tok/s on 2 cores).
The whole starter suite runs by hand: benchmarks/bench_starter.py, figures in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelyard.bench.recommend import recommend
from modelyard.bench.runner import BenchRunner, RunOutcome
from modelyard.bench.score import score
from modelyard.bench.suite import parse_suite, starter_text
from modelyard.config import parse_config
from modelyard.paths import embedded_default_config
from modelyard.providers import build_provider

pytestmark = pytest.mark.model

SUBSET = {"chat": ["arithmetic"], "utility": ["uppercase"], "engineer": ["read-file-tool"]}


def subset_suite() -> str:
    data = yaml.safe_load(starter_text())
    data["agents"] = {agent: {"tasks": [t for t in data["agents"][agent]["tasks"] if t["id"] in ids]}
                      for agent, ids in SUBSET.items()}
    return yaml.safe_dump(data, sort_keys=False)


async def test_starter_tasks_on_the_embedded_model(default_model: Path) -> None:
    config = parse_config(embedded_default_config().read_text())
    suite = parse_suite(subset_suite(), "starter-subset.yaml")
    model = "qwen-coder-0.5b"
    provider = build_provider(model, config.models[model])
    runner = BenchRunner(config, suite, models=[model], agents=list(SUBSET), k=1, providers={model: provider})
    try:
        result = await runner.run()
    finally:
        await provider.aclose()
    assert not result.skipped and len(result.results) == 3
    for run in result.results:
        assert run.outcome is RunOutcome.OK, run.error
        assert run.tokens_out > 0 and run.ttft_ms is not None and run.ttft_ms > 0
        assert run.passed == all(c.ok for c in run.checks) and run.checks
    by_task = {r.task: r for r in result.results}
    assert by_task["arithmetic"].passed, by_task["arithmetic"].answer  # "144": well within a 0.5B model
    assert by_task["read-file-tool"].tool_use is not None  # classified: structured, text or prose
    scores = score(result.results, 1)
    assert {s.agent for s in scores} == set(SUBSET)
    # a speed only where the answer's span can say (providers/speed.py): "144" and "HELLO WORLD" are three tokens,
    # two gaps of ~37 ms on a quiet machine — under MIN_SPAN_S, so no figure rather than a made-up one; the tool
    # call's ~30 tokens over a second always have one, and no figure is the burst's thousands of tok/s
    rates = {r.agent: r.tokens_per_s for r in result.results}
    assert rates["engineer"] is not None, by_task["read-file-tool"]
    assert all(rate is None or 0 < rate < 500 for rate in rates.values()), rates
    assert {s.agent: s.tokens_per_s_p50 for s in scores} == rates  # k=1: the median is the one run's
    recs = {r.agent: r for r in recommend(scores, config, measured=[model])}
    assert recs["chat"].chain == ["qwen-coder-0.5b"]
