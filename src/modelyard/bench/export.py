"""Export a bench as JSON Lines (format ``modelyard-bench/1``, described in the README).

One object per line, told apart by ``type``:
- ``bench``: run_id, suite, k, models, agents, skipped (model -> why), interrupted, seconds, created;
- ``run``: one task run — the ``bench_runs`` columns, with ``checks`` as a list of
  {check, ok, detail, judged} and ``retry_reasons`` as {reason: count};
- ``score``: per model × agent figures (pass_at_1, pass_hat_k, passing_per_min, cost_per_pass, …);
- ``recommendation``: per agent, the recommended chain, the current one, and why.
Plain JSON values only, so pandas (``read_json(lines=True)``), jq or any eval harness can read it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from modelyard.bench.recommend import Recommendation
from modelyard.bench.runner import BenchResult
from modelyard.bench.score import Score

FORMAT = "modelyard-bench/1"


def records(bench: BenchResult, scores: list[Score], recs: list[Recommendation], *,
            store_text: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{
        "type": "bench", "format": FORMAT, "run_id": bench.run_id, "suite": bench.suite, "k": bench.k,
        "models": bench.models, "agents": bench.agents, "skipped": bench.skipped, "interrupted": bench.interrupted,
        "seconds": round(bench.seconds, 3), "judge_cost_usd": bench.judge_cost_usd,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
    for r in bench.results:
        row = r.row(store_text)
        row["checks"] = json.loads(row["checks"])
        row["retry_reasons"] = dict(r.retries)
        out.append({"type": "run", **row})
    out += [{"type": "score", **s.to_dict()} for s in scores]
    out += [{"type": "recommendation", **rec.to_dict()} for rec in recs]
    return out


def write_jsonl(path: str | Path, lines: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path
