"""How long a ``modelyard`` command takes from exec to exit, against Python's own start and typer's import.

Each command runs in a fresh process, round-robin over the trees and commands (so a load spike hits them alike),
``--runs`` times; the median wall time and the median CPU time (user + system, the steadier on a shared machine)
are printed per command and tree. Floors, in the same run: ``python -c pass`` and ``python -c "import typer"``.
Run it under the bench lock:

    flock /work/team/bench.lock .venv/bin/python benchmarks/bench_cli_startup.py [--runs 10] \
        [--tree before=/path/to/old/src] [--tree after=src] [--importtime='log']

The commands read a config of two models (a local one on a closed port, a cloud one without its key) and an empty
SQLite log in a temporary directory: what a command pays before it does its own work (nothing is reached).
``--importtime='CMD ARGS'`` prints the heaviest imports of ``python -X importtime -m modelyard CMD`` per tree.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

CONFIG = """\
default_agent: chat
models:
  local: {{provider: ollama, model: "qwen3.5:latest", endpoint: "http://127.0.0.1:9"}}
  cloud: {{provider: anthropic, api_key_env: MODELYARD_BENCH_NO_SUCH_KEY}}
agents:
  chat: {{primary: local, fallbacks: [cloud]}}
log:
  path: {log}
"""

#: what a user types most, and the help screens (shell users look at them often)
COMMANDS: list[list[str]] = [
    ["--version"], ["--help"], ["ask", "--help"], ["log", "--help"], ["route", "--help"], ["serve", "--help"],
    ["log"], ["stats"], ["report"], ["models", "--no-reach"], ["check"],
]


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process (its exit status is not judged: `check` exits 1 when unprobed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=300,
                   cwd=env["HOME"])
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _env(src: Path | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MODELYARD_CONFIG", "PYTHONPATH")}
    env.update({"HOME": str(home), "MODELYARD_DATA_DIR": str(home / "data"), "COLUMNS": "120"})
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def _importtime(src: Path, args: list[str], env: dict[str, str], top: int = 15) -> list[str]:
    out = subprocess.run([PYTHON, "-X", "importtime", "-m", "modelyard", *args], env=env, capture_output=True,
                         text=True, check=False, timeout=300, cwd=env["HOME"])
    rows = [line.split("|") for line in out.stderr.splitlines() if line.startswith("import time:")]
    rows = [r for r in rows if r[1].strip().isdigit()]
    rows.sort(key=lambda r: -int(r[1]))
    return [f"{int(r[1]) / 1000:8.1f} ms  {r[2].rstrip()}" for r in rows[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=SRC",
                        help="a source tree to measure (its src directory); default: this checkout's")
    parser.add_argument("--importtime", default=None, metavar="ARGS",
                        help="also print the heaviest imports of this command line per tree (--importtime='log', "
                             "--importtime='--help': with '=' when it starts with a dash)")
    ns = parser.parse_args()
    trees = [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in ns.tree] or [("this", ROOT / "src")]
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        home = Path(tmp)
        config = home / "config.yaml"
        config.write_text(CONFIG.format(log=home / "log.sqlite3"))
        jobs: list[tuple[str, str, list[str], dict[str, str]]] = [
            ("floor", "python -c pass", [PYTHON, "-c", "pass"], _env(None, home)),
            ("floor", "python -c 'import typer'", [PYTHON, "-c", "import typer"], _env(None, home)),
        ]
        for name, src in trees:
            for args in COMMANDS:
                cfg = [] if args[0].startswith("--") or "--help" in args else ["--config", str(config)]
                jobs.append((name, " ".join(args), [PYTHON, "-m", "modelyard", *cfg, *args], _env(src, home)))
        for _, _, argv, env in jobs:  # once untimed: the log file made, .pyc files written
            _timed(argv, env)
        walls: dict[tuple[str, str], list[float]] = {(t, c): [] for t, c, _, _ in jobs}
        cpus: dict[tuple[str, str], list[float]] = {(t, c): [] for t, c, _, _ in jobs}
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = [os.getloadavg()[0]]
        for _ in range(ns.runs):
            for tree, command, argv, env in jobs:
                wall, cpu = _timed(argv, env)
                walls[tree, command].append(wall)
                cpus[tree, command].append(cpu)
            load.append(os.getloadavg()[0])
        print(f"{started}, {ns.runs} runs each, load {min(load):.1f}-{max(load):.1f}; median wall s / CPU s")
        names = [name for name, _ in trees]
        print("| command | " + " | ".join(f"{n} wall | {n} CPU" for n in names) + " |")
        print("|---|" + "---|---|" * len(names))
        for tree, command in walls:
            if tree == "floor":
                w, c = statistics.median(walls[tree, command]), statistics.median(cpus[tree, command])
                print(f"| {command} (floor) | " + " | ".join(f"{w:.3f} | {c:.3f}" for _ in names) + " |")
        for args in COMMANDS:
            command = " ".join(args)
            cells = [f"{statistics.median(walls[n, command]):.3f} | {statistics.median(cpus[n, command]):.3f}"
                     for n in names]
            print(f"| `modelyard {command}` | " + " | ".join(cells) + " |")
        if ns.importtime is not None:
            for name, src in trees:
                args = shlex.split(ns.importtime) or ["--help"]
                cfg = [] if args[0].startswith("--") or "--help" in args else ["--config", str(config)]
                print(f"\n{name}: python -X importtime -m modelyard {' '.join(args)} (cumulative, heaviest first)")
                print("\n".join(_importtime(src, [*cfg, *args], _env(src, home))))


if __name__ == "__main__":
    main()
