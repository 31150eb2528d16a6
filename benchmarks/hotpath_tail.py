"""What makes the gateway's p99 at concurrency 1 (issue #15): each request's latency by index, beside what ran then.

    .venv/bin/python benchmarks/hotpath_tail.py [-n 4000] [--src OTHER/src] [--out DIR] [--chunk N] [--echo]
                                                [--sched] [--burst SECONDS] [--switch MS] [--slice US] [--fifo]

One run, on loopback: the instant backend and the floor proxy of ``bench_gateway_hotpath.py`` and a real
``modelyard serve`` (same config), started through a launcher that records, with ``time.perf_counter``
(CLOCK_MONOTONIC: one clock for every process on the machine), in ``serve``:

- every garbage collection (``gc.callbacks``: generation, duration, objects collected);
- every SQLite statement and its thread (a ``sqlite3.Connection`` subclass as the connections' factory):
  the writer's commits, the checkpoint thread's ``wal_checkpoint``s, the writer's own folds;
- every routing-log commit wait of a request (``LogWriter.wait_written``) and whether its blocking part
  (``SOLE_WAIT``) sufficed, and every hand-off of a row (``LogWriter.submit``: where a lone row is committed on the
  loop's own thread since round 22, so the commit's time moved from the wait into it).

and, since round 36, each request's span in the app (first byte in to answer sent) with the loop thread's CPU in
it, every loop callback that held the loop for more than 2 ms, the switch interval, the threads and the heap.

The client sends ``-n`` sequential requests to each of ``serve`` and the floor (two halves, interleaved, after
300 of warm-up each; ``--chunk 1``: one request to each in turn, so a burst of the machine's load hits every
target alike), keeping each request's index and start. ``--echo`` adds two bare asyncio servers on loopback
(protocol callbacks, no HTTP library): an echo (one hop) and a relay to it (two hops) — the tail this machine
gives any Python server. ``--sched`` (root: ``perf record`` of the scheduler's switches and wake-ups on
CLOCK_MONOTONIC) says, per request, how long the client and each server's main thread on its path waited for a
CPU (woken and not yet running, or preempted), and each target's latency less that wait. ``--burst`` runs 50
clients at each target first (as bench_gateway_hotpath.py's throughput blocks precede its latency blocks);
``--switch`` sets ``serve``'s ``sys.setswitchinterval``, ``--slice`` its loop thread's EEVDF slice (Linux 6.12+).
``--fifo`` (root) runs the measured requests with every thread of every server and of the client at one real-time
priority (``bench_gateway_hotpath.py --fifo``): the machine's other work no longer delays them, what is left is theirs.
Also printed: each server's voluntary context switches (sleeps) per request and ``serve``'s CPU per request by
thread. The report: both latency distributions; the
collections, checkpoints and commit waits inside the measured window; the requests that overlapped a checkpoint
against the rest; the slowest 1% of ``serve``'s requests by index, each with what overlapped it (so a period —
every N requests, every few seconds — shows). Wall time: run it under ``flock /work/team/bench.lock`` and quote
the load; proportions and overlaps say more than the figures on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench_gateway import HOST, PY, ROOT, free_port, stop, wait_ready
from bench_gateway_hotpath import BODY, FIFO_PRIORITY, HEADERS, run_echo, run_relay, set_fifo
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
cpu = time.thread_time
import asyncio.events
running = asyncio.events.Handle._run
def run_handle(self):
    t0, c0 = pc(), cpu()
    try:
        return running(self)
    finally:
        took = pc() - t0
        if took > 0.002:  # a callback that held the loop for more than 2 ms: what it was
            events.append(("slow", t0, took, repr(self._callback)[:90], cpu() - c0))
asyncio.events.Handle._run = run_handle
if os.environ.get("HOTPATH_SLICE_US"):  # Linux >= 6.12: a shorter EEVDF slice for the loop's thread
    import ctypes, struct
    attr = struct.pack("IIQiIQQQII", 56, 0, 0, 0, 0, int(float(os.environ["HOTPATH_SLICE_US"]) * 1000), 0, 0, 0, 0)
    ctypes.CDLL(None, use_errno=True).syscall(314, 0, ctypes.create_string_buffer(attr, 56), 0)
if os.environ.get("HOTPATH_CHECKPOINT_EVERY"):  # rows between the log's checkpoints (an experiment, not a setting)
    writer.CHECKPOINT_EVERY = int(os.environ["HOTPATH_CHECKPOINT_EVERY"])
if os.environ.get("HOTPATH_SWITCH"):
    sys.setswitchinterval(float(os.environ["HOTPATH_SWITCH"]) / 1000)
from modelyard.gateway import app as gateway_app
handling = gateway_app.GatewayApp.__call__
async def handle(self, scope, receive, send):
    t0, c0 = pc(), cpu()
    try:
        return await handling(self, scope, receive, send)
    finally:
        if scope["type"] == "http":
            events.append(("app", t0, pc() - t0, scope["path"], cpu() - c0))
gateway_app.GatewayApp.__call__ = handle
def dump(*_):
    out = os.environ["HOTPATH_TAIL_OUT"]
    events.append(("heap", pc(), 0.0, len(gc.get_objects()), gc.get_freeze_count(), gc.get_threshold(),
                   gc.get_stats(), sys.getswitchinterval(), {t.native_id: t.name for t in threading.enumerate()}))
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


async def drive(urls: dict[str, str], n: int, chunk: int, burst: float = 0.0,
                fifo: list[int] | None = None) -> dict[str, list[Sample]]:
    """``n`` requests to each target, ``chunk`` at a time to each in turn: the machine's bursts hit them alike.
    ``burst``: seconds at 50 clients to each target first (as bench_gateway_hotpath.py's throughput blocks);
    ``fifo``: these processes and the client at SCHED_FIFO for the measured requests."""
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=1))
                for name in urls}
    got: dict[str, list[Sample]] = {name: [] for name in urls}
    try:
        for name, url in urls.items():
            await sequential(sessions[name], url, 300)
        if burst:
            from bench_gateway_hotpath import client, throughput

            for url in urls.values():
                async with client(50) as crowd:
                    await throughput(crowd, url, 50, burst)
        if fifo:
            set_fifo([*fifo, os.getpid()], FIFO_PRIORITY)
        for first in range(0, n, chunk):
            for name, url in urls.items():
                got[name] += await sequential(sessions[name], url, min(chunk, n - first), first)
    finally:
        if fifo:
            set_fifo([*fifo, os.getpid()], 0)
        for s in sessions.values():
            await s.close()
    return got


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU ms (user + system) of each of a process's threads, by thread id."""
    out: dict[str, float] = {}
    tick = 1000 / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) * tick
    return out


