"""What borrowing a running ``serve``'s slots and breakers costs a front-end (``ask``, ``chat``, ``telegram``).

    .venv/bin/python benchmarks/bench_lending.py [--n 3000]

A real ``modelyard serve`` runs in a child process (its own data dir, loopback only); this process
is the front-end. Measured in interleaved blocks, p50 / p99 in microseconds:

1. one slot taken and given back (``acquire`` + ``release``, no contention): in-process state vs
   borrowed from serve (one round trip on the unix socket; the release is one-way);
2. a whole request's state traffic (``admit`` + ``acquire`` + ``release`` + ``succeeded`` +
   ``abandoned``): two round trips borrowed, the rest one-way.

For scale: a model's time to first token is tens to hundreds of milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelyard.config import load_config  # noqa: E402
from modelyard.router import ModelPool  # noqa: E402
from modelyard.router.lending import discover  # noqa: E402
from modelyard.router.state import ModelState  # noqa: E402


def _start_serve(directory: Path) -> tuple[subprocess.Popen, Path]:
    config = directory / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "max_concurrent": 2}},
        "agents": {"a": {"primary": "m"}}, "log": {"path": str(directory / "log.db")}}))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", "--config", str(config), "--port", str(port),
                             "--no-access-log", "--log-level", "warning", "--no-keep-warm", "--no-telegram"],
                            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while discover(config).entry is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("serve did not start")
        time.sleep(0.1)
    return proc, config


async def _slot(state: ModelState) -> None:
    await state.acquire(1.0)
    await state.release()


async def _request(state: ModelState) -> None:
    ticket = await state.admit()
    assert ticket is not None, "a free model admits every request"
    await state.acquire(1.0)
    await state.release()
    await state.succeeded(ticket)
    await state.abandoned(ticket)


async def _measure(n: int, block: int, config: Path) -> dict[str, dict[str, list[float]]]:
    cfg = load_config(config)
    local = ModelPool(cfg, providers={})["m"]
    borrowing = ModelPool(cfg, providers={}, borrow_from=config)
    borrowed = borrowing["m"]
    assert borrowing.serve is not None and await borrowing.serve.ready(), "serve is not lending"
    out: dict[str, dict[str, list[float]]] = {k: {"in-process": [], "borrowed": []} for k in ("slot", "request")}
    for _ in range(50):  # warm both paths
        await _request(borrowed)
    clock = time.perf_counter
    for _ in range(0, n, block):
        for kind, op in (("slot", _slot), ("request", _request)):
            for name, state in (("in-process", local), ("borrowed", borrowed)):
                samples = out[kind][name]
                for _ in range(block):
                    t0 = clock()
                    await op(state)
                    samples.append((clock() - t0) * 1e6)
    await borrowing.aclose()
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="samples per cell")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MODELYARD_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.pop("MODELYARD_STATE", None)
        proc, config = _start_serve(Path(tmp))
        try:
            results = asyncio.run(_measure(args.n, 100, config))
        finally:
            proc.terminate()
            proc.wait(15)
    load = os.getloadavg()[0]
    print(f"front-end borrowing serve's state — {args.n} samples per cell, load {load:.1f} on {os.cpu_count()} cores")
    print(f"{'':46} {'p50 µs':>9} {'p99 µs':>9}")
    summary = {}
    for kind, label in (("slot", "acquire + release"), ("request", "admit+acquire+release+verdicts")):
        for name, samples in results[kind].items():
            p50, p99 = statistics.median(samples), _pct(samples, 0.99)
            summary[f"{kind}/{name}"] = {"p50_us": round(p50, 1), "p99_us": round(p99, 1)}
            print(f"{label + ' — ' + name:46} {p50:9.1f} {p99:9.1f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
