"""Issue #10, round 21: round 20's long-messages-only lever read on a held-out set of long messages, once.

``current``: the fast path as shipped (``default.yaml``, the product's classifier and confidence). ``longonly``:
a second classifier, trained on the same samples plus every tuning file's line over 800 characters as the fast path
reads it (its request, ``agents/request.py``) with its best-fit agent — the tuning lines near a held-out line
left out (``bench_routing_lofo.near_held_out``) — decides the messages over 800 characters, ``current`` the rest
(round 20's ``bench_routing_lofo.py longonly``, with all ten tuning files instead of nine). Its confidence is the
product's fitted model unchanged (``calibrated=True``; round 19 refitted it for its trial build, this round does not).

Reports, per set (``fresh_long`` first, then the twenty older held-out sets as the guard): acceptable share, right
above the threshold / decided above it (coverage), and for ``longonly`` the lines it fixed and broke, with a two-sided
sign test. Run once: ``.venv/bin/python benchmarks/bench_routing_long.py [--threshold 0.92] [--sets NAME …]``.
"""

from __future__ import annotations

import argparse
import json
import math

from bench_routing_lofo import near_held_out
from modelyard.agents.classifier import Classifier, Samples, training_samples
from modelyard.agents.evaluation import SHORT, read_labels, wilson
from modelyard.agents.request import views
from modelyard.agents.topology import orchestrator_name, routing_targets
from modelyard.config import load_config
from modelyard.paths import embedded_default_config
from routing_sets import HELD_OUT, TUNING
from routing_sets import path as set_path


def sign_test(fixed: int, broken: int) -> float:
    """Two-sided exact binomial p of a split at least this uneven, if fixing and breaking were equally likely."""
    n, k = fixed + broken, min(fixed, broken)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0


def long_samples(agents: set[str]) -> list[tuple[str, str]]:
    """Every tuning line over :data:`SHORT` characters, as read (its request), with its best-fit agent."""
    rows = {name: read_labels(set_path(name), agents) for name in TUNING}
    near = near_held_out(rows, agents)
    return [(max(views(r.text), key=lambda v: v[1])[0], r.accept[0]) for lines in rows.values() for r in lines
            if len(r.text) > SHORT and r.text not in near]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.92)
    parser.add_argument("--sets", nargs="*", default=["fresh_long", *[n for n in HELD_OUT if n != "fresh_long"]])
    args = parser.parse_args()
    config = load_config(str(embedded_default_config()))
    name = orchestrator_name(config)
    assert name is not None
    base = training_samples(config, routing_targets(config, name))
    agents = set(config.agents)
    current = Classifier(base)
    samples = Samples({k: list(v) for k, v in base.items()})
    samples.roles = dict(base.roles)
    added = long_samples(agents)
    for text, agent in added:
        if agent in samples:
            samples[agent].append(text)
    lever = Classifier(samples)
    print(json.dumps({"long tuning lines added": len(added), "threshold": args.threshold}), flush=True)
    total: dict[str, list[int]] = {"current": [0, 0, 0, 0], "longonly": [0, 0, 0, 0]}
    for set_name in args.sets:
        rows = read_labels(set_path(set_name), agents)
        out: dict[str, object] = {"set": set_name, "lines": len(rows), "long": sum(len(r.text) > SHORT for r in rows)}
        right: dict[str, list[bool]] = {}
        for how in ("current", "longonly"):
            decisions = [(lever if how == "longonly" and len(r.text) > SHORT else current).decide(r.text) for r in rows]
            ok = [d.agent in r.accept for d, r in zip(decisions, rows, strict=True)]
            fast = [good for d, good in zip(decisions, ok, strict=True) if d.confidence >= args.threshold]
            counts = [len(rows), sum(ok), len(fast), sum(fast)]
            total[how] = [a + b for a, b in zip(total[how], counts, strict=True)]
            low, high = wilson(counts[1], counts[0])
            out[how] = {"right": counts[1], "share": round(counts[1] / counts[0], 4),
                        "ci95": [round(low, 3), round(high, 3)], "above": f"{counts[3]}/{counts[2]}",
                        "precision": round(counts[3] / max(counts[2], 1), 4),
                        "coverage": round(counts[2] / counts[0], 4),
                        "long_right": sum(good for good, r in zip(ok, rows, strict=True) if len(r.text) > SHORT)}
            right[how] = ok
        fixed = sum(b and not a for a, b in zip(right["current"], right["longonly"], strict=True))
        broken = sum(a and not b for a, b in zip(right["current"], right["longonly"], strict=True))
        out.update(fixed=fixed, broken=broken, p=round(sign_test(fixed, broken), 4))
        print(json.dumps(out), flush=True)
    for how, (n, acceptable, decided, good) in total.items():
        print(json.dumps({"all": how, "right": acceptable, "of": n, "above": f"{good}/{decided}",
                          "precision": round(good / max(decided, 1), 4), "coverage": round(decided / n, 4)}))


if __name__ == "__main__":
    main()
