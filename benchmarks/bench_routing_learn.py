"""Issue #10: does learning from 50 corrections help the corrected kind of prompt without hurting the rest?

Run: ``.venv/bin/python benchmarks/bench_routing_learn.py [--kind self-instruct] [--pool FILE] [--kind-eval FILE]
[--also FILE …] [-n 50]``. Takes N prompts of one kind (a source collection, e.g. self-instruct's app-style
tasks) that a person would have corrected — from the **dev** set, or from ``--pool`` (e.g.
routing_eval/corrections_clinc.jsonl, CLINC150's train split), the ones the fast path gets wrong first, each
labelled with its best agent, as
``/agent X`` or ``rate … --agent X`` would — stores them as labels in a scratch routing log, and runs
``routing learn`` with dev as its per-kind check (never a held-out set; corrected lines are skipped). Then
reads the held-out sets once, before and after: test's prompts of the same kind and of the other kinds,
unseen, evals and chatterbot (no prompt of the kind), and with ``--kind-eval`` more prompts of the kind
(e.g. routing_eval/clinc_heldout.jsonl; a file of several kinds is read per kind), and ``--also`` other
held-out sets — with 95% Wilson intervals and the paired flips (fixed / broke)
with an exact sign test. Target: the kind improves, the rest does not drop.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from modelyard.agents.evaluation import Labelled, read_labels, wilson
from modelyard.agents.learning import learn, trusted_labels
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.ledger.db import connect
from modelyard.ledger.labels import LabelSource, add_label, labels
from modelyard.paths import embedded_default_config

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "routing_eval"


def sign_test(fixed: int, broke: int) -> float:
    """Two-sided exact sign test on the paired flips: how likely this imbalance is by chance."""
    n = fixed + broke
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(fixed, broke) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(name: str, before: Orchestrator, after: Orchestrator, rows: list[Labelled]) -> dict[str, object]:
    if not rows:  # e.g. test.jsonl holds no prompt of a kind that only a --pool and --kind-eval have
        print(f"  {name:34} n=  0  (no prompt of this kind here)")
        return {"set": name, "n": 0, "before": 0, "after": 0, "fixed": 0, "broke": 0}
    was = [before.decide_fast(r.text).agent in r.accept for r in rows]
    now = [after.decide_fast(r.text).agent in r.accept for r in rows]
    fixed = sum(n and not w for w, n in zip(was, now, strict=True))
    broke = sum(w and not n for w, n in zip(was, now, strict=True))

    def share(right: int) -> str:
        low, high = wilson(right, len(rows))
        return f"{right / len(rows):6.1%} ({low:.1%}–{high:.1%})"

    print(f"  {name:34} n={len(rows):3}  before {share(sum(was))}  after {share(sum(now))}  "
          f"fixed {fixed}, broke {broke} (sign test p={sign_test(fixed, broke):.3f})")
    return {"set": name, "n": len(rows), "before": sum(was), "after": sum(now), "fixed": fixed, "broke": broke}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="self-instruct")
    parser.add_argument("--pool", type=Path, help="labelled JSONL to draw corrections from (default: dev.jsonl)")
    parser.add_argument("--kind-eval", type=Path,
                        help="more held-out prompts of the kind (e.g. routing_eval/clinc_heldout.jsonl), read once")
    parser.add_argument("--also", type=Path, nargs="*", default=[],
                        help="more held-out sets with no prompt of the kind (e.g. routing_eval/fresh_persona.jsonl)")
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    config = load_config(embedded_default_config())
    before = Orchestrator.from_config(config)
    assert before is not None
    agents = set(config.agents)
    dev, test, unseen = (read_labels(DATA / f"{name}.jsonl", agents) for name in ("dev", "test", "unseen"))
    pool = read_labels(args.pool, agents) if args.pool else dev
    wrong_first = sorted((r for r in pool if r.kind == args.kind),
                         key=lambda r: before.decide_fast(r.text).agent in r.accept)
    corrections = wrong_first[: args.n]
    conn = connect(Path(tempfile.mkdtemp()) / "log.sqlite3")
    for row in corrections:
        add_label(conn, row.text, row.accept[0], LabelSource.RATE)
    result = learn(config, before.name, conn, dev)  # the guard: dev without the corrected prompts
    wrong = sum(before.decide_fast(r.text).agent not in r.accept for r in corrections)
    source = args.pool.name if args.pool else "dev.jsonl"
    print(f"{len(corrections)} corrections of kind '{args.kind}' from {source} ({wrong} the fast path got wrong)")
    checked = len({r.text for r in dev} - {r.text for r in corrections})
    print(f"routing learn, checked on {checked} dev prompts (none of them a correction): {result.reason}")
    for k in result.kinds:
        print(f"    {k.kind:22} n={k.n:3}  {k.before / k.n:6.1%} → {k.after / k.n:6.1%}  "
              f"fixed {k.fixed}, broke {k.broke}" + ("  DROPPED" if k.dropped else ""))
    after = Orchestrator.from_config(config, trusted_labels(conn) if result.accepted else labels(conn))
    assert after is not None
    if not result.accepted:
        print("  (the refit was turned down; below: what it would have done)")
    print("held-out sets, read once:")
    out = [compare(f"test, kind '{args.kind}'", before, after, [r for r in test if r.kind == args.kind]),
           compare("test, other kinds", before, after, [r for r in test if r.kind != args.kind]),
           compare("unseen (other collections)", before, after, unseen),
           *(compare(f"{name}.jsonl (another collection)", before, after, read_labels(DATA / f"{name}.jsonl", agents))
             for name in ("evals", "chatterbot"))]
    out += [compare(f"{path.name} (another collection)", before, after, read_labels(path, agents))
            for path in args.also]
    if args.kind_eval:  # a file may hold several kinds (fresh_code.jsonl: agentbench-os and swe-lancer)
        rows = read_labels(args.kind_eval, agents)
        kind = [r for r in rows if r.kind == args.kind]
        mixed = bool(kind) and len(kind) < len(rows)
        out.append(compare(f"{args.kind_eval.name}, kind '{args.kind}'" if mixed else args.kind_eval.name,
                           before, after, kind if mixed else rows))
        if mixed:
            out.append(compare(f"{args.kind_eval.name}, other kinds", before, after,
                               [r for r in rows if r.kind != args.kind]))
    near = sum(after.classifier.near(r.text) for r in test + unseen) if hasattr(after.classifier, "near") else 0
    print(f"  prompts of test + unseen inside a correction's territory: {near} of {len(test) + len(unseen)}")
    print(json.dumps({"accepted": result.accepted, "results": out}))


if __name__ == "__main__":
    main()
