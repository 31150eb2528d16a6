"""Gateway hot path (issue #15): ``modelyard serve`` beside the floor of any Python proxy, in one run.

    .venv/bin/python benchmarks/bench_gateway_hotpath.py [--quick] [--rounds 5] [--litellm PATH]
                                                         [--compare NAME=SRC_DIR ...] [--floor-uvloop [PATH]]
                                                         [--relay] [--fifo]

Side by side, each its own process on loopback, all called by the same aiohttp client:

- **backend**: an OpenAI-compatible server that answers at once (bench_gateway's raw ASGI app);
- **floor**: a minimal aiohttp reverse proxy — one server hop and one client hop (aiohttp's
  pooled client) to the backend, the body passed through, no routing, no log. No Python
  gateway can do less per request;
- **serve**: the real ``modelyard serve`` subprocess, its config's one model pointing at the
  backend (OpenAI provider over HTTP), routing log on with flush-before-report, metrics on;
- **litellm**: the LiteLLM proxy on the same backend, when ``--litellm`` names its executable
  or ``litellm`` is on PATH (install it in a venv of its own: ``pip install 'litellm[proxy]'``);
  otherwise the row says it was not measured;
- ``--compare NAME=SRC_DIR``: another ``modelyard serve`` from another checkout's ``src``
  (e.g. ``main=/work/main/src``), for a before/after in the same run;
- ``--relay``: a bare asyncio relay to the backend — two hops as the floor's, but protocol callbacks
  passing bytes, no HTTP library and no framework: what this machine's scheduling alone gives a Python
  proxy (its p99 at c=1 is the machine's tail; issue #15's p99 target is judged beside it);
- ``--floor-uvloop [PATH]``: the floor a second time, on uvloop's loop (uvloop from PATH, a
  ``pip install --target`` directory, if it is not installed): what the loop alone gives the same minimal
  proxy, beside a ``--compare`` checkout that runs ``serve`` on uvloop (benchmarks/tried/hot30-uvloop.patch).
  The ratios stay to the floor on asyncio (issue #15's).
- ``--fifo`` (root): during the latency blocks every thread of every target and of the client runs at the same
  real-time priority (SCHED_FIFO), so the machine's other work (other processes' CPU, kernel threads below it) cannot
  keep a woken server waiting for a core: what the targets' tails are on a machine with a core free at every
  wake-up, all at one priority. Back to the normal policy for the throughput blocks (50 clients at SCHED_FIFO would
  take both cores from everything else for seconds; the kernel's real-time throttling leaves others 5% at most).

Per round, every target gets a latency block at concurrency 1 (sequential requests on one
keep-alive connection) and then a throughput block at concurrency 50; the rounds interleave
the targets so the drift of a shared, loaded machine hits them alike. Each figure is the
median over rounds; "added" is the target's p50 minus the backend's p50 in the same round,
and the ratios compare each target to the floor measured in that same round.

Targets (issue #15): added p50 at c=1 <= 2x the floor's added latency; p99 at c=1 <= 2 ms;
req/s at c=50 >= 0.5x the floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench_gateway import HOST, PY, ROOT, free_port, run_backend, serve_cmd, stop, wait_ready

BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "ping"}]}).encode()
#: LiteLLM refuses to start without a strong master key; the others ignore the header (loopback)
KEY = f"sk-{secrets.token_hex(32)}"
HEADERS = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}


# -- the floor: a minimal aiohttp reverse proxy ----------------------------------------------------


def run_floor(port: int, backend: int, on_uvloop: bool = False) -> None:
    """Pass each request's body to the backend and its answer back: nothing else. ``on_uvloop``: on uvloop's loop."""
    from aiohttp import web

    upstream = f"http://{HOST}:{backend}/v1/chat/completions"

    async def start(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30))

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def proxy(request: web.Request) -> web.Response:
        body = await request.read()
        async with request.app["session"].post(upstream, data=body,
                                               headers={"content-type": "application/json"}) as r:
            data = await r.read()
        return web.Response(body=data, status=r.status, content_type="application/json")

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/chat/completions", proxy)
    loop = None
    if on_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host=HOST, port=port, access_log=None, print=None, loop=loop)


# -- the machine's own tail: bare asyncio HTTP/1.1 on loopback, no framework (--echo) ------------------------


def _whole(buffer: bytearray) -> bytes | None:
    """One whole HTTP/1.1 message (head + content-length body) taken off the front of ``buffer``, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    at = head.find(b"content-length:")
    size = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
    if len(buffer) < end + 4 + size:
        return None
    message = bytes(buffer[:end + 4 + size])
    del buffer[:end + 4 + size]
    return message


