"""What makes the gateway's p99 at concurrency 1 (issue #15): each request's latency by index, beside what ran then.

    .venv/bin/python benchmarks/hotpath_tail.py [-n 4000] [--src OTHER/src] [--out DIR]

One run, on loopback: the instant backend and the floor proxy of ``bench_gateway_hotpath.py`` and a real
``modelyard serve`` (same config), started through a launcher that records, with ``time.perf_counter``
(CLOCK_MONOTONIC: one clock for every process on the machine), in ``serve``:

- every garbage collection (``gc.callbacks``: generation, duration, objects collected);
- every SQLite statement and its thread (a ``sqlite3.Connection`` subclass as the connections' factory):
  the writer's commits, the checkpoint thread's ``wal_checkpoint``s, the writer's own folds;
- every routing-log commit wait of a request (``LogWriter.wait_written``) and whether its blocking part
  (``SOLE_WAIT``) sufficed, and every hand-off of a row (``LogWriter.submit``: where a lone row is committed on the
  loop's own thread since round 22, so the commit's time moved from the wait into it).

The client sends ``-n`` sequential requests to each of ``serve`` and the floor (two halves, interleaved, after
300 of warm-up each), keeping each request's index and start. The report: both latency distributions; the
collections, checkpoints and commit waits inside the measured window; the requests that overlapped a checkpoint
against the rest; the slowest 1% of ``serve``'s requests by index, each with what overlapped it (so a period —
every N requests, every few seconds — shows). Wall time: run it under ``flock /work/team/bench.lock`` and quote
the load; proportions and overlaps say more than the figures on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench_gateway import HOST, PY, ROOT, free_port, stop, wait_ready
from bench_gateway_hotpath import BODY, HEADERS
from hotpath_counts import config

#: run in ``serve``'s interpreter: record gc, SQLite statements and commit waits; write them out on SIGUSR1
_PROBE = r"""
import gc, json, os, runpy, signal, sqlite3, sys, threading, time
pc = time.perf_counter
events = []
started = {}
def on_gc(phase, info):
    if phase == "start":
        started["gc"] = pc()
    else:
        t0 = started.pop("gc", pc())
        events.append(("gc", t0, pc() - t0, info["generation"], info["collected"]))
gc.callbacks.append(on_gc)
class Timed(sqlite3.Connection):
    def execute(self, sql, *args):
        t0 = pc()
        try:
            return super().execute(sql, *args)
        finally:
            events.append(("sql", t0, pc() - t0, sql[:40], threading.current_thread().name))
plain = sqlite3.connect
def connect(*args, **kwargs):
    kwargs.setdefault("factory", Timed)
    return plain(*args, **kwargs)
sqlite3.connect = connect
from modelyard.ledger import writer
blocking, waiting = writer.LogWriter._wait_blocking, writer.LogWriter.wait_written
def wait_blocking(self, target, bound):
    t0 = pc()
    ok = blocking(self, target, bound)
    events.append(("block", t0, pc() - t0, bool(ok)))
    return ok
async def wait_written(self, timeout=10.0, *, block=0.0):
    t0 = pc()
    ok = await waiting(self, timeout, block=block)
    events.append(("wait", t0, pc() - t0, block))
    return ok
writer.LogWriter._wait_blocking, writer.LogWriter.wait_written = wait_blocking, wait_written
submitting = writer.LogWriter.submit
def submit(self, record, *, crowd=False):
    t0 = pc()
    try:
        return submitting(self, record, crowd=crowd)
    finally:
        events.append(("submit", t0, pc() - t0, crowd))
