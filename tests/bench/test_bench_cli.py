"""`modelyard bench` end to end: --init, a bad suite refused before anything runs, a full run with
every output, and Ctrl-C keeping the runs that finished."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from modelyard.bench.suite import starter_text
from modelyard.config import load_config
from tests.bench.test_bench_fakes import SUITE, fakes, write_config  # noqa: F401 - fixture

PNG = b"\x89PNG\r\n\x1a\n"


def modelyard(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_init_writes_the_starter_suite_once(tmp_path: Path) -> None:
    done = modelyard("bench", "--init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "bench.yaml").read_text() == starter_text()
    again = modelyard("bench", "--init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert modelyard("bench", "--init", str(tmp_path / "mine.yaml")).returncode == 0


def test_a_suite_not_there_points_to_init(tmp_path: Path) -> None:
    """`bench nosuch.yaml` said only 'file not found' (after loading the config): a newcomer has no suite yet, and
    --init is what writes one. A near file beside it is the likelier fix, so that is said instead."""
    missing = modelyard("bench", "nosuch.yaml", cwd=tmp_path)
    assert missing.returncode == 2
    assert "nosuch.yaml: file not found — `modelyard bench --init nosuch.yaml` writes a starter suite" in missing.stderr
    (tmp_path / "nosuch.yml").write_text(starter_text())
    near = modelyard("bench", "nosuch.yaml", cwd=tmp_path)
    assert near.returncode == 2 and "there is nosuch.yml beside it" in near.stderr and "--init" not in near.stderr


def test_a_bad_suite_is_refused_before_anything_runs(fakes, tmp_path: Path) -> None:  # noqa: F811
    config = write_config(tmp_path, fakes)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("checks: [{regex: \"def is_even\"}]", "checks: [{python: \"len(answer) >\"}]"))
    done = modelyard("bench", str(suite), "--config", str(config))
    assert done.returncode == 2
    line = suite.read_text().splitlines().index('        checks: [{python: "len(answer) >"}]') + 1
    assert f"{suite}:{line}: agents.engineer.tasks.2.checks.0.python: task 'is-even': not a Python expression" \
        in done.stderr.replace("\n", "")
    assert not any(server.requests for server in fakes.values())


def test_a_full_run_recommends_and_writes_everything(fakes, tmp_path: Path) -> None:  # noqa: F811
    config = write_config(tmp_path, fakes)
    before = config.read_text()
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    done = modelyard("bench", str(suite), "--config", str(config), "--models", "steady,nojson,textcalls,slow",
                     "-k", "2", "--json", "--write-config", str(out / "proposed.yaml"),
                     "--export", str(out / "runs.jsonl"), "--chart", str(out / "bench.png"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    chains = {r["agent"]: r["chain"] for r in report["recommendations"]}
    assert chains["utility"] == ["steady", "slow", "textcalls"]
    assert chains["engineer"][0] == "steady" and "textcalls" not in chains["engineer"]
    assert report["config_diff"].startswith(f"--- {config}\n+++ {out / 'proposed.yaml'}\n")

    assert config.read_text() == before  # the user's file is never touched
    proposed = load_config(out / "proposed.yaml")
    assert proposed.agents["utility"].chain == chains["utility"]
    assert proposed.agents["engineer"].chain == chains["engineer"]
    assert (out / "proposed.yaml").read_text().startswith("# my modelyard config\n")

    lines = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "bench" and lines[0]["format"] == "modelyard-bench/1"
    assert kinds.count("run") == 7 * 2 * 4 and kinds.count("score") == 3 * 4 and kinds.count("recommendation") == 3
    run = next(line for line in lines if line["type"] == "run" and line["model"] == "nojson"
               and line["task"] == "person-json")
    assert run["passed"] == 0 and run["checks"][0]["check"] == "json_schema" and run["outcome"] == "ok"
    assert (out / "bench.png").read_bytes()[:8] == PNG

    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM bench_runs WHERE run_id = ?", (report["run_id"],)).fetchone()[0] == 56


def test_ctrl_c_keeps_the_finished_runs(fakes, tmp_path: Path) -> None:  # noqa: F811
    config = write_config(tmp_path, fakes)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    log = tmp_path / "log.sqlite3"
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "bench", str(suite), "--config", str(config),
                             "--models", "slow", "-k", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def finished() -> int:
        try:
            with sqlite3.connect(log) as db:
                return db.execute("SELECT count(*) FROM bench_runs").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0

    deadline = time.monotonic() + 60
    while finished() < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    kept = finished()
    assert 3 <= kept < 35
    assert "interrupted: partial results" in stdout
    assert "pass@1" in stdout and "slow" in stdout  # the partial tables are printed
