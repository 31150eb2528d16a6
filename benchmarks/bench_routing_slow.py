"""Issue #10: the orchestrator's slow path with the embedded 0.5B model — how often it picks an
acceptable agent, how often its answer is usable at once, and what a decision costs.

Run: ``.venv/bin/python benchmarks/bench_routing_slow.py [-n 40] [--labels FILE]``. Takes the
first N prompts of the held-out set that the fast path leaves below the threshold (the ones the
model really gets), asks the model with the threshold forced to 1.0, and compares with what the
fast path alone would have chosen for the same prompts. Expect seconds per decision on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from modelyard.agents.evaluation import read_labels, wilson
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import Config
from modelyard.paths import embedded_default_config
from modelyard.runtime import open_runtime

ROOT = Path(__file__).resolve().parent.parent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default=str(ROOT / "benchmarks" / "routing_eval" / "test.jsonl"))
    parser.add_argument("-n", type=int, default=40)
    args = parser.parse_args()
    data = yaml.safe_load(embedded_default_config().read_text())
    threshold = data["orchestration"]["threshold"]
    data["orchestration"]["threshold"] = 1.0
    data["log"] = {"path": str(Path(tempfile.mkdtemp()) / "log.sqlite3")}
    # measure the model, not the machine's load: no timeout or cooldown cuts a slow decision short
    data["defaults"]["timeouts"].update(first_token=600, idle=600, total=1200)
    data["defaults"]["cooldown"] = {"failures": 1000, "seconds": 1, "max_seconds": 1}
    config = Config.model_validate(data)
    orchestrator = Orchestrator.from_config(config)
    assert orchestrator is not None
    rows = [r for r in read_labels(Path(args.labels), set(config.agents))
            if orchestrator.decide_fast(r.text).confidence < threshold][: args.n]
    runtime = open_runtime(config=config)
    right = fast_right = in_top = first_try = 0
    times = []
    methods: dict[str, int] = {}
    try:
        for row in rows:
            t0 = time.perf_counter()
            decision = await orchestrator.decide(runtime.router, row.text)
            times.append(time.perf_counter() - t0)
            right += decision.agent in row.accept
            fast_right += orchestrator.decide_fast(row.text).agent in row.accept
            in_top += any(a in row.accept for a in orchestrator.candidates(row.text))
            first_try += decision.method == "model"
            methods[decision.method] = methods.get(decision.method, 0) + 1
    finally:
        await runtime.aclose()
    n = len(rows)
    low, high = wilson(right, n)
    print(f"slow path, embedded 0.5B model, {n} held-out prompts below the threshold {threshold}")
    print(f"  acceptable (model)          {right / n:6.1%}   95% CI {low:.1%}–{high:.1%}")
    print(f"  acceptable (fast path alone){fast_right / n:6.1%}   on the same prompts")
    print(f"  an acceptable agent among the 3 candidates {in_top / n:6.1%}   (the ceiling for the model)")
    print(f"  usable on the first answer  {first_try / n:6.1%}   (schema-constrained)")
    print(f"  methods                     {methods}")
    print(f"  seconds per decision        p50 {statistics.median(times):.2f}   max {max(times):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