writer.LogWriter.submit = submit
def dump(*_):
    out = os.environ["HOTPATH_TAIL_OUT"]
    with open(out + ".part", "w") as f:
        json.dump(events, f)
    os.replace(out + ".part", out)  # whole or absent: the client reads it once it exists
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["modelyard", *sys.argv[1:]]
runpy.run_module("modelyard", run_name="__main__")
"""

#: (index, perf_counter at start, milliseconds)
Sample = tuple[int, float, float]


async def sequential(session: aiohttp.ClientSession, url: str, n: int, first: int = 0) -> list[Sample]:
    out = []
    for i in range(first, first + n):
        t0 = time.perf_counter()
        async with session.post(url, data=BODY, headers=HEADERS) as r:
            body = await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {body[:200]!r}")
        out.append((i, t0, (time.perf_counter() - t0) * 1000))
    return out


async def drive(urls: dict[str, str], n: int) -> dict[str, list[Sample]]:
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=1))
                for name in urls}
    got: dict[str, list[Sample]] = {name: [] for name in urls}
    try:
        for name, url in urls.items():
            await sequential(sessions[name], url, 300)
        for half in range(2):
            for name, url in urls.items():
                got[name] += await sequential(sessions[name], url, n // 2, half * (n // 2))
    finally:
        for s in sessions.values():
            await s.close()
    return got


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def dist(values: list[float]) -> str:
    return (f"n={len(values)} p50 {pct(values, 50):.2f} p90 {pct(values, 90):.2f} p99 {pct(values, 99):.2f} "
            f"max {max(values, default=float('nan')):.2f} ms")


def report(lat: dict[str, list[Sample]], events: list[list[Any]]) -> list[str]:
    serve = lat["serve"]
    t0, t1 = min(s[1] for s in serve), max(s[1] + s[2] / 1000 for s in serve)
    inside = [e for e in events if t0 <= e[1] <= t1]
    lines = [f"{name}: {dist([s[2] for s in samples])}" for name, samples in lat.items()]
    gcs = [e for e in inside if e[0] == "gc"]
    for gen in (0, 1, 2):
        mine = [e[2] * 1000 for e in gcs if e[3] == gen]
        lines.append(f"serve gc generation {gen} in the window: {len(mine)}"
                     + (f", {statistics.median(mine):.2f} ms median, {max(mine):.2f} max" if mine else ""))
    sql = [e for e in inside if e[0] == "sql"]
    checkpoints = [(e[1], e[1] + e[2]) for e in sql if "wal_checkpoint" in e[3] and e[4].endswith("checkpoint")]
    folds = [e[2] * 1000 for e in sql if "wal_checkpoint" in e[3] and e[4].endswith("writer")]
    commits = [e for e in sql if e[3].startswith("COMMIT") and not e[4].endswith("checkpoint")]

    def overlaps(spans: list[tuple[float, float]], a: float, b: float) -> bool:
        return any(s < b and e > a for s, e in spans)

    lines.append(f"checkpoints: {len(checkpoints)}, "
                 f"{statistics.median([(b - a) * 1000 for a, b in checkpoints]) if checkpoints else 0:.1f} ms median; "
                 f"folds on the writer: {len(folds)} {[round(f, 1) for f in folds]}")
    during = [e[2] * 1000 for e in commits if overlaps(checkpoints, e[1], e[1] + e[2])]
    apart = [e[2] * 1000 for e in commits if not overlaps(checkpoints, e[1], e[1] + e[2])]
    lines.append(f"commits during a checkpoint: {dist(during)}; the others: {dist(apart)}")
    hit = [s[2] for s in serve if overlaps(checkpoints, s[1], s[1] + s[2] / 1000)]
    rest = [s[2] for s in serve if not overlaps(checkpoints, s[1], s[1] + s[2] / 1000)]
    lines.append(f"requests during a checkpoint: {dist(hit)}; the others: {dist(rest)}")
    blocks = [e for e in inside if e[0] == "block"]
    waits = [e[2] * 1000 for e in inside if e[0] == "wait"]
    lines.append(f"commit waits: {dist(waits)}; the blocking wait ran out in {sum(1 for e in blocks if not e[3])} "
                 f"of {len(blocks)}")
    # the hand-off too: a lone row committed at it (round 22) moves the commit from the wait into submit
    submits = [e[2] * 1000 for e in inside if e[0] == "submit"]
    on_loop = sum(1 for e in commits if not e[4].endswith("writer"))
    lines.append(f"hand-offs (submit): {dist(submits)}; hand-off + commit wait: "
                 f"{dist([a + b for a, b in zip(submits, waits, strict=False)])}; commits on the loop's thread: "
                 f"{on_loop} of {len(commits)}")
    slow = sorted(sorted(serve, key=lambda s: -s[2])[:max(10, len(serve) // 100)])
    lines.append(f"slowest 1% of serve's (index, ms: what overlapped it; gaps between indices "
                 f"{[b[0] - a[0] for a, b in itertools.pairwise(slow)]}):")
    for i, start, ms in slow:
        end = start + ms / 1000
        seen = [e for e in inside if e[0] in ("gc", "sql", "wait") and e[1] < end and e[1] + e[2] > start
                and (e[0] != "sql" or "checkpoint" in e[3] or e[2] > 0.001)]
        said = "; ".join(f"{e[0]} {e[3] if e[0] != 'wait' else ''} {e[2] * 1000:.2f} ms".replace("  ", " ")
                         for e in seen)
        lines.append(f"  #{i:5d} {ms:7.2f} ms: {said}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=4000, help="sequential requests measured per target")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the checkout's src directory serve runs")
    parser.add_argument("--out", type=Path, help="keep the raw samples and events here (JSON)")
    args = parser.parse_args()
    gc.freeze()  # the client's own collections stay out of the samples it takes
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            script = str(ROOT / "benchmarks" / "bench_gateway_hotpath.py")
            backend, floor, port = free_port(), free_port(), free_port()
            for extra, at in (([str(backend)], backend), ([str(floor), str(backend)], floor)):
                procs.append(subprocess.Popen([PY, script, "--backend" if len(extra) == 1 else "--floor", *extra],
                                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                wait_ready(at, procs[-1])
            out = home / "events.json"
            env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "MODELYARD_DATA_DIR": str(home / "data"),
                   "HOTPATH_TAIL_OUT": str(out)}
            procs.append(subprocess.Popen([PY, "-c", _PROBE, "serve", "--config", str(config(home, backend)),
                                           "--port", str(port), "--no-access-log", "--log-level", "warning"],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=(home / "err").open("wb")))
            wait_ready(port, procs[-1], timeout=180)
            load = os.getloadavg()[0]
            lat = asyncio.run(drive({"serve": f"http://{HOST}:{port}/v1/chat/completions",
                                     "floor": f"http://{HOST}:{floor}/v1/chat/completions"}, args.n))
            procs[-1].send_signal(signal.SIGUSR1)
            for _ in range(300):
                if out.exists():
                    break
                time.sleep(0.1)
            events = json.loads(out.read_text())
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "samples.json").write_text(json.dumps(lat))
                (args.out / "events.json").write_text(json.dumps(events))
            print(f"load {load:.1f} before, {os.getloadavg()[0]:.1f} after; {args.n} sequential requests each")
            for line in report(lat, events):
                print(line)
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
