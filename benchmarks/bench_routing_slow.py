"""Issue #10: the whole routing pipeline with the embedded 0.5B model — the fast path decides what it
is sure of, the orchestrator's model (three candidates, policies, JSON Schema as a llama.cpp grammar)
decides the rest — on a seeded random subset of the held-out set.

Run: ``.venv/bin/python benchmarks/bench_routing_slow.py [--labels FILE …] [--below] [-n 120] [--seed 10]
[--budget 2400]``. Draws N prompts of ``routing_eval/test.jsonl`` (or of the files named, read as one) at
random (seeded, so the subset is reproducible), routes each one as a turn would (``Orchestrator.decide`` with
the configured threshold) and reports: acceptable overall, coverage of the fast path, how the model did on the
prompts it got, what the fast path alone would have chosen for those same prompts, and the ceiling (an
acceptable agent among the three candidates). ``--below`` draws only among the lines the fast path decides
below the threshold, so every one sampled goes to the model (does it beat the fast path's own guess there?).
Timeouts and cooldowns are lifted so a busy machine slows the run instead of turning decisions into
fallbacks; ``--budget`` (seconds) stops early and reports what was done.
Expect seconds per model decision on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from modelyard.agents.classifier import RouteMethod
from modelyard.agents.evaluation import read_labels, wilson
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import Config
from modelyard.paths import embedded_default_config
from modelyard.runtime import open_runtime

ROOT = Path(__file__).resolve().parent.parent


def share(label: str, right: int, n: int) -> str:
    if not n:
        return f"  {label:44} n=0"
    low, high = wilson(right, n)
    return f"  {label:44} {right / n:6.1%}   95% CI {low:.1%}–{high:.1%}   ({right}/{n})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", nargs="+", default=[str(ROOT / "benchmarks" / "routing_eval" / "test.jsonl")])
    parser.add_argument("--below", action="store_true",
                        help="sample only lines the fast path decides below the threshold (each goes to the model)")
    parser.add_argument("-n", type=int, default=120)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--budget", type=float, default=2400.0, help="stop after this many seconds")
    parser.add_argument("--threshold", type=float, default=0.6,
                        help="below it the model decides (default: the confidence line calibrated on dev)")
    args = parser.parse_args()
    data = yaml.safe_load(embedded_default_config().read_text())
    data["orchestration"]["threshold"] = args.threshold  # the shipped default.yaml never asks the 0.5B model
    data["log"] = {"path": str(Path(tempfile.mkdtemp()) / "log.sqlite3")}
    # measure the model, not the machine's load: no timeout or cooldown cuts a slow decision short
    data["defaults"]["timeouts"].update(first_token=600, idle=600, total=1200)
    data["defaults"]["cooldown"] = {"failures": 1000, "seconds": 1, "max_seconds": 1}
    config = Config.model_validate(data)
    threshold = config.orchestration.threshold
    orchestrator = Orchestrator.from_config(config)
    assert orchestrator is not None
    rows = [row for file in args.labels for row in read_labels(Path(file), set(config.agents))]
    if args.below:
        rows = [row for row in rows if orchestrator.decide_fast(row.text).confidence < threshold]
    rows = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    runtime = open_runtime(config=config)
    done = right = fast_n = fast_right = 0
    slow_n = slow_right = slow_fast_right = in_top = first_try = 0
    times: list[float] = []
    methods: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for row in rows:
            if time.perf_counter() - started > args.budget:
                break
            fast = orchestrator.decide_fast(row.text)
            t0 = time.perf_counter()
            decision = await orchestrator.decide(runtime.router, row.text)
            done += 1
            ok = decision.agent in row.accept
            right += ok
            methods[decision.method.value] = methods.get(decision.method.value, 0) + 1  # printed as before: plain keys
            if fast.confidence >= threshold:
                fast_n += 1
                fast_right += ok
                continue
            times.append(time.perf_counter() - t0)
            slow_n += 1
            slow_right += ok
            slow_fast_right += fast.agent in row.accept
            in_top += any(a in row.accept for a in orchestrator.candidates(row.text))
            first_try += decision.method == RouteMethod.MODEL
            print(f"{done:4} {decision.method:14} {decision.agent:9} fast={fast.agent:9} accept={row.accept} "
                  f"{times[-1]:.1f}s", flush=True)
    finally:
        await runtime.aclose()
    print(f"\nwhole pipeline, embedded 0.5B model, threshold {threshold}: {done} of {len(rows)} sampled held-out "
          f"prompts (seed {args.seed}) in {time.perf_counter() - started:.0f} s")
    print(share("acceptable, whole pipeline", right, done))
    print(f"  {'coverage (decided by the fast path)':44} {fast_n / done:6.1%}   ({fast_n}/{done})")
    print(share("  fast-path decisions acceptable", fast_right, fast_n))
    print(share("  model decisions acceptable", slow_right, slow_n))
    print(share("  fast path alone on those same prompts", slow_fast_right, slow_n))
    print(share("  an acceptable agent among the 3 candidates", in_top, slow_n))
    print(share("  usable on the model's first answer", first_try, slow_n))
    print(share("fast path alone, all sampled prompts", fast_right + slow_fast_right, done))
    print(f"  methods {methods}")
    if times:
        print(f"  seconds per model decision: p50 {statistics.median(times):.2f}, max {max(times):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
