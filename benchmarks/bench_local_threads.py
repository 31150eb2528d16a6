"""The embedded model's generation threads: speed, and whether ``serve`` stays responsive meanwhile.

    .venv/bin/python benchmarks/bench_local_threads.py [--rounds 3] [--threads 1,2] [--tokens 160]

For each thread count, side by side and interleaved per round:

- **llama.cpp alone**: llama-cpp-python in a process of its own, the same GGUF, prompt and thread
  count, no gateway — the floor: the fastest this machine generates with that many threads;
- **serve**: the real ``modelyard serve`` with two agents — ``writer`` on the embedded model
  (``threads:`` set to the count) and ``chat`` on an instant OpenAI-compatible backend (a cloud
  model that answers at once). One streamed ``writer`` answer runs while a client asks ``chat``
  every 20 ms: how long a request the local model does not serve takes while it generates (the
  gateway's event loop shares the cores with llama.cpp's threads), against the same requests with
  no generation running.

Figures are medians over rounds: tokens/s of the answer after its first token, its time to first
token, ``chat``'s p50/p99 during the generation and idle, and the CPU seconds each generated token
cost the process (threads that spin at llama.cpp's barriers burn CPU without producing tokens).
The machine's load average is printed with each round: this measures contention, so it matters.
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
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

from bench_gateway import HOST, PY, ROOT, free_port, run_backend, serve_cmd, stop
from bench_gateway_hotpath import cpu_seconds, pct, spawn

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
#: the bare llama.cpp run: same prompt, same chat template, streamed, in a process of its own
_ALONE = r"""
import json, os, sys, time
from llama_cpp import Llama
path, threads, tokens, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=os.cpu_count(), verbose=False)
t0 = time.perf_counter(); c0 = time.process_time(); first = None; n = 0
for part in llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], max_tokens=tokens,
                                       temperature=0, stream=True):
    if part["choices"][0]["delta"].get("content"):
        n += 1
        if first is None:
            first = time.perf_counter()
end = time.perf_counter()
print(json.dumps({"ttft": first - t0, "tokens": n, "gen_s": end - first, "cpu": time.process_time() - c0}))
"""


@dataclass
class Figures:
    tok_s: list[float] = field(default_factory=list)
    ttft_s: list[float] = field(default_factory=list)
    cpu_per_token_ms: list[float] = field(default_factory=list)
    busy_p50: list[float] = field(default_factory=list)
    busy_p99: list[float] = field(default_factory=list)
    idle_p50: list[float] = field(default_factory=list)
    idle_p99: list[float] = field(default_factory=list)


def model_path() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from modelyard.paths import default_model_path

    path = default_model_path()
    if not path.is_file():
        raise SystemExit(f"the embedded model is missing ({path}): run scripts/bootstrap.sh")
    return str(path)


def alone(path: str, threads: int, tokens: int, figs: Figures) -> None:
    done = subprocess.run([PY, "-c", _ALONE, path, str(threads), str(tokens), PROMPT], capture_output=True,
                          text=True, timeout=600, check=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    figs.tok_s.append((r["tokens"] - 1) / r["gen_s"])
    figs.ttft_s.append(r["ttft"])
    figs.cpu_per_token_ms.append(r["cpu"] / r["tokens"] * 1000)


async def _chat_latencies(session: aiohttp.ClientSession, url: str, until: asyncio.Event | None,
                          n: int | None) -> list[float]:
    """``chat`` every 20 ms until ``until`` is set (or ``n`` times): each request's latency in ms."""
    body = {"model": "chat", "messages": [{"role": "user", "content": "ping"}]}
    out: list[float] = []
    while (until is None or not until.is_set()) and (n is None or len(out) < n):
        t0 = time.perf_counter()
        async with session.post(url, json=body) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"chat: HTTP {r.status}")
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.02)
    return out


