"""What routing costs a process in memory and start-up time (for a Mac or a small box beside the models).

Each figure is taken in a fresh child process, several times, and the median is printed with the CPU time beside
the wall time (the machine is shared: CPU time is the steadier one). Run it under the bench lock:

    flock /work/team/bench.lock .venv/bin/python benchmarks/bench_footprint.py [--runs 5] [--what floor,route,ask,serve]

- ``floor``: a process that imports modelyard and does nothing (RSS, wall and CPU of the whole process).
- ``route``: the default config's orchestrator built as a routing front-end builds it (agents/turn.py), its
  background work settled; RSS then, after a first decision on an English message, and after one on a message in
  another language; CPU and wall from process start to the first (English) decision.
- ``ask``: ``modelyard ask "…"`` routed (no ``--agent``), the default config's agents, against a fake
  OpenAI-compatible server that answers at once (tests/fakes): wall and CPU of the whole command — start-up,
  training, the decision, a 5-word answer.
- ``serve``: ``modelyard serve`` of the default config's agents on the fake server: RSS once it is idle (the fast
  path trained at start, nothing routed; sampled until it has not grown for 5 s), then after a first ``model: auto``
  request in English and one in another language.

The routing caches (``cache_dir()/routing``: fitted weights, example vectors) are warm unless ``--cold``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ENGLISH = "write a short poem about the sea"
FOREIGN = "escribe un poema corto sobre el mar para mi madre, por favor, que le gusta mucho"

#: the child of ``route``: prints one JSON object
ROUTE_CHILD = r"""
import json, os, resource, sys, threading, time
t0 = time.perf_counter()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
from modelyard.agents.orchestrator import Orchestrator
from modelyard.config import load_config
from modelyard.paths import embedded_default_config
orchestrator = Orchestrator.from_config(load_config(str(embedded_default_config())))
built = rss()
first = orchestrator.decide_fast(sys.argv[1])
out = {"first_decision_cpu": cpu(), "first_decision_wall": time.perf_counter() - t0, "built": built}
for t in threading.enumerate():  # what the classifier started in the background
    if t is not threading.current_thread() and t.daemon:
        t.join()
time.sleep(0.2)
out["english"] = rss()
orchestrator.decide_fast(sys.argv[2])
out["foreign"] = rss()
out["first"] = first.agent
print(json.dumps(out))
"""

FLOOR_CHILD = r"""
import json, resource, time
t0 = time.perf_counter()
import modelyard
r = resource.getrusage(resource.RUSAGE_SELF)
rss = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(json.dumps({"rss": rss, "cpu": r.ru_utime + r.ru_stime, "wall": time.perf_counter() - t0}))
"""


#: ``--cold``: each process gets an empty cache directory (nothing fitted or encoded before on this machine)
COLD: list[str] = []


def env() -> dict[str, str]:
    found = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    if COLD:
        found["MODELYARD_CACHE_DIR"] = tempfile.mkdtemp(prefix="footprint-cold-")
    return found


def child_json(code: str, *args: str) -> dict[str, float]:
    t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([PYTHON, "-c", code, *args], env=env(), capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall"] = time.perf_counter() - t0
    out["process_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return out


def proc_rss(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        found = [int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:")]
    if not found:
        raise SystemExit(f"process {pid} exited")
    return found[0]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady_rss(pid: int, quiet: float = 5.0, limit: float = 90.0) -> float:
    """The process's RSS once it has not grown by more than 0.5 MiB for ``quiet`` seconds."""
    t0, last, steady = time.perf_counter(), 0.0, time.perf_counter()
    while time.perf_counter() - t0 < limit:
        time.sleep(0.5)
        now = proc_rss(pid)
        if now > last + 0.5:
            last, steady = now, time.perf_counter()
        elif time.perf_counter() - steady > quiet:
            break
    return last


def serve_once(url: str, port: int) -> dict[str, float]:
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        said = Path(tmp) / "serve.out"
        with said.open("wb") as out_file:
            proc = subprocess.Popen([PYTHON, "-m", "modelyard", "serve", "--port", str(port),
                                     "--config", str(fake_config(tmp, url)), "--log-level", "warning"],
                                    env={**env(), "MODELYARD_DATA_DIR": tmp}, stdout=out_file,
                                    stderr=subprocess.STDOUT)
        try:
            try:
                out = {"idle": steady_rss(proc.pid), "idle_cpu": proc_cpu(proc.pid)}
            except SystemExit:
                raise SystemExit(f"serve exited: {said.read_text()[-2000:]}") from None
            for name, text in (("english", ENGLISH), ("foreign", FOREIGN)):
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120, json={
                    "model": "auto", "messages": [{"role": "user", "content": text}]})
                answer.raise_for_status()
                out[name] = steady_rss(proc.pid, quiet=2.0)
            out["cpu"] = proc_cpu(proc.pid)
            return out
        finally:
            proc.terminate()
            proc.wait(10)


def fake_config(folder: str, url: str) -> Path:
    """The default config's agents (the same routing), every model the fake server."""
    import yaml

    config = yaml.safe_load((ROOT / "examples" / "default.yaml").read_text())
    config["models"] = {"fake": {"provider": "openai", "endpoint": f"{url}/v1", "model": "fake"}}
    for agent in config["agents"].values():
        agent["primary"] = "fake"
        agent.pop("fallbacks", None)
    path = Path(folder) / "footprint.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def ask_once(url: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([PYTHON, "-m", "modelyard", "ask", "--config", str(fake_config(tmp, url)), ENGLISH],
                              env={**env(), "MODELYARD_DATA_DIR": tmp}, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode or "orchestrator:" not in done.stdout + done.stderr:
            raise SystemExit(f"ask failed or did not route: {done.stdout}\n{done.stderr}")
        return {"wall": time.perf_counter() - t0,
                "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}


def report(name: str, runs: list[dict[str, float]]) -> None:
    keys = [k for k in runs[0] if isinstance(runs[0][k], float | int)]
    figures = ", ".join(f"{k} {statistics.median(r[k] for r in runs):.3f}" for k in keys)
    print(f"{name} (median of {len(runs)}): {figures}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--what", default="floor,route,ask,serve")
    parser.add_argument("--cold", action="store_true", help="an empty cache directory for each process")
    args = parser.parse_args()
    if args.cold:
        COLD.append("cold")
    what = args.what.split(",")
    print(f"load {os.getloadavg()[0]:.1f}; RSS in MiB, times in s", flush=True)
    if "floor" in what:
        report("floor: import modelyard", [child_json(FLOOR_CHILD) for _ in range(args.runs)])
    if "route" in what:
        report("route: default config", [child_json(ROUTE_CHILD, ENGLISH, FOREIGN) for _ in range(args.runs)])
    sys.path[:0] = [str(ROOT)]
    from tests.fakes.openai_compat import OpenAIServer

    with OpenAIServer(["fake"], reply_text="A fine answer, quickly given.") as server:
        if "ask" in what:
            report("ask: routed, fake backend", [ask_once(server.url) for _ in range(args.runs)])
        if "serve" in what:
            report("serve: default config's agents, fake backend",
                   [serve_once(server.url, 18931 + i) for i in range(args.runs)])
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
