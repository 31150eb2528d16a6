"""What one replayed request costs, phase by phase, in CPU time or (load-independent) instructions.

    .venv/bin/python benchmarks/replay_cost.py [--requests 4000] [--phase all|fit|current|candidate]
    .venv/bin/python benchmarks/replay_cost.py --callgrind [--phase candidate]   # instructions per request

The log is the speed benchmark's synthetic one (benchmarks/replay_log.py) at the same arrival rate as
its month of 1,000,000 requests, cut to ``--requests`` (kept in the temp dir). ``--callgrind`` runs this
script under valgrind twice, at N and 2N requests, and divides the difference by N: the start-up
(imports, config, the loop) cancels out, and an instruction count does not move with the machine's
load. ``--json FILE`` writes what ``replay --json`` prints, to compare two versions' figures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from modelyard.config import load_config  # noqa: E402
from modelyard.ledger.report import Period  # noqa: E402
from modelyard.ledger.store import LogStore  # noqa: E402

START = 1_760_000_000.0
#: the speed benchmark's month: 1,000,000 requests in 30 days
RATE = 1_000_000 / (30 * 86400)


def _log(n: int) -> tuple[Path, Path, Path]:
    from replay_log import write_config, write_log

    directory = Path(tempfile.gettempdir()) / "modelyard-replay-cost"
    directory.mkdir(exist_ok=True)
    log = directory / f"log-{n}.sqlite3"
    if not log.exists():
        partial = log.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        write_log(partial, n, START, days=n / RATE / 86400)
        partial.rename(log)
    return log, write_config(directory / "cur.yaml", log), write_config(directory / "half.yaml", log, slots=1)


def run(n: int, phase: str, as_json: Path | None) -> None:
    from modelyard.replay import run as replay_run
    from modelyard.replay.engine import simulate

    log, cur, half = _log(n)
    current, candidate = load_config(cur), load_config(half)
    store = LogStore(log)
    period = Period(START - 60, START + 31 * 86400, "synthetic", 1)
    t0 = time.process_time()
    if phase == "all":
        r = replay_run.replay(store, current, candidate, period, parallel=False)
        if as_json is not None:
            from modelyard.replay.summary import to_dict

            as_json.write_text(json.dumps(to_dict(r), indent=1, sort_keys=True))
    else:
        conn = store.connect()
        try:
            measured, lengths = replay_run._fit(conn, period, 0)
            profiles, _ = replay_run.profiles_for([current, candidate], measured, {}, {})
            first, last = replay_run.source.bounds(conn, period.start, period.end)
        finally:
            conn.close()
        if phase != "fit":
            config = replay_run._for_replay(current if phase == "current" else candidate)
            conn = store.connect()
            try:
                arrivals = replay_run.source.arrivals(conn, period.start, period.end)
                simulate(config, arrivals, profiles, start=(first or START) - 1, tokens_out=lengths)
            finally:
                conn.close()
    print(f"{phase}: {n} requests, {time.process_time() - t0:.2f} s CPU", flush=True)


def callgrind(n: int, phase: str) -> None:
    counts = []
    for size in (n, 2 * n):
        _log(size)  # written outside valgrind
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                              __file__, "--requests", str(size), "--phase", phase],
                             capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", out.stderr)
        assert found, out.stderr[-2000:]
        counts.append(int(found.group(1)))
    print(f"{phase}: {(counts[1] - counts[0]) / n / 1000:.1f} k instructions per request "
          f"(valgrind, {n} → {2 * n} requests)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--phase", choices=("all", "fit", "current", "candidate"), default="all")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.callgrind:
        callgrind(args.requests, args.phase)
    else:
        run(args.requests, args.phase, args.json)


if __name__ == "__main__":
    main()