def sched_delays(data: Path) -> dict[int, list[tuple[float, float]]]:
    """From ``perf sched timehist``: each thread's spans of waiting for a CPU — woken and not yet running, or
    preempted (switched out runnable) and not yet back — by thread id, on CLOCK_MONOTONIC (``perf record -k
    CLOCK_MONOTONIC``: perf_counter's clock)."""
    out: dict[int, list[tuple[float, float]]] = {}
    last: dict[int, str] = {}  # each thread's state when it was last switched out
    text = subprocess.run(["perf", "sched", "timehist", "--state", "-i", str(data)], capture_output=True,
                          text=True).stdout
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 7 or not parts[0][0].isdigit() or "[" not in parts[-5]:
            continue
        try:
            end, wait, delay, run = float(parts[0]), *(float(x) / 1000 for x in parts[-4:-1])
            tid = int(parts[-5].rsplit("[", 1)[1].split("/")[0].rstrip("]"))
        except (ValueError, IndexError):
            continue
        began = end - run
        if delay > 0:
            out.setdefault(tid, []).append((began - delay, began))
        if last.get(tid) == "R" and wait > 0:  # preempted: the whole time off the CPU was a wait for it
            out.setdefault(tid, []).append((began - delay - wait, began - delay))
        last[tid] = parts[-1]
    return out


def merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of ``spans``: a moment when two threads of the path both wait counts once."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def waited(spans: list[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of ``spans`` inside [a, b]."""
    return sum(max(0.0, min(e, b) - max(s, a)) for s, e in spans)


