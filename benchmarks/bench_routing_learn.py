"""Issue #10: does learning from 50 corrections help the corrected kind of prompt without hurting the rest?

Run: ``.venv/bin/python benchmarks/bench_routing_learn.py [--kind self-instruct] [-n 50]``. Takes N prompts
of one kind (a source collection of the dev set, e.g. the app-style tasks of self-instruct) that a
person would have corrected — each labelled with its best agent, as ``/agent X`` or ``rate … --agent X``
would — stores them as labels in a scratch routing log, runs ``routing learn`` with the held-out test
set as its check, and reports held-out accuracy on the same kind and on everything else, before and
after, with 95% intervals. Target: the kind improves, the rest does not drop.
"""

from __future__ import annotations

import argparse
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


def kind_of(source: str) -> str:
    return source.split(":")[0]


def score(orchestrator: Orchestrator, rows: list[Labelled]) -> str:
    right = sum(orchestrator.decide_fast(r.text).agent in r.accept for r in rows)
    low, high = wilson(right, len(rows))
    return f"{right / len(rows):6.1%} (95% CI {low:.1%}–{high:.1%}, n={len(rows)})"


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="self-instruct")
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    config = load_config(embedded_default_config())
    before = Orchestrator.from_config(config)
    assert before is not None
    sources = {json.loads(line)["text"]: json.loads(line)["source"]
               for name in ("dev", "test") for line in (DATA / f"{name}.jsonl").read_text().splitlines()}
    dev = read_labels(DATA / "dev.jsonl", set(config.agents))
    test = read_labels(DATA / "test.jsonl", set(config.agents))
    wrong_first = sorted((r for r in dev if kind_of(sources[r.text]) == args.kind),
                         key=lambda r: before.decide_fast(r.text).agent in r.accept)
    corrections = wrong_first[: args.n]
    conn = connect(Path(tempfile.mkdtemp()) / "log.sqlite3")
    for row in corrections:
        add_label(conn, row.text, row.accept[0], LabelSource.RATE)
    result = learn(config, before.name, conn, test)
    after = Orchestrator.from_config(config, trusted_labels(conn))
    kind = [r for r in test if kind_of(sources[r.text]) == args.kind]
    rest = [r for r in test if kind_of(sources[r.text]) != args.kind]
    wrong = sum(before.decide_fast(r.text).agent not in r.accept for r in corrections)
    print(f"{len(corrections)} corrections of kind '{args.kind}' from the dev set ({wrong} the fast path got wrong)")
    print(f"routing learn: {result.reason}")
    print(f"  held-out '{args.kind}'   before {score(before, kind)}")
    print(f"  {'':{len(args.kind) + 12}}after  {score(after, kind)}")
    print(f"  held-out, other kinds   before {score(before, rest)}")
    print(f"  {'':23}after  {score(after, rest)}")
    if not result.accepted:  # what the refit that was turned down would have done
        refit = Orchestrator.from_config(config, labels(conn))
        print(f"  the refit turned down: '{args.kind}' {score(refit, kind)}; other kinds {score(refit, rest)}")
        print(f"  labels scored by models that never saw them: before {result.labels_before:.1%}, "
              f"refit {result.labels_after:.1%}")


if __name__ == "__main__":
    main()
