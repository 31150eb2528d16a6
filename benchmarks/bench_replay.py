"""Replay benchmarks (issue 11), side by side in one run.

    .venv/bin/python benchmarks/bench_replay.py [--requests 2000] [--speed-requests 1000000] [--skip-fidelity]

1. Fidelity against reality. A backend with known service times (its own process: qwen answers in
   ~0.1 s + 20 tokens at 100 tok/s, gemma at half that speed, haiku fails with HTTP 500 for a
   stretch mid-run) behind the real ``modelyard serve`` (its own process), fed a recorded arrival
   schedule (Poisson plus bursts) by a client process. Run twice: qwen with 2 slots, then with 1.
   Then ``replay`` of the 2-slot log (a) with its own config — it must reproduce what was measured
   (queue-wait p50/p95 within 15%, fallback rate within 3 points) — and (b) with the 1-slot config
   as the candidate, against the real 1-slot run: same direction, roughly the same size.
2. Speed: a synthetic month of N logged requests (default 1,000,000; written once through the
   real log writer, kept in the temp dir) replayed end to end, current and candidate, both
   simulations in parallel worker processes (target: under 60 s on this 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from modelyard.config import load_config  # noqa: E402
from modelyard.ledger import connect  # noqa: E402
from modelyard.ledger.report import Period, build_report  # noqa: E402
from modelyard.ledger.store import LogStore  # noqa: E402
from modelyard.replay.run import replay  # noqa: E402

PY = sys.executable
HOST = "127.0.0.1"
WORDS = 20


# -- the backend: known service times, one failure window --------------------------------------

def run_backend(port: int, down_from: float, down_until: float) -> None:
    """OpenAI-compatible SSE; per model: TTFT then WORDS tokens at a fixed rate. ``down_*``: seconds
    after start during which haiku answers 500."""
    from aiohttp import web

    speeds = {"qwen": (0.10, 100.0), "gemma": (0.20, 50.0), "haiku": (0.15, 200.0)}
    started = time.monotonic()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        ttft, tps = speeds[model]
        if model == "haiku" and down_from <= time.monotonic() - started < down_until:
            return web.json_response({"error": {"message": "down", "type": "server_error"}}, status=500)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await asyncio.sleep(ttft)
        for i in range(WORDS):
            chunk = {"choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await asyncio.sleep(1 / tps)
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 30, "completion_tokens": WORDS}}
        await resp.write(b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


CONFIG = """
log: {{path: {log}}}
defaults:
  timeouts: {{queue: 5, first_token: 10, idle: 10, total: 60}}
  retries: {{attempts: 0}}
  cooldown: {{failures: 2, seconds: 20, max_seconds: 60}}
models:
  qwen: {{provider: openai, endpoint: "http://127.0.0.1:{port}", max_concurrent: {slots}, timeouts: {{queue: 1}}}}
  gemma: {{provider: openai, endpoint: "http://127.0.0.1:{port}", max_concurrent: 1}}
  haiku: {{provider: openai, endpoint: "http://127.0.0.1:{port}", max_concurrent: 8,
          price: {{input: 1, output: 5}}}}