def switches(pid: int) -> int:
    """Voluntary context switches of a process's threads so far: each a sleep the scheduler must wake it from."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


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
    for e in events:
        if e[0] == "heap":
            lines.append(f"serve's heap at the end: {e[3]} tracked objects not frozen, {e[4]} frozen; thresholds "
                         f"{e[5]}; collections so far by generation {[g['collections'] for g in e[6]]}; switch "
                         f"interval {e[7] * 1000:g} ms; threads {sorted(e[8].values())}")
    slow_cb = [e for e in inside if e[0] == "slow"]
    kinds: dict[str, list[float]] = {}
    for e in slow_cb:
        kind = e[3].split(" at 0x")[0].split("(")[0][:70]
        kinds.setdefault(kind, []).append(e[2] * 1000)
    lines.append(f"loop callbacks over 2 ms in the window: {len(slow_cb)}; by kind (count, median ms, max ms): "
                 + "; ".join(f"{k} {len(v)} {statistics.median(v):.2f} {max(v):.2f}"
                             for k, v in sorted(kinds.items(), key=lambda kv: -len(kv[1]))[:12]))
    spans = [e[2] * 1000 for e in inside if e[0] == "app"]
    lines.append(f"serve's app (first byte in to answer sent, server side): {dist(spans)}; the loop thread's CPU "
                 f"in it: {dist([e[4] * 1000 for e in inside if e[0] == 'app'])}")
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
        seen = [e for e in inside if e[0] in ("gc", "sql", "wait", "app") and e[1] < end and e[1] + e[2] > start
                and (e[0] != "sql" or "checkpoint" in e[3] or e[2] > 0.001)]
        said = "; ".join(f"{e[0]} {e[3] if e[0] not in ('wait', 'app') else ''} {e[2] * 1000:.2f} ms"
                         f"{f' (cpu {e[4] * 1000:.2f})' if e[0] == 'app' else ''}".replace("  ", " ") for e in seen)
        lines.append(f"  #{i:5d} {ms:7.2f} ms: {said}")
    return lines


def sched_report(lat: dict[str, list[Sample]], delays: dict[int, list[tuple[float, float]]],
                 paths: dict[str, list[int]]) -> tuple[str, dict[str, list[float]]]:
    """Per target: latency, and latency less the time the client and the servers on the path (the main thread of
    each: its event loop) waited for a CPU — what the tail would be with a free core at every wake-up."""
    mine = [os.getpid()]  # the threads a request waits on: each process's main thread (its event loop)
    lines = ["waiting for a CPU (perf sched), per request: the client and the servers on the path"]
    out: dict[str, list[float]] = {}
    for name, samples in lat.items():
        spans = merged([s for tid in mine + paths[name] for s in delays.get(tid, [])])
        waits = [waited(spans, t0, t0 + ms / 1000) * 1000 for _, t0, ms in samples]
        less = out[name] = [ms - w for (_, _, ms), w in zip(samples, waits, strict=True)]
        slow = sorted(range(len(samples)), key=lambda i: -samples[i][2])[:max(1, len(samples) // 100)]
        lines.append(f"  {name}: p99 {pct([s[2] for s in samples], 99):.2f} ms; waited for a CPU: p50 "
                     f"{pct(waits, 50):.2f} p99 {pct(waits, 99):.2f} ms, in the slowest 1% "
                     f"{statistics.median(waits[i] for i in slow):.2f} of "
                     f"{statistics.median(samples[i][2] for i in slow):.2f} ms (median); latency less that wait: "
                     f"{dist(less)}")
    return "\n".join(lines), out


def contention_free(serve: list[Sample], less: list[float], events: list[list[Any]]) -> list[str]:
    """serve's latency less its path's waits for a CPU: the requests that overlapped a checkpoint or a collection
    against the rest, and the slowest 1% by it with what overlapped each."""
    checkpoints = [(e[1], e[1] + e[2]) for e in events if e[0] == "sql" and "wal_checkpoint" in e[3]]
    gcs = [(e[1], e[1] + e[2]) for e in events if e[0] == "gc"]

    def hit(spans: list[tuple[float, float]], sample: Sample) -> bool:
        return any(a < sample[1] + sample[2] / 1000 and b > sample[1] for a, b in spans)

    lines = ["serve, latency less the waits for a CPU:"]
    for what, spans in (("a checkpoint", checkpoints), ("a collection", gcs)):
        lines.append(f"  overlapping {what}: {dist([x for s, x in zip(serve, less, strict=True) if hit(spans, s)])}"
                     f"; the others: {dist([x for s, x in zip(serve, less, strict=True) if not hit(spans, s)])}")
    worst = sorted(range(len(serve)), key=lambda i: -less[i])[:max(1, len(serve) // 100)]
    lines.append("  its slowest 1%: " + ", ".join(
        f"#{serve[i][0]} {less[i]:.2f} ms{' (checkpoint)' if hit(checkpoints, serve[i]) else ''}"
        f"{' (gc)' if hit(gcs, serve[i]) else ''}" for i in sorted(worst)))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=4000, help="sequential requests measured per target")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the checkout's src directory serve runs")
    parser.add_argument("--out", type=Path, help="keep the raw samples and events here (JSON)")
    parser.add_argument("--echo", action="store_true",
                        help="also a bare asyncio echo (one hop) and relay (two hops): the machine's own tail")
    parser.add_argument("--chunk", type=int, help="requests to a target before the next one's turn "
                        "(default: two halves; 1: each request in turn, so a burst of the machine's hits all alike)")
    parser.add_argument("--burst", type=float, default=0.0, metavar="SECONDS",
                        help="first SECONDS at 50 clients to each target, then the sequential requests at once")
    parser.add_argument("--checkpoint-every", type=int, metavar="ROWS",
                        help="serve's routing log checkpointed every ROWS rows (ledger/writer.py CHECKPOINT_EVERY)")
    parser.add_argument("--slice", type=float, metavar="US", help="serve's loop thread's EEVDF slice (Linux 6.12+)")
    parser.add_argument("--switch", type=float, metavar="MS", help="serve's sys.setswitchinterval, in ms")
    parser.add_argument("--sched", action="store_true",
                        help="record the scheduler (perf, root) and say how much of each request was spent "
                             "waiting for a CPU by the client and the servers on its path")
    parser.add_argument("--fifo", action="store_true",
                        help="root: the measured requests with every server's and the client's threads at one "
                             "real-time priority (SCHED_FIFO), so no other work on the machine delays them")
    parser.add_argument("--run-echo", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-relay", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_echo:
        return run_echo(args.run_echo)
    if args.run_relay:
        return run_relay(*args.run_relay)
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
                   "HOTPATH_TAIL_OUT": str(out), **({"HOTPATH_SWITCH": str(args.switch)} if args.switch else {}),
                   **({"HOTPATH_SLICE_US": str(args.slice)} if args.slice else {}),
                   **({"HOTPATH_CHECKPOINT_EVERY": str(args.checkpoint_every)} if args.checkpoint_every else {})}
            procs.append(subprocess.Popen([PY, "-c", _PROBE, "serve", "--config", str(config(home, backend)),
                                           "--port", str(port), "--no-access-log", "--log-level", "warning"],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=(home / "err").open("wb")))
            wait_ready(port, procs[-1], timeout=180)
            serve = procs[-1]
            urls = {"serve": f"http://{HOST}:{port}/v1/chat/completions",
                    "floor": f"http://{HOST}:{floor}/v1/chat/completions"}
            if args.echo:
                echo, relay = free_port(), free_port()
                procs.append(subprocess.Popen([PY, __file__, "--run-echo", str(echo)], cwd=ROOT))
                wait_ready(echo, procs[-1])
                procs.append(subprocess.Popen([PY, __file__, "--run-relay", str(relay), str(echo)], cwd=ROOT))
                wait_ready(relay, procs[-1])
                urls |= {"echo": f"http://{HOST}:{echo}/v1/chat/completions",
                         "relay": f"http://{HOST}:{relay}/v1/chat/completions"}
            load = os.getloadavg()[0]
            servers = {"serve": serve.pid, "floor": procs[1].pid, **({"echo": procs[3].pid, "relay": procs[4].pid}
                                                                        if args.echo else {})}
            before, slept = threads_cpu(serve.pid), {name: switches(pid) for name, pid in servers.items()}
            recorder = None
            if args.sched:
                recorder = subprocess.Popen(["perf", "record", "-q", "-e", "sched:sched_switch", "-e",
                                             "sched:sched_wakeup", "-e", "sched:sched_waking", "-e",
                                             "sched:sched_migrate_task", "-k", "CLOCK_MONOTONIC", "-a", "-o",
                                             str(home / "perf.data")], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            lat = asyncio.run(drive(urls, args.n, args.chunk or args.n // 2, args.burst,
                                    [p.pid for p in procs] if args.fifo else None))
            if recorder is not None:
                recorder.send_signal(signal.SIGINT)
                recorder.wait(60)
            after, slept = threads_cpu(serve.pid), {name: switches(pid) - slept[name] for name, pid in servers.items()}
            serve.send_signal(signal.SIGUSR1)
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
            if recorder is not None:
                paths = {"serve": [serve.pid, procs[0].pid], "floor": [procs[1].pid, procs[0].pid]}
                if args.echo:
                    paths |= {"echo": [procs[3].pid], "relay": [procs[4].pid, procs[3].pid]}
                data = home / "perf.data"
                if args.out:  # kept, with the pids and thread ids, for perf sched timehist
                    args.out.mkdir(parents=True, exist_ok=True)
                    data = Path(shutil.move(data, args.out / "perf.data"))
                    (args.out / "pids.json").write_text(json.dumps({"client": os.getpid(), **paths}))
                said, less = sched_report(lat, sched_delays(data), paths)
                print(said)
                print("\n".join(contention_free(lat["serve"], less["serve"], events)))
            n = len(lat["serve"]) + 300
            print("voluntary context switches per request, each server process (every thread): " + ", ".join(
                f"{name} {count / n:.2f}" for name, count in slept.items()))
            names: dict[str, str] = next((e[8] for e in events if e[0] == "heap"), {})
            print("serve's threads, CPU ms per request over the whole run (user+system): " + ", ".join(
                f"{names.get(tid, tid)} {(after[tid] - before.get(tid, 0)) / n:.3f}" for tid in sorted(after)))
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
