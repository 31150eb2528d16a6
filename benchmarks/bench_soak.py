"""Does a long-running ``modelyard serve`` stay bounded? RSS, open fds, event-loop tasks and threads over a mixed load.

    .venv/bin/python benchmarks/bench_soak.py                      # 20,000 requests at 32 clients, ~8-16 min
    .venv/bin/python benchmarks/bench_soak.py --requests 50000 --json soak.json
    .venv/bin/python benchmarks/bench_soak.py --requests 8000 --tracemalloc   # what grew, by where allocated

A real ``serve`` subprocess over loopback fakes (OpenAI → Ollama → Anthropic chain, each drawing a fault per
request from the reliability suite's timing mix: stalls, drips, 5xx, 429, resets mid-stream, hangs before
headers and after the first token, invalid JSON). The clients mix, per request:

* chat completions streamed and not, ``/v1/responses``, Anthropic's ``/v1/messages``, Ollama's ``/api/chat``;
* a client that hangs up mid-stream after its first bytes, and one that gives up before any answer;
* a never-seen ``model`` name (a new one every time: the gateway must refuse it, not remember it);
* a distinct ``user`` / ``metadata.user_id`` on every request, a wrong API key now and then (401);
* a client that sends half a request body and then nothing, its connection left open to the end (a laptop that
  went to sleep mid-request): serve closes it after ``KEEP_ALIVE_SECONDS`` (75 s) of silence, so its fds and
  tasks level off at what that many seconds of such clients hold.

Every ``--every`` finished requests it reads ``/metrics`` (``process_resident_memory_bytes``,
``process_open_fds``, ``modelyard_event_loop_tasks``, ``modelyard_threads``) and ``/proc/PID/status``
(native threads: llama.cpp's and aiohttp's resolvers count too). The figures: each series after warm-up (the
first ``--warmup`` share of the requests dropped), as a least-squares slope per 10,000 requests. A leak is a
slope that does not flatten; the fds, tasks and threads must come back to what they were between bursts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: the reliability suite's fakes and gateway process live in tests/
    sys.path.insert(0, str(ROOT))

from tests.reliability.loadgen import (  # noqa: E402
    AGENT,
    CLIENT_TIMEOUT,
    GatewayProcess,
    misbehaving_backends,
    write_config,
)

KEY = "soak-key-0123456789"
KEY_ENV = "MODELYARD_SOAK_KEYS"

#: (weight, kind) of each request
KINDS: list[tuple[float, str]] = [
    (30, "chat"), (18, "chat_stream"), (8, "responses"), (8, "responses_stream"), (8, "messages"),
    (6, "messages_stream"), (6, "ollama"), (4, "ollama_stream"), (5, "hangup_midstream"), (3, "give_up"),
    (3, "unknown_model"), (1, "bad_key"), (1, "silent"),
]

_METRIC = re.compile(r"^(process_resident_memory_bytes|process_open_fds|modelyard_event_loop_tasks|modelyard_threads)"
                     r" ([0-9.e+]+)$", re.M)


@dataclass
class Sample:
    done: int
    seconds: float
    rss_mb: float
    fds: int
    tasks: int
    py_threads: int
    os_threads: int


@dataclass
class Soak:
    requests: int
    clients: int
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)
    idle: Sample | None = None
    log_bytes: int = 0
    log_rows: int = 0


def _os_threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Tracer:
    """With ``--tracemalloc``: the gateway runs under benchmarks/soak_serve.py; a snapshot after warm-up and one at
    the end, and what grew between them, by where it was allocated."""

    def __init__(self, directory: Path, pid: int):
        self.directory, self.pid, self.taken = directory, pid, 0

    async def snapshot(self) -> None:
        self.taken += 1
        os.kill(self.pid, signal.SIGUSR1)
        done = self.directory / "snapshot.done"
        while not (done.exists() and done.read_text() == str(self.taken)):
            await asyncio.sleep(0.1)

    def growth(self, top: int = 12) -> str:
        import tracemalloc

        first = tracemalloc.Snapshot.load(str(self.directory / "snapshot-1.pickle"))
        last = tracemalloc.Snapshot.load(str(self.directory / f"snapshot-{self.taken}.pickle"))
        lines = [f"tracemalloc: {sum(s.size for s in last.traces) / 2**20:.1f} MB traced at the end, "
                 f"{sum(s.size for s in first.traces) / 2**20:.1f} MB after warm-up; what grew most:"]
        for stat in last.compare_to(first, "traceback")[:top]:
            lines.append(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
            lines += [f"      {line}" for line in stat.traceback.format(limit=6, most_recent_first=True)]
        return "\n".join(lines)


async def sample(client: httpx.AsyncClient, pid: int, done: int, t0: float) -> Sample:
    text = (await client.get("/metrics", headers={"authorization": f"Bearer {KEY}"})).text
    found = {m[1]: float(m[2]) for m in _METRIC.finditer(text)}
    return Sample(done, time.monotonic() - t0, found.get("process_resident_memory_bytes", 0) / 2**20,
                  int(found.get("process_open_fds", 0)), int(found.get("modelyard_event_loop_tasks", -1)),
                  int(found.get("modelyard_threads", 0)), _os_threads(pid))


def _body(kind: str, i: int, stream: bool) -> tuple[str, dict[str, Any]]:
    prompt = f"soak-{i} " + "lorem ipsum " * (i % 7)
    user = f"user-{i}"  # a new one every request
    if kind.startswith("responses"):
        return "/v1/responses", {"model": AGENT, "input": prompt, "stream": stream, "max_output_tokens": 32,
                                 "user": user}
    if kind.startswith("messages"):
        return "/v1/messages", {"model": AGENT, "max_tokens": 32, "stream": stream, "metadata": {"user_id": user},
                                "messages": [{"role": "user", "content": prompt}]}
    if kind.startswith("ollama"):
        return "/api/chat", {"model": AGENT, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    model = f"ghost-{i}" if kind == "unknown_model" else AGENT
    return "/v1/chat/completions", {"model": model, "stream": stream, "max_tokens": 32, "user": user,
                                    "messages": [{"role": "user", "content": prompt}]}


#: connections of the silent clients, held open until the run ends
_silent: list[asyncio.StreamWriter] = []


async def one(client: httpx.AsyncClient, kind: str, i: int, rng: random.Random) -> str:
    """One request of ``kind``; what came of it (a status, or how the client ended it)."""
    if kind == "silent":
        url = httpx.URL(str(client.base_url))
        _, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\n"
                     "content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"model\": ".encode())
        _silent.append(writer)
        return "left silent"
    headers = {"authorization": f"Bearer {KEY if kind != 'bad_key' else f'wrong-{i}'}"}
    if kind == "give_up":  # gives up before any answer: often while the gateway still waits on a hanging backend
        path, body = _body("chat", i, stream=False)
        try:
            await asyncio.wait_for(client.post(path, json=body, headers=headers), rng.uniform(0.005, 0.3))
            return "answered before give-up"
        except TimeoutError:
            return "gave up"
    stream = kind.endswith("_stream") or kind == "hangup_midstream"
    path, body = _body("chat_stream" if kind == "hangup_midstream" else kind, i, stream)
    if not stream:
        r = await client.post(path, json=body, headers=headers)
        return str(r.status_code)
    async with client.stream("POST", path, json=body, headers=headers) as r:
        if kind == "hangup_midstream":
            async for _ in r.aiter_raw():
                break  # closing the response unread closes its connection: the client is gone mid-stream
            return "hung up"
        async for _ in r.aiter_raw():
            pass
        return str(r.status_code)


async def run(url: str, pid: int, soak: Soak, *, every: int, seed: int, warmup: float,
              tracer: Tracer | None = None) -> None:
    kinds, weights = [k for _, k in KINDS], [w for w, _ in KINDS]
    counter = iter(range(soak.requests))
    done = 0
    t0 = time.monotonic()
    limits = httpx.Limits(max_connections=soak.clients * 2, max_keepalive_connections=soak.clients)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as client, \
            httpx.AsyncClient(base_url=url, timeout=30) as probe:
        soak.samples.append(await sample(probe, pid, 0, t0))
        next_at = every
        trace_at = soak.requests * warmup if tracer is not None else math.inf

        async def worker() -> None:
            nonlocal done, next_at, trace_at
            for i in counter:
                rng = random.Random(seed * 1_000_003 + i)
                kind = rng.choices(kinds, weights)[0]
                try:
                    outcome = await one(client, kind, i, rng)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                soak.kinds[kind] += 1
                soak.statuses[outcome] += 1
                done += 1
                if tracer is not None and done >= trace_at:
                    trace_at = math.inf
                    await tracer.snapshot()
                if done >= next_at:
                    next_at += every
                    soak.samples.append(await sample(probe, pid, done, t0))
                    s = soak.samples[-1]
                    print(f"  {s.done:>6}  {s.seconds:6.0f} s  RSS {s.rss_mb:6.1f} MB  fds {s.fds:4}  "
                          f"tasks {s.tasks:4}  threads {s.py_threads}/{s.os_threads}", flush=True)

        await asyncio.gather(*(worker() for _ in range(soak.clients)))
        soak.seconds = time.monotonic() - t0
        for writer in _silent:
            writer.close()
        await asyncio.sleep(3)  # hung-up streams and give-ups finish on the gateway's side; pools go idle
        soak.idle = await sample(probe, pid, done, t0)
        if tracer is not None:
            await tracer.snapshot()


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def summary(soak: Soak, warmup: float) -> dict[str, Any]:
    after = [s for s in soak.samples if s.done >= soak.requests * warmup]
    out: dict[str, Any] = {}
    for name in ("rss_mb", "fds", "tasks", "py_threads", "os_threads"):
        values = [(s.done / 10_000, float(getattr(s, name))) for s in after]
        out[name] = {"first": values[0][1] if values else None, "last": values[-1][1] if values else None,
                     "max": max((v for _, v in values), default=None),
                     "per_10k": round(slope(values), 3), "idle": getattr(soak.idle, name) if soak.idle else None}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--every", type=int, default=1000, help="sample every N finished requests")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of the requests left out of the slopes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="run the gateway under tracemalloc and print what grew after warm-up (slow; RSS not "
                             "comparable)")
    args = parser.parse_args(argv)
    soak = Soak(args.requests, args.clients)
    load = os.getloadavg()
    print(f"# soak {time.strftime('%Y-%m-%d %H:%M')} — {args.requests} requests at {args.clients} clients; "
          f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="modelyard-soak-") as tmp, misbehaving_backends(args.seed) as servers:
        directory = Path(tmp)
        config = write_config(directory, servers, extra={"gateway": {"api_keys_env": KEY_ENV}})
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        gateway = GatewayProcess(config, directory, env={KEY_ENV: KEY, "PYTHONPATH": path})
        if args.tracemalloc:
            gateway.args[1:3] = ["-X", "tracemalloc=12", "-m", "benchmarks.soak_serve", str(directory)]
        tracer = None
        try:
            gateway.start(timeout=300)  # tracemalloc makes the imports slow; a start that fails is stopped too
            assert gateway.proc is not None
            tracer = Tracer(directory, gateway.proc.pid) if args.tracemalloc else None
            asyncio.run(run(gateway.url, gateway.proc.pid, soak, every=args.every, seed=args.seed, warmup=args.warmup,
                            tracer=tracer))
            if tracer is not None:
                print(tracer.growth(), flush=True)
        finally:
            gateway.stop()
        db = directory / "log.db"
        soak.log_bytes = sum(p.stat().st_size for p in directory.glob("log.db*"))
        import sqlite3

        with sqlite3.connect(db) as conn:
            soak.log_rows = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    figures = summary(soak, args.warmup)
    end = os.getloadavg()
    print(f"\n{soak.requests} requests in {soak.seconds:.0f} s ({soak.requests / soak.seconds:.0f}/s), "
          f"load at end {end[0]:.1f} {end[1]:.1f} {end[2]:.1f}")
    print("kinds:", dict(soak.kinds))
    print("outcomes:", dict(soak.statuses))
    print(f"log: {soak.log_rows} request rows, {soak.log_bytes / 2**20:.1f} MB "
          f"({soak.log_bytes / max(soak.log_rows, 1):.0f} B per request row, store_text on)")
    print(f"{'series':<11} {'first':>8} {'last':>8} {'max':>8} {'per 10k':>9} {'idle':>8}  "
          f"(after {args.warmup:.0%} warm-up)")
    for name, f in figures.items():
        print(f"{name:<11} {f['first']:>8.1f} {f['last']:>8.1f} {f['max']:>8.1f} {f['per_10k']:>+9.2f} "
              f"{f['idle']:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "load_start": load, "load_end": end,
                                         "requests": soak.requests, "clients": soak.clients,
                                         "seconds": soak.seconds, "kinds": soak.kinds, "outcomes": soak.statuses,
                                         "samples": [s.__dict__ for s in soak.samples], "figures": figures,
                                         "log_bytes": soak.log_bytes, "log_rows": soak.log_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