def run_echo(port: int) -> None:
    """One hop: answer every request with the instant backend's answer, from a bare asyncio protocol."""
    from bench_gateway import _backend_payloads

    body = _backend_payloads()[1]
    answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)) + body

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, bytearray()

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while _whole(self.buffer) is not None:
                self.transport.write(answer)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, HOST, port)
        await server.serve_forever()

    asyncio.run(main())


def run_relay(port: int, upstream: int) -> None:
    """Two hops: each request's bytes to ``upstream`` over one kept-alive connection, its answer's bytes back."""

    class Up(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer, self.waiting = bytearray(), list[Any]()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (message := _whole(self.buffer)) is not None:
                self.waiting.pop(0).write(message)

    class Relay(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, bytearray()

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (message := _whole(self.buffer)) is not None:
                up[0].waiting.append(self.transport)
                up[0].transport.write(message)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        _, connected = await loop.create_connection(Up, HOST, upstream)
        up.append(connected)
        server = await loop.create_server(Relay, HOST, port)
        await server.serve_forever()

    up: list[Up] = []
    asyncio.run(main())


# -- LiteLLM -----------------------------------------------------------------------------------------


def find_litellm(given: str | None) -> str | None:
    if given:
        return given if Path(given).exists() else None
    beside = Path(sys.executable).with_name("litellm")
    return str(beside) if beside.exists() else shutil.which("litellm")


def litellm_cmd(exe: str, directory: Path, port: int, backend: int) -> list[str]:
    cfg = directory / "litellm.yaml"
    cfg.write_text(json.dumps({"model_list": [{"model_name": "bench", "litellm_params": {
        "model": "openai/instant", "api_base": f"http://{HOST}:{backend}/v1", "api_key": "bench"}}],
        "litellm_settings": {"telemetry": False, "set_verbose": False}}))
    return [exe, "--config", str(cfg), "--host", HOST, "--port", str(port), "--num_workers", "1"]


def spawn(args: list[str], port: int, errors: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server and wait until it listens; its stderr goes to a file (a chatty one never blocks)."""
    with errors.open("ab") as err:
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                stderr=err)
    wait_ready(port, proc, timeout=180)
    return proc


# -- the client ----------------------------------------------------------------------------------------


async def call(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(url, data=BODY, headers=HEADERS) as r:
        body = await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {body[:300]!r}")


async def latencies(session: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call(session, url)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def throughput(session: aiohttp.ClientSession, url: str, concurrency: int, seconds: float) -> tuple[int, float]:
    """(requests answered, seconds taken) with ``concurrency`` clients for about ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call(session, url)
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - t0


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of a server process and its children (LiteLLM may fork workers), user + system."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Figures:
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    #: server CPU (user + system, every thread) per answered request at c=50: the figure load moves least
    cpu_ms: list[float] = field(default_factory=list)
    added: list[float] = field(default_factory=list)
    added_vs_floor: list[float] = field(default_factory=list)
    rps_vs_floor: list[float] = field(default_factory=list)


#: SCHED_FIFO priority of every target's and the client's threads during the latency blocks (--fifo): the same for all,
#: low among real-time ones (the kernel's own run at 50 and 99), above every normal thread
FIFO_PRIORITY = 10


def set_fifo(pids: list[int], priority: int) -> None:
    """Every thread of these processes (and their children: LiteLLM's workers) at SCHED_FIFO ``priority``, or back
    to the normal policy with 0. Threads started later inherit their starter's policy."""
    policy, param = (os.SCHED_FIFO, priority) if priority else (os.SCHED_OTHER, 0)
    procs: list[int] = []
    for pid in pids:
        procs.append(pid)
        with contextlib.suppress(psutil.Error):
            procs += [child.pid for child in psutil.Process(pid).children(recursive=True)]
    for pid in procs:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    os.sched_setscheduler(int(task.name), policy, os.sched_param(param))


def client(connections: int) -> aiohttp.ClientSession:
    """A pool that drops connections idle for 1 s: uvicorn closes them at 5 s, and a request sent on one
    as it closes fails (a target waits longer than that while the others are measured)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=1))


async def measure(targets: dict[str, str], pids: dict[str, int], rounds: int, n: int,
                  seconds: float, fifo: bool = False) -> dict[str, Figures]:
    figs = {name: Figures() for name in targets}
    sessions = {name: (client(1), client(50)) for name in targets}
    try:
        for name, url in targets.items():  # warm connections, code paths, pools and caches
            await latencies(sessions[name][0], url, 200)
            await throughput(sessions[name][1], url, 50, 0.5)
        for i in range(rounds):
            order = list(targets)
            order = order[i % len(order):] + order[:i % len(order)]  # rotate: no target always goes first
            if fifo:
                set_fifo([*pids.values(), os.getpid()], FIFO_PRIORITY)
            try:
                lat = {name: await latencies(sessions[name][0], targets[name], n) for name in order}
            finally:
                if fifo:
                    set_fifo([*pids.values(), os.getpid()], 0)
            rps, cpu = {}, {}
            for name in order:
                proc = psutil.Process(pids[name])
                before = cpu_seconds(proc)
                done, took = await throughput(sessions[name][1], targets[name], 50, seconds)
                rps[name], cpu[name] = done / took, (cpu_seconds(proc) - before) / done * 1000
            base = pct(lat["backend"], 50)
            for name in targets:
                f = figs[name]
                f.p50.append(pct(lat[name], 50))
                f.p99.append(pct(lat[name], 99))
                f.rps.append(rps[name])
                f.cpu_ms.append(cpu[name])
                f.added.append(f.p50[-1] - base)
            for name in targets:
                f, floor = figs[name], figs["floor"]
                f.added_vs_floor.append(f.added[-1] / floor.added[-1] if floor.added[-1] > 0 else float("nan"))
                f.rps_vs_floor.append(f.rps[-1] / floor.rps[-1])
            print(f"  round {i + 1}/{rounds}: " + ", ".join(
                f"{name} +{figs[name].added[-1]:.2f} ms p99 {figs[name].p99[-1]:.2f} ms {figs[name].rps[-1]:.0f}/s "
                f"{figs[name].cpu_ms[-1]:.2f} cpu-ms"
                for name in targets),
                f"(load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        for a, b in sessions.values():
            await a.close()
            await b.close()
    return figs


def med(values: list[float]) -> float:
    return statistics.median(values)


def span(values: list[float], fmt: str) -> str:
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def report(figs: dict[str, Figures], missing: dict[str, str]) -> list[str]:
    head = f"{'':<10} {'added p50 c=1':>14} {'x floor':>8} {'p50 c=1':>9} {'p99 c=1':>9} {'req/s c=50':>11} " \
           f"{'x floor':>8} {'CPU ms/req':>11} {'x floor':>8}   rounds: added ms / req/s"
    lines = [head]
    for name, f in figs.items():
        added = "—" if name == "backend" else f"+{med(f.added):.2f} ms"
        ratio = "—" if name in ("backend", "floor") else f"{med(f.added_vs_floor):.2f}"
        rps_ratio = "—" if name == "floor" else f"{med(f.rps_vs_floor):.2f}"
        rounds = "" if name == "backend" else f"{span(f.added, '{:.2f}')} / {span(f.rps, '{:.0f}')}"
        cpu_ratio = "—" if name == "floor" else f"{med(f.cpu_ms) / med(figs['floor'].cpu_ms):.2f}"
        lines.append(f"{name:<10} {added:>14} {ratio:>8} {med(f.p50):>6.2f} ms {med(f.p99):>6.2f} ms "
                     f"{med(f.rps):>11.0f} {rps_ratio:>8} {med(f.cpu_ms):>11.3f} {cpu_ratio:>8}   {rounds}")
    for name, why in missing.items():
        lines.append(f"{name:<10} not measured: {why}")
    if "serve" in figs:
        f = figs["serve"]
        lines += ["", "targets (issue #15), serve:",
                  f"  added p50 at c=1 <= 2x the floor's: {med(f.added_vs_floor):.2f}x "
                  f"({'met' if med(f.added_vs_floor) <= 2 else 'NOT met'})",
                  f"  p99 at c=1 <= 2 ms: {med(f.p99):.2f} ms ({'met' if med(f.p99) <= 2 else 'NOT met'})",
                  f"  req/s at c=50 >= 0.5x the floor's: {med(f.rps_vs_floor):.2f}x "
                  f"({'met' if med(f.rps_vs_floor) >= 0.5 else 'NOT met'})"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds")
    parser.add_argument("--rounds", type=int, help="rounds (default 5)")
    parser.add_argument("--litellm", help="the LiteLLM proxy's executable (default: beside python, or on PATH)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even if it is installed")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=SRC_DIR",
                        help="also run modelyard serve from another checkout's src directory")
    parser.add_argument("--floor-uvloop", nargs="?", const="", metavar="PATH",
                        help="also run the floor on uvloop's loop (uvloop from PATH, else where python finds it)")
    parser.add_argument("--relay", action="store_true",
                        help="also a bare asyncio relay to the backend (two hops, no HTTP library, no framework): "
                             "the tail this machine gives any Python proxy")
    parser.add_argument("--fifo", action="store_true",
                        help="root: the latency blocks with every target's and the client's threads at one real-time "
                             "priority (SCHED_FIFO), so no other work on the machine delays them")
    parser.add_argument("--backend", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-relay", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--uv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend:
        return run_backend(args.backend, keep_alive=300)  # idle pooled connections are never closed under us
    if args.floor:
        return run_floor(args.floor[0], args.floor[1], on_uvloop=args.uv)
    if args.run_relay:
        return run_relay(*args.run_relay)
    if args.fifo and os.geteuid() != 0:
        parser.error("--fifo sets a real-time scheduling policy: run it as root")
    rounds = args.rounds or (3 if args.quick else 5)
    n, seconds = (300, 1.5) if args.quick else (1000, 3.0)

    procs: list[subprocess.Popen] = []
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        errors = Path(tmp) / "stderr.txt"
        try:
            targets: dict[str, int] = {}
            pids: dict[str, int] = {}

            def start(name: str, args: list[str], port: int, env: dict[str, str] | None = None) -> None:
                proc = spawn(args, port, errors, env)
                procs.append(proc)
                targets[name], pids[name] = port, proc.pid

            backend = free_port()
            start("backend", [PY, __file__, "--backend", str(backend)], backend)
            floor = free_port()
            start("floor", [PY, __file__, "--floor", str(floor), str(backend)], floor)
            if args.relay:
                port = free_port()
                start("relay", [PY, __file__, "--run-relay", str(port), str(backend)], port)
            if args.floor_uvloop is not None:  # only this process sees that path: the backend stays on asyncio
                port = free_port()
                start("floor-uv", [PY, __file__, "--floor", str(port), str(backend), "--uv"], port,
                      {"PYTHONPATH": args.floor_uvloop} if args.floor_uvloop else None)
            checkouts = {"serve": str(ROOT / "src"), **dict(c.split("=", 1) for c in args.compare)}
            for name, src in checkouts.items():
                home = Path(tmp) / name  # a config, routing log and data directory of its own per serve
                home.mkdir()
                cfg = home / "config.yaml"
                cfg.write_text(json.dumps({  # JSON is YAML
                    "models": {"instant": {"provider": "openai", "endpoint": f"http://{HOST}:{backend}",
                                           "max_concurrent": 256}},
                    "agents": {"bench": {"primary": "instant"}},
                    "log": {"path": str(home / "log.db")}, "defaults": {"retries": {"attempts": 0}}}))
                port = free_port()
                start(name, serve_cmd(cfg, port), port,
                      {"PYTHONPATH": str(Path(src).resolve()), "MODELYARD_DATA_DIR": str(home / "data")})
                print(f"{name}: modelyard serve from {Path(src).resolve()}")
            exe = None if args.no_litellm else find_litellm(args.litellm)
            if exe is None:
                missing["litellm"] = "skipped (--no-litellm)" if args.no_litellm else \
                    "its executable was not found (pip install 'litellm[proxy]' in a venv of its own, then --litellm)"
            else:
                port = free_port()
                try:
                    start("litellm", litellm_cmd(exe, Path(tmp), port, backend), port,
                          {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "LITELLM_MASTER_KEY": KEY})
                except RuntimeError as exc:
                    missing["litellm"] = f"did not start ({exc})"
            urls = {name: f"http://{HOST}:{port}/v1/chat/completions" for name, port in targets.items()}
            print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; {rounds} rounds of "
                  f"{n} sequential requests + {seconds:g} s at c=50 per target; client: aiohttp on asyncio"
                  f"{f'; latency blocks at SCHED_FIFO {FIFO_PRIORITY}' if args.fifo else ''}\n")
            figs = asyncio.run(measure(urls, pids, rounds, n, seconds, args.fifo))
            print()
            for line in report(figs, missing):
                print(line)
        except BaseException:
            if errors.exists():
                print(errors.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
