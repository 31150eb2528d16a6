"""Run a reliability profile and print its figures (the tables in RELIABILITY.md).

    python -m tests.reliability.run_profiles --profile short            # ~20 s: 500 @ 50, kill -9 mid-load
    python -m tests.reliability.run_profiles --profile long             # 5,000 @ 200, kill -9, 30 min soak
    python -m tests.reliability.run_profiles --profile long --minutes 5 # shorter soak
    python -m tests.reliability.run_profiles --profile soak --minutes 10
    python -m tests.reliability.run_profiles --profile short --mix shapes   # issue 8's fault shapes

Everything runs on loopback: fake backends in this process, the gateway as a subprocess.
The pytest suite (tests/reliability) is what CI runs; it includes the short profile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import psutil
from tests.reliability.loadgen import crash_profile, load_profile, soak_profile


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{mem:.0f} GB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["short", "long", "soak"], required=True)
    parser.add_argument("--minutes", type=float, default=30.0, help="soak duration (long and soak profiles)")
    parser.add_argument("--requests", type=int, help="override the load size")
    parser.add_argument("--clients", type=int, help="override the concurrency")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=["timing", "shapes"], default="timing",
                        help="backend faults of the load: stalls/statuses/resets, or issue 8's odd bodies")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    n, clients = {"short": (500, 50), "long": (5000, 200), "soak": (0, 0)}[args.profile]
    n, clients = args.requests or n, args.clients or clients
    out: dict[str, object] = {"profile": args.profile, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    print(f"# reliability profile '{args.profile}' — {out['date']} — {out['machine']}\n")
    ok = True
    with tempfile.TemporaryDirectory(prefix="modelyard-reliability-") as tmp:
        root = Path(tmp)
        if n:
            (root / "load").mkdir()
            fig = load_profile(root / "load", n, clients, seed=args.seed, mix=args.mix)
            print(f"## load: {n} requests at {clients} concurrent clients\n{fig.table()}\n")
            if fig.lost_details:
                print("lost:", *fig.lost_details, sep="\n  ")
            if fig.gateway_errors:
                print("gateway error lines:", *fig.gateway_errors[:20], sep="\n  ")
            out["load"] = {**asdict(fig), "lost": fig.lost}
            ok &= fig.lost == 0 and fig.log.rows == n and not fig.log.missing_ids and fig.log.integrity == "ok"
            (root / "crash").mkdir()
            crash = crash_profile(root / "crash", max(300, n // 2), clients, kill_after=max(100, n // 6),
                                  seed=args.seed + 1)
            print(f"## crash\n{crash.table()}\n")
            out["crash"] = asdict(crash)
            ok &= crash.integrity == "ok" and not crash.missing and crash.served_after_restart
        if args.profile in ("long", "soak"):
            (root / "soak").mkdir()
            soak = soak_profile(root / "soak", args.minutes, concurrency=50, seed=args.seed + 2)
            print(f"## soak\n{soak.table()}\n")
            first, last = soak.quarter_medians_mb()
            out["soak"] = {"minutes": soak.minutes, "requests": soak.requests, "counts": soak.counts,
                           "rss_first_quarter_mb": first, "rss_last_quarter_mb": last,
                           "samples": soak.samples, "log_rows": soak.log.rows,
                           "missing_ids": soak.log.missing_ids, "integrity": soak.log.integrity}
            ok &= soak.log.integrity == "ok" and not soak.log.missing_ids and soak.counts.get("lost", 0) == 0
            ok &= soak.log.rows == soak.requests
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    print("RESULT:", "held" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
