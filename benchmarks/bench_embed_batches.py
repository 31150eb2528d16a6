"""An embeddings request split over one call's bound, and a list of text-completion prompts: wall time through the
gateway against a local fake OpenAI-compatible server that takes ``--delay`` seconds a call (tests/fakes), with the
model's ``max_concurrent`` at 1 (every call in turn, as before) and at ``--slots``.

    flock /work/team/bench.lock .venv/bin/python benchmarks/bench_embed_batches.py [--runs 5] [--delay 0.2]

Prints the median of ``--runs`` requests per setting: 40 texts in calls of 10 (4 calls) and 4 prompts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.fakes import Fault, OpenAIServer  # noqa: E402
from tests.gateway.harness import GatewayServer  # noqa: E402
from tests.helpers import make_config  # noqa: E402

TEXTS = [f"passage number {i} about embeddings" for i in range(40)]
PROMPTS = ["one", "two", "three", "four"]


def _timed(gw: GatewayServer, path: str, body: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = httpx.post(gw.url + path, json=body, timeout=60)
        times.append(time.perf_counter() - start)
        assert r.status_code == 200, r.text
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    with OpenAIServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.faults.set_default(Fault.delay(args.delay))
        for slots in (1, args.slots):
            models = {"m": {"provider": "openai", "endpoint": server.url, "model": "bge", "max_embed_batch": 10,
                            "max_concurrent": slots}}
            defaults = {"timeouts": {"queue": 30, "first_token": 30, "idle": 30, "total": 60},
                        "retries": {"attempts": 0}}
            config = make_config(models, {"a": {"primary": "m"}}, defaults=defaults,
                                 log={"path": str(Path(tmp) / f"log{slots}.db")})
            with GatewayServer(config) as gw:
                embed = _timed(gw, "/v1/embeddings", {"model": "a", "input": TEXTS}, args.runs)
                prompts = _timed(gw, "/v1/completions", {"model": "a", "prompt": PROMPTS, "max_tokens": 5}, args.runs)
            print(f"max_concurrent {slots}: 40 texts in 4 calls {embed:.3f} s, 4 prompts {prompts:.3f} s "
                  f"(median of {args.runs}; a call takes {args.delay:g} s)")


if __name__ == "__main__":
    main()