agents:
  chat: {{primary: qwen, fallbacks: [gemma, haiku]}}
  writer: {{primary: haiku, fallbacks: [qwen]}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listening on {port}")


def schedule(n: int, rate: float, seed: int = 3) -> list[tuple[float, str]]:
    """Poisson arrivals at ``rate``/s, 70% chat, plus a burst of 12 chat requests every 40 s."""
    rng = random.Random(seed)
    out: list[tuple[float, str]] = []
    t, next_burst = 0.0, 20.0
    while len(out) < n:
        t += rng.expovariate(rate)
        out.append((t, "chat" if rng.random() < 0.7 else "writer"))
        if t >= next_burst:
            out.extend((t + rng.uniform(0, 0.5), "chat") for _ in range(12))
            next_burst += 40
    return sorted(out[:n])


async def drive(port: int, plan: list[tuple[float, str]]) -> int:
    import aiohttp

    failures = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.monotonic()

        async def one(at: float, agent: str) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            body = {"model": agent, "messages": [{"role": "user", "content": "hello"}]}
            async with session.post(f"http://{HOST}:{port}/v1/chat/completions", json=body) as resp:
                await resp.read()
                failures += resp.status != 200

        await asyncio.gather(*(one(at, agent) for at, agent in plan))
    return failures


def real_run(directory: Path, slots: int, plan: list[tuple[float, str]]) -> tuple[Path, Path]:
    span = plan[-1][0]
    backend_port, gw_port = free_port(), free_port()
    log = directory / f"slots{slots}.sqlite3"
    cfg = directory / f"slots{slots}.yaml"
    cfg.write_text(CONFIG.format(log=log, port=backend_port, slots=slots))
    backend = subprocess.Popen([PY, __file__, "--backend", str(backend_port), str(span * 0.4), str(span * 0.55)])
    gateway = subprocess.Popen([PY, "-m", "modelyard", "serve", "--config", str(cfg), "--port", str(gw_port),
                                "--no-access-log", "--log-level", "warning", "--no-keep-warm"], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        wait_port(backend_port)
        wait_port(gw_port)
        t0 = time.time()
        failed = asyncio.run(drive(gw_port, plan))
        print(f"  real run, qwen {slots} slot(s): {len(plan)} requests in {time.time() - t0:.0f} s, "
              f"{failed} without an answer", flush=True)
    finally:
        for proc in (gateway, backend):
            proc.terminate()
            proc.wait(timeout=30)
    return log, cfg


def figures(log: Path, cfg: Path) -> dict:
    return build_report(connect(log), load_config(cfg), Period(0, time.time() + 86400, "all", 1)).totals.summary()


def compare(label: str, a: dict, b: dict) -> None:
    print(f"  {'figure':22} {label:>28}")
    for key in ("queue_wait_p50_ms", "queue_wait_p95_ms", "fallback_rate", "latency_p50_ms", "latency_p95_ms",
                "local_share"):
        x, y = a[key], b[key]
        if key.endswith("_rate") or key.endswith("_share"):
            err = f"{(y - x) * 100:+.1f} points"
            print(f"  {key:22} {x:12.1%} → {y:8.1%}  {err}")
        else:
            err = f"{(y - x) / x:+.0%}" if x else ("exact" if y == x else f"{y:+.0f} ms")
            print(f"  {key:22} {x:10.0f}ms → {y:6.0f}ms  {err}")


def fidelity(n: int, rate: float) -> None:
    print(f"1. fidelity: {n} requests at ~{rate:g}/s + bursts, real gateway vs replay", flush=True)
    plan = schedule(n, rate)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        log2, cfg2 = real_run(directory, 2, plan)
        log1, cfg1 = real_run(directory, 1, plan)
        real2, real1 = figures(log2, cfg2), figures(log1, cfg1)
        window = Period(0, time.time() + 86400, "all", 1)
        t0 = time.perf_counter()
        r = replay(LogStore(log2), load_config(cfg2), load_config(cfg1), window)
        print(f"  replay of {r.requests} requests: {time.perf_counter() - t0:.1f} s")
        print("  (a) the 2-slot config replayed over its own log — measured → replayed:")
        compare("measured → replayed", real2, r.current.totals)
        print("  (b) candidate: qwen with 1 slot — real 1-slot run → replay's prediction:")
        compare("real → predicted", real1, r.candidate.totals)
        print(f"  change 2 → 1 slots, real:      wait p95 {real2['queue_wait_p95_ms']:.0f} → "
              f"{real1['queue_wait_p95_ms']:.0f} ms, fallback {real2['fallback_rate']:.1%} → "
              f"{real1['fallback_rate']:.1%}")
        print(f"  change 2 → 1 slots, predicted: wait p95 {r.current.totals['queue_wait_p95_ms']:.0f} → "
              f"{r.candidate.totals['queue_wait_p95_ms']:.0f} ms, fallback {r.current.totals['fallback_rate']:.1%}"
              f" → {r.candidate.totals['fallback_rate']:.1%}")


def speed(n: int) -> None:
    from replay_log import write_config, write_log

    directory = Path(tempfile.gettempdir()) / "modelyard-bench-replay"
    directory.mkdir(exist_ok=True)
    log = directory / f"synthetic-{n}.sqlite3"
    start = 1_760_000_000.0
    if not log.exists():
        t0 = time.perf_counter()
        write_log(log, n, start)
        print(f"  wrote a synthetic log of {n:,} requests in {time.perf_counter() - t0:.0f} s (kept: {log})")
    cur, half = write_config(directory / "cur.yaml", log), write_config(directory / "half.yaml", log, slots=1)
    window = Period(start - 60, start + 31 * 86400, "synthetic month", 1)
    t0 = time.perf_counter()
    r = replay(LogStore(log), load_config(cur), load_config(half), window)
    took = time.perf_counter() - t0
    print(f"2. speed: replayed {r.requests:,} logged requests (current + candidate) in {took:.1f} s "
          f"({took / r.requests * 1e6:.0f} µs per request; target: 1,000,000 in < 60 s)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--backend":
        run_backend(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=6.0)
    parser.add_argument("--speed-requests", type=int, default=1_000_000)
    parser.add_argument("--skip-fidelity", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_fidelity:
        fidelity(args.requests, args.rate)
    if not args.skip_speed:
        speed(args.speed_requests)


if __name__ == "__main__":
    main()
