"""Noise-immune counts for the gateway hot path (issue #15): instructions or Python bytecodes per request.

    .venv/bin/python benchmarks/hotpath_counts.py [--what instructions|bytecodes|syscalls] [--clients 50] [-n 2000]
                                                  [--src OTHER/src ...] [--keep DIR]

Wall time on a shared machine moves with everybody else's work; these counts do not. Per ``src``
(default: this checkout's), a real ``modelyard serve`` on the instant backend of
``bench_gateway_hotpath.py`` (same config), warmed with 100 requests, then counted over ``-n``
requests at ``--clients``:

- ``instructions``: ``serve`` under valgrind's callgrind (every thread), started uninstrumented, counted
  from the end of the warm-up (``callgrind_control``: instrumentation on, counters zeroed, dumped);
- ``bytecodes``: ``serve`` with an opcode counter on every thread (``sys.settrace`` with
  ``f_trace_opcodes``), switched on and off by signals; prints the functions that ran the most;
- ``syscalls``: ``serve`` uninstrumented, ``strace -f -c`` attached to it from the end of the warm-up
  (the kernel's share of CPU per request, which callgrind does not see); prints the calls made the most.

Both slow ``serve`` down many times over; they count work, they do not time it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench_gateway import HOST, PY, ROOT, free_port, stop, wait_ready
from bench_gateway_hotpath import BODY, HEADERS

#: run in ``serve``'s interpreter for --what bytecodes: count opcodes per function between SIGUSR1 and SIGUSR2
_COUNTER = r"""
import collections, os, runpy, signal, sys, threading
counts = collections.Counter()
on = [False]
def tracer(frame, event, arg):
    frame.f_trace_opcodes = True
    frame.f_trace_lines = False
    return local
def local(frame, event, arg):
    if event == "opcode" and on[0]:
        counts[frame.f_code] += 1
    return local
def start(*_):
    counts.clear(); on[0] = True
def dump(*_):
    on[0] = False
    with open(os.environ["HOTPATH_COUNTS_OUT"], "w") as f:
        for code, n in counts.most_common():
            f.write(f"{n}\t{code.co_qualname}\t{code.co_filename}:{code.co_firstlineno}\n")
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, dump)
threading.settrace(tracer)
sys.settrace(tracer)
sys.argv = ["modelyard", *sys.argv[1:]]
runpy.run_module("modelyard", run_name="__main__")
"""


async def drive(url: str, clients: int, n: int, start: Callable[[], None]) -> None:
    """100 requests of warm-up, ``start()``, then ``n`` counted: on the same ``clients`` connections."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        for count in (100, n):
            left = count

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    try:
                        async with session.post(url, data=BODY, headers=HEADERS) as r:
                            body = await r.read()
                    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                        # a pooled connection closed under the client while valgrind crawled: sent again (the
                        # request never reached the server, or counts once more in ~2,000)
                        print(f"  (sent again: {exc})", file=sys.stderr)
                        left += 1
                        continue
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {body[:200]!r}")

            await asyncio.gather(*(worker() for _ in range(clients)))
            if count == 100:
                start()


def config(home: Path, backend: int) -> Path:
    cfg = home / "config.yaml"
    cfg.write_text(json.dumps({
        "models": {"instant": {"provider": "openai", "endpoint": f"http://{HOST}:{backend}", "max_concurrent": 256}},
        "agents": {"bench": {"primary": "instant"}},
        "log": {"path": str(home / "log.db")},
        # bounds far beyond what valgrind's slowness needs (the same code runs with any bound)
        "defaults": {"retries": {"attempts": 0}, "timeouts": {"connect": 120, "first_token": 300, "idle": 300}}}))
    return cfg


