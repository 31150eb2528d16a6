"""Issue #12: the whole starter bench suite on the embedded 0.5B model, through the real command.

Run: ``.venv/bin/python benchmarks/bench_starter.py [--k 3] [--out DIR]``.
Writes the starter suite, runs ``modelyard bench`` on the embedded default config (the cloud model
has no key, so only the local model is measured), and prints the wall time against the 10-minute
target plus the per-agent pass rates; the chart, the JSONL export and the printed report land in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="modelyard-bench-")))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    suite = out / "bench.yaml"
    suite.unlink(missing_ok=True)
    env = {**os.environ, "MODELYARD_DATA_DIR": str(out / "data"), "COLUMNS": "160"}
    env.pop("ANTHROPIC_API_KEY", None)
    modelyard = [sys.executable, "-m", "modelyard"]
    subprocess.run([*modelyard, "bench", "--init", str(suite)], check=True, env=env, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run([*modelyard, "bench", str(suite), "-k", str(args.k), "--chart", str(out / "starter.png"),
                           "--export", str(out / "starter.jsonl")], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (out / "report.txt").write_text(done.stdout)
    if done.returncode != 0:
        sys.exit(f"bench failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = [json.loads(line) for line in (out / "starter.jsonl").read_text().splitlines()]
    runs = [line for line in lines if line["type"] == "run"]
    print(f"starter suite, k={args.k}: {len(runs)} runs on the embedded model in {wall:.0f} s "
          f"(target < {TARGET_S:.0f} s: {'met' if wall < TARGET_S else 'NOT met'})")
    print(f"{'agent':<14}{'pass@1':>8}{'pass^k':>8}{'TTFT p50':>10}{'tok/s':>8}{'passing/min':>13}")
    for s in (line for line in lines if line["type"] == "score"):
        hat = "–" if s["pass_hat_k"] is None else f"{s['pass_hat_k']:.0%}"
        print(f"{s['agent']:<14}{s['pass_at_1']:>8.0%}{hat:>8}{s['ttft_p50_ms'] or 0:>8.0f}ms"
              f"{s['tokens_per_s_p50'] or 0:>8.1f}{s['passing_per_min'] or 0:>13.1f}")
    print(f"report: {out / 'report.txt'}  chart: {out / 'starter.png'}  export: {out / 'starter.jsonl'}")


if __name__ == "__main__":
    main()