async def _measure_serve(port: int, pid: int, tokens: int, figs: Figures) -> None:
    url = f"http://{HOST}:{port}/v1/chat/completions"
    proc = psutil.Process(pid)
    async with aiohttp.ClientSession() as session:
        # the model loaded and warm: one short answer first
        async with session.post(url, json={"model": "writer", "max_tokens": 2,
                                           "messages": [{"role": "user", "content": "hi"}]}) as r:
            await r.read()
        await _chat_latencies(session, url, None, 20)  # connections and caches warm
        finished = asyncio.Event()
        watcher = asyncio.create_task(_chat_latencies(session, url, finished, None))
        body = {"model": "writer", "stream": True, "max_tokens": tokens, "temperature": 0,
                "messages": [{"role": "user", "content": PROMPT}]}
        cpu0 = cpu_seconds(proc)
        t0 = time.perf_counter()
        first = None
        n = 0
        async with session.post(url, json=body) as r:
            async for line in r.content:
                if not line.startswith(b"data: {"):
                    continue
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0].get("delta", {}).get("content"):
                    n += 1
                    if first is None:
                        first = time.perf_counter()
        end = time.perf_counter()
        cpu = cpu_seconds(proc) - cpu0
        finished.set()
        busy = await watcher
        idle = await _chat_latencies(session, url, None, max(len(busy), 50))
    if first is None or n < 2:
        raise RuntimeError("the writer answer streamed no text")
    figs.tok_s.append((n - 1) / (end - first))
    figs.ttft_s.append(first - t0)
    figs.cpu_per_token_ms.append(cpu / n * 1000)
    figs.busy_p50.append(pct(busy, 50))
    figs.busy_p99.append(pct(busy, 99))
    figs.idle_p50.append(pct(idle, 50))
    figs.idle_p99.append(pct(idle, 99))


def serve_round(tmp: Path, threads: int, backend: int, tokens: int, figs: Figures, errors: Path) -> None:
    home = tmp / f"serve-{threads}"
    home.mkdir(exist_ok=True)
    cfg = home / "config.yaml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "models": {"local": {"provider": "llamacpp", "threads": threads, "context": 2048},
                   "cloud": {"provider": "openai", "endpoint": f"http://{HOST}:{backend}", "max_concurrent": 64}},
        "agents": {"writer": {"primary": "local"}, "chat": {"primary": "cloud"}},
        "log": {"path": str(home / "log.db")}, "defaults": {"retries": {"attempts": 0}}}))
    port = free_port()
    proc = spawn(serve_cmd(cfg, port), port, errors, {"MODELYARD_DATA_DIR": str(home / "data")})
    try:
        asyncio.run(_measure_serve(port, proc.pid, tokens, figs))
    finally:
        stop([proc])


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="thread counts, comma-separated")
    parser.add_argument("--tokens", type=int, default=160, help="length of the answer generated")
    parser.add_argument("--backend", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend:
        return run_backend(args.backend, keep_alive=300)
    counts = sorted({int(t) for t in args.threads.split(",")})
    path = model_path()
    alone_figs = {t: Figures() for t in counts}
    serve_figs = {t: Figures() for t in counts}
    print(f"cores: {os.cpu_count()}; {args.rounds} rounds; thread counts {counts}; "
          f"answer of up to {args.tokens} tokens")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        errors = tmp / "stderr.txt"
        backend = free_port()
        procs = [spawn([PY, __file__, "--backend", str(backend)], backend, errors)]
        try:
            for r in range(args.rounds):
                order = counts if r % 2 == 0 else counts[::-1]
                for t in order:
                    load = os.getloadavg()[0]
                    alone(path, t, args.tokens, alone_figs[t])
                    serve_round(tmp, t, backend, args.tokens, serve_figs[t], errors)
                    a, s = alone_figs[t], serve_figs[t]
                    print(f"round {r + 1}, {t} thread(s), load {load:.1f}: alone {a.tok_s[-1]:.1f} tok/s; serve "
                          f"{s.tok_s[-1]:.1f} tok/s, chat p50 {s.busy_p50[-1]:.1f} ms while generating "
                          f"({s.idle_p50[-1]:.1f} idle)", flush=True)
        except BaseException:
            if errors.exists():
                print(errors.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            stop(procs)
    print()
    print("| threads | llama.cpp alone: tok/s | serve: tok/s | × alone | TTFT s | CPU ms/token | "
          "chat p50 / p99 while generating | chat p50 / p99 idle |")
    print("|---|---|---|---|---|---|---|---|")
    for t in counts:
        a, s = alone_figs[t], serve_figs[t]
        print(f"| {t} | {med(a.tok_s):.1f} | {med(s.tok_s):.1f} | {med(s.tok_s) / med(a.tok_s):.2f} | "
              f"{med(s.ttft_s):.2f} | {med(s.cpu_per_token_ms):.0f} (alone {med(a.cpu_per_token_ms):.0f}) | "
              f"{med(s.busy_p50):.1f} / {med(s.busy_p99):.1f} ms | {med(s.idle_p50):.1f} / {med(s.idle_p99):.1f} ms |")


if __name__ == "__main__":
    main()