def count(src: Path, what: str, clients: int, n: int, backend: int, tmp: Path, top: int,
          keep: Path | None = None) -> float:
    home = Path(tempfile.mkdtemp(dir=tmp))
    port = free_port()
    serve_args = ["serve", "--config", str(config(home, backend)), "--port", str(port), "--no-access-log",
                  "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(src), "MODELYARD_DATA_DIR": str(home / "data"),
           "HOTPATH_COUNTS_OUT": str(home / "bytecodes.tsv")}
    out = home / "callgrind.out"
    if what == "instructions":
        args = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                PY, "-m", "modelyard", *serve_args]
    elif what == "syscalls":
        args = [PY, "-m", "modelyard", *serve_args]
    else:
        args = [PY, "-c", _COUNTER, *serve_args]
    tracer: list[subprocess.Popen[bytes]] = []
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(home / "err").open("wb"))
    try:
        try:
            wait_ready(port, proc, timeout=300)
        except RuntimeError:
            print((home / "err").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        url = f"http://{HOST}:{port}/v1/chat/completions"
        if what == "instructions":  # the start-up ran uninstrumented (several times faster under valgrind)
            subprocess.run(["callgrind_control", "--instr=on", str(proc.pid)], check=True, capture_output=True)

        def start() -> None:
            if what == "instructions":
                subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
            elif what == "syscalls":  # every thread of serve (-f), counted until strace is interrupted
                tracer.append(subprocess.Popen(["strace", "-f", "-c", "-o", str(home / "strace.txt"), "-p",
                                                str(proc.pid)], stderr=subprocess.DEVNULL))
                time.sleep(2)
            else:
                proc.send_signal(signal.SIGUSR1)
                time.sleep(0.5)

        asyncio.run(drive(url, clients, n, start))
        if what == "instructions":
            subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
            total = 0
            dumps = sorted(home.glob("callgrind.out*"))
            if keep is not None:  # for callgrind_annotate: per-function counts of this src
                keep.mkdir(parents=True, exist_ok=True)
                for i, dump in enumerate(dumps):
                    shutil.copy(dump, keep / f"{src.parent.name}.{i}.callgrind.out")
            for dump in dumps:
                for line in dump.read_text(errors="replace").splitlines():
                    if line.startswith("summary:") or line.startswith("totals:"):
                        total += int(line.split()[1])
                        break
            return total / n
        if what == "syscalls":
            tracer[0].send_signal(signal.SIGINT)
            tracer[0].wait(60)
            return _syscalls(home / "strace.txt", n, top)
        proc.send_signal(signal.SIGUSR2)
        tsv = home / "bytecodes.tsv"
        for _ in range(100):
            if tsv.exists() and tsv.stat().st_size:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        rows = [line.split("\t") for line in tsv.read_text().splitlines()]
        total = sum(int(r[0]) for r in rows)
        for r in rows[:top]:
            print(f"    {int(r[0]) / n:8.1f}  {r[1]}  {r[2].replace(str(src), '')}")
        return total / n
    finally:
        stop([proc])


def _syscalls(summary: Path, n: int, top: int) -> float:
    """strace -c's table: the system calls per request, the ``top`` most made printed."""
    rows = []
    for line in summary.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and parts[-1] != "total":
            rows.append((int(parts[3]), parts[-1]))
    rows.sort(reverse=True)
    for calls, name in rows[:top]:
        print(f"    {calls / n:8.2f}  {name}")
    return sum(calls for calls, _ in rows) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--what", choices=("instructions", "bytecodes", "syscalls"), default="instructions")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("-n", type=int, default=2000, help="requests counted (after 100 of warm-up)")
    parser.add_argument("--src", action="append", help="a checkout's src directory (default: this one's)")
    parser.add_argument("--top", type=int, default=25, help="bytecodes: functions listed")
    parser.add_argument("--keep", type=Path, help="instructions: callgrind's profiles copied here (callgrind_annotate)")
    args = parser.parse_args()
    sources = [Path(s).resolve() for s in args.src or [ROOT / "src"]]
    with tempfile.TemporaryDirectory() as tmp:
        backend = free_port()
        proc = subprocess.Popen([PY, str(ROOT / "benchmarks" / "bench_gateway_hotpath.py"), "--backend", str(backend)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(backend, proc)
            for src in sources:
                per = count(src, args.what, args.clients, args.n, backend, Path(tmp), args.top, args.keep)
                unit = args.what
                print(f"{src}: {per:,.0f} {unit} per request ({args.n} requests at c={args.clients})", flush=True)
        finally:
            stop([proc])


if __name__ == "__main__":
    main()
