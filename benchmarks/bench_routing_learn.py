"""Issue #10: does learning from 50 corrections help the corrected kind of prompt without hurting the rest?

Run: ``.venv/bin/python benchmarks/bench_routing_learn.py [--kind self-instruct] [--pool FILE] [--seeds 0 1 2]
[-n 50]``. Takes N prompts of one kind (a source collection, e.g. self-instruct's app-style tasks) that a
person would have corrected — from the **dev** set, or from ``--pool`` (e.g. routing_eval/corrections_clinc.jsonl,
CLINC150's train split) — the ones the fast path gets wrong first (ties in a seeded order: ``--seeds``, -1 the
file's order), each labelled with its best agent, as ``/agent X`` or ``rate … --agent X`` would; stores them as
labels in a scratch routing log and runs ``routing learn`` as a user would (its guard: every shipped tuning set,
by role; never a held-out set). Then reads every held-out set once, before and after — the twenty of
routing_sets.HELD_OUT (test … fresh_arena2) and clinc_heldout; corrected lines left out — split into the corrected
kind and everything else, with 95% Wilson intervals and the paired flips (fixed / broke) with an exact sign test.
Target: the kind improves, the rest does not drop. Prints the prompts that broke.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # routing_sets, also when imported as benchmarks.…

from modelyard.agents.evaluation import Labelled, read_labels, wilson
from modelyard.agents.learning import learn, trusted_labels
from modelyard.agents.memory import CorrectedClassifier, role_prompts
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.ledger.db import connect
from modelyard.ledger.labels import LabelSource, add_label, labels
from modelyard.paths import embedded_default_config
from routing_sets import CLINC_HELD_OUT, DATA, HELD_OUT


def sign_test(fixed: int, broke: int) -> float:
    """Two-sided exact sign test on the paired flips: how likely this imbalance is by chance."""
    n = fixed + broke
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(fixed, broke) + 1)) / 2**n
    return min(1.0, 2 * tail)


def share(right: int, n: int) -> str:
    low, high = wilson(right, n)
    return f"{right / n:6.1%} ({low:.1%}–{high:.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="self-instruct")
    parser.add_argument("--pool", type=Path, help="labelled JSONL to draw corrections from (default: dev.jsonl)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[-1],
                        help="orders of the pool before taking the wrong ones first (-1: the file's order)")
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    config = load_config(embedded_default_config())
    before = Orchestrator.from_config(config)
    assert before is not None
    agents = set(config.agents)
    memo: dict[str, str] = {}

    def was(text: str) -> str:
        if text not in memo:
            memo[text] = before.decide_fast(text).agent
        return memo[text]

    # every held-out set of routing_eval (README there): read once per run, never tuned on
    held = {name: read_labels(DATA / f"{name}.jsonl", agents) for name in (*HELD_OUT, CLINC_HELD_OUT)}
    pool = read_labels(args.pool, agents) if args.pool else read_labels(DATA / "dev.jsonl", agents)
    guard = role_prompts(config, before.targets)
    out = []
    for seed in args.seeds:
        of_kind = [r for r in pool if r.kind == args.kind]
        if seed >= 0:
            random.Random(seed).shuffle(of_kind)
        corrections = sorted(of_kind, key=lambda r: was(r.text) in r.accept)[: args.n]
        taught = {r.text for r in corrections}
        conn = connect(Path(tempfile.mkdtemp()) / "log.sqlite3")
        for row in corrections:
            add_label(conn, row.text, row.accept[0], LabelSource.RATE)
        result = learn(config, before.name, conn)  # as `routing learn` runs: its guard, the shipped tuning sets
        wrong = sum(was(r.text) not in r.accept for r in corrections)
        source = args.pool.name if args.pool else "dev.jsonl"
        print(f"seed {seed}: {len(corrections)} corrections of kind '{args.kind}' from {source} "
              f"({wrong} the fast path got wrong)")
        checked = sum(r.text not in taught for r in guard)
        dropped = [k.kind for k in result.kinds if k.dropped]
        flips = [k for k in result.kinds if k.kind.startswith("agent:")]
        print(f"  routing learn, checked on {checked} tuning prompts (each as if not a reference): "
              f"fixed {sum(k.fixed for k in flips)}, broke {sum(k.broke for k in flips)}"
              f"{'; dropped: ' + ', '.join(dropped) if dropped else ''} — {result.reason}")
        after = Orchestrator.from_config(config, trusted_labels(conn) if result.accepted else labels(conn))
        assert after is not None and isinstance(after.classifier, CorrectedClassifier)

        def now(text: str, corrected: CorrectedClassifier = after.classifier) -> str:
            """The corrected model's decision (CorrectedClassifier.decide): the plain one's outside every territory."""
            agent = corrected.nearest(text)
            return agent if agent is not None and corrected.refit.decide(text).agent == agent else was(text)

        if not result.accepted:
            print("  (the refit was turned down; below: what it would have done)")
        tally = {"kind": [0, 0, 0, 0], "else": [0, 0, 0, 0]}  # n, right before, fixed, broke
        per_set: dict[str, tuple[int, int]] = {}
        broke: list[tuple[str, Labelled, str, str]] = []
        for name, rows in held.items():
            for row in rows:
                if row.text in taught:
                    continue
                old, new = was(row.text), now(row.text)
                right, fixed, lost = old in row.accept, new in row.accept and old not in row.accept, \
                    old in row.accept and new not in row.accept
                cell = tally["kind" if row.kind == args.kind else "else"]
                cell[0] += 1
                cell[1] += right
                cell[2] += fixed
                cell[3] += lost
                if fixed or lost:
                    f, b = per_set.get(name, (0, 0))
                    per_set[name] = (f + fixed, b + lost)
                if lost:
                    broke.append((name, row, old, new))
        for part, label in (("kind", f"held out, kind '{args.kind}'"), ("else", "held out, everything else")):
            n, right_before, flipped_right, flipped_wrong = tally[part]
            if not n:
                print(f"  {label:34} n=0")
                continue
            after_right = right_before + flipped_right - flipped_wrong
            print(f"  {label:34} n={n:5}  before {share(right_before, n)}  after {share(after_right, n)}  "
                  f"fixed {flipped_right}, broke {flipped_wrong} "
                  f"(sign test p={sign_test(flipped_right, flipped_wrong):.3f})")
        print("  flips per set (fixed/broke): "
              + (", ".join(f"{name} {f}/{b}" for name, (f, b) in per_set.items()) or "none"))
        for name, row, old, new in broke:
            print(f"    broke in {name}: {old} → {new} (accept {', '.join(row.accept)}): "
                  f"{row.text[:90].replace(chr(10), ' ')}")
        out.append({"seed": seed, "accepted": result.accepted, "wrong": wrong, "kind": tally["kind"],
                    "else": tally["else"], "per_set": per_set})
    print(json.dumps({"kind": args.kind, "runs": out}))


if __name__ == "__main__":
    main()
