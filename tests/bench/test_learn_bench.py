"""bench_routing_learn.py's comparison of before and after on a held-out set (issue #10's learning target).

A kind that only a ``--pool`` and a ``--kind-eval`` file hold (round 12's AgentBench OS tasks: none in test.jsonl)
gives the "test, kind X" comparison no rows; the bench divided by that zero and died after the refit, before
reading any held-out set.
"""
from __future__ import annotations

import pytest
from benchmarks.bench_routing_learn import compare

from modelyard.agents.evaluation import Labelled
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.paths import embedded_default_config


@pytest.fixture(scope="module")
def orchestrator() -> Orchestrator:
    found = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert found is not None
    return found


def test_a_set_with_no_prompt_of_the_kind_is_reported_as_empty(orchestrator: Orchestrator,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    result = compare("test, kind 'agentbench-os'", orchestrator, orchestrator, [])
    assert result == {"set": "test, kind 'agentbench-os'", "n": 0, "before": 0, "after": 0, "fixed": 0, "broke": 0}
    assert "n=  0" in capsys.readouterr().out


def test_a_set_with_prompts_counts_before_and_after(orchestrator: Orchestrator) -> None:
    rows = [Labelled("git rebase says 'refusing to merge unrelated histories' — how do I fix it?", ["engineer"]),
            Labelled("write a limerick about a cat who hates Mondays", ["writer", "chat"])]
    result = compare("two", orchestrator, orchestrator, rows)
    assert result["n"] == 2 and result["before"] == result["after"] and result["fixed"] == result["broke"] == 0
