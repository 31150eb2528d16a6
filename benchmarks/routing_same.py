"""Do two checkouts route the same? A change made for memory or start-up time must not change a decision.

``dump OUT.json`` decides every prompt of every set in routing_eval/ (tuning and held out) with the default
config's orchestrator, fast path only, and writes each one's agent and confidence; ``compare A.json B.json`` says
whether two dumps agree: the same agent and confidences within 1e-9 (exit status 1 and the first differences
if not). Run the dump in each checkout (``PYTHONPATH=<checkout>/src``), then compare:

    PYTHONPATH=src .venv/bin/python benchmarks/routing_same.py dump /tmp/new.json
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/routing_same.py dump /tmp/old.json
    .venv/bin/python benchmarks/routing_same.py compare /tmp/old.json /tmp/new.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EVAL = Path(__file__).resolve().parent / "routing_eval"
TOLERANCE = 1e-9


def dump(out: Path) -> None:
    from modelyard.agents.orchestrator import Orchestrator
    from modelyard.config import load_config
    from modelyard.paths import embedded_default_config

    orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
    assert orchestrator is not None, "the default config has an orchestrator"
    decided: dict[str, list[tuple[str, float]]] = {}
    for path in sorted(EVAL.glob("*.jsonl")):
        texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        decided[path.name] = [(d.agent, d.confidence) for d in map(orchestrator.decide_fast, texts)]
        print(f"{path.name}: {len(texts)}", file=sys.stderr, flush=True)
    out.write_text(json.dumps(decided))


def compare(old: Path, new: Path) -> int:
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    if a.keys() != b.keys():
        print(f"different sets: {sorted(a.keys() ^ b.keys())}")
        return 1
    differ, total, worst = [], 0, 0.0
    for name in a:
        if len(a[name]) != len(b[name]):
            print(f"{name}: {len(a[name])} vs {len(b[name])} prompts")
            return 1
        for i, ((agent, conf), (agent2, conf2)) in enumerate(zip(a[name], b[name], strict=True)):
            total += 1
            worst = max(worst, abs(conf - conf2))
            if agent != agent2 or abs(conf - conf2) > TOLERANCE:
                differ.append(f"{name}:{i + 1}: {agent} {conf!r} → {agent2} {conf2!r}")
    print(f"{total} decisions over {len(a)} sets: {len(differ)} differ; largest confidence change {worst:.3g}")
    print("\n".join(differ[:20]))
    return 1 if differ else 0


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        raise SystemExit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
