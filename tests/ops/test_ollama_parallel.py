"""`plan` and `models` say Ollama's OLLAMA_NUM_PARALLEL beside a model's max_concurrent (ollama_parallel.py).

Ollama runs at most OLLAMA_NUM_PARALLEL requests of a model at once (default 1 since 0.9.7, ollama/ollama#11330;
server/sched.go ``load``, which also loads some architectures — qwen35, qwen3vl, mllama… — with one slot whatever
the variable says) and its API does not tell the number (ollama/ollama#17556). `max_concurrent: 4` against a server
running 1 left three requests waiting inside Ollama on the first-token timeout; `plan` and `models` did not show it
(README: "`plan` and `models`, in their own process, do not show it"), and `plan` counted the KV cache × 4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes.ollama import OllamaServer
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.providers import ollama_parallel
from modelyard.providers.ollama_parallel import ServerParallel, against_slots, read_value, server_parallel

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "{{ .Prompt }}"
#: a fake Ollama in a process of its own, started with the environment given: what its server's environment is
_SERVE = ("import sys\nfrom tests.fakes.ollama import OllamaServer\n"
          "with OllamaServer(['qwen2.5-coder:7b'], template=" + repr(TEMPLATE) + ") as s:\n"
          "    print(s.url, flush=True)\n    sys.stdin.read()\n")


@pytest.fixture
def ollama_with_two() -> Iterator[str]:
    """The URL of a fake Ollama started as `OLLAMA_NUM_PARALLEL=2 ollama serve` would be."""
    env = {**os.environ, "OLLAMA_NUM_PARALLEL": "2", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    server = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT)
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait(10)
        for pipe in (server.stdin, server.stdout):
            if pipe is not None:
                pipe.close()


def write(tmp_path: Path, url: str, model: str, max_concurrent: int) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  m: {{provider: ollama, model: '{model}', endpoint: '{url}', "
                      f"max_concurrent: {max_concurrent}, memory_gb: 4}}\nagents:\n  chat: {{primary: m}}\n"
                      f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    return config


def test_max_concurrent_past_the_servers_num_parallel_is_said_by_plan_and_models(ollama_with_two: str,
                                                                                  tmp_path: Path) -> None:
    config = write(tmp_path, ollama_with_two, "qwen2.5-coder:7b", 4)
    planned = CliRunner().invoke(app, ["--config", str(config), "plan", "--json", "--ram", "64"])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    [m] = plan["models"]
    assert (m["parallel"], m["server_parallel"], m["parallel_assumed"]) == (2, 2, False), m  # KV × 2, not × 4
    said = [n for n in plan["notes"] if n.startswith("m: max_concurrent 4, but its Ollama runs 2 of its requests at "
                                                     "once (OLLAMA_NUM_PARALLEL=2 in the environment of its server")]
    assert said and said[0].endswith("set models.m.max_concurrent: 2, or start Ollama with OLLAMA_NUM_PARALLEL=4"), \
        plan["notes"]
    listed = CliRunner().invoke(app, ["--config", str(config), "models", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)["models"]
    assert row["server_parallel"]["value"] == 2 and "OLLAMA_NUM_PARALLEL=2" in row["server_parallel"]["how"], row
    shown = CliRunner().invoke(app, ["--config", str(config), "models"], env={"COLUMNS": "400"})
    assert "m: max_concurrent 4, but its Ollama runs 2 of its requests at once" in shown.stdout, shown.stdout


def test_an_architecture_ollama_runs_one_at_a_time_is_said_whatever_the_variable(tmp_path: Path) -> None:
    """qwen3.5 (family qwen35 in /api/show's details) is loaded with one slot by Ollama 0.17+ whatever
    OLLAMA_NUM_PARALLEL says: raising the variable does not help, so the hint names only max_concurrent."""
    with OllamaServer([{"name": "qwen3.5:9b", "details": {"family": "qwen35"}}], template=TEMPLATE) as ollama:
        config = write(tmp_path, ollama.url, "qwen3.5:9b", 2)
        listed = CliRunner().invoke(app, ["--config", str(config), "models", "--json"])
    [row] = json.loads(listed.stdout)["models"]
    assert row["server_parallel"] == {"value": 1, "how": "Ollama runs qwen35 models one request at a time, whatever "
                                                         "OLLAMA_NUM_PARALLEL says"}, row
    note = against_slots("m", 2, ServerParallel(1, row["server_parallel"]["how"], fixed=True))
    assert note.endswith("set models.m.max_concurrent: 1"), note


def test_what_the_servers_environment_says() -> None:
    def env(values: dict[str, str]):
        return lambda port: (values, "the environment of its server (pid 7)")

    def told(values: dict[str, str] | None, version: str | None = "0.12.6", host: str = "127.0.0.1") -> ServerParallel:
        return server_parallel("qwen2", False, version, host, 11434,
                               environment=(lambda port: None) if values is None else env(values))

    assert told({"OLLAMA_NUM_PARALLEL": "4"}) == ServerParallel(4, "OLLAMA_NUM_PARALLEL=4 in the environment of "
                                                                   "its server (pid 7)")
    assert told({}).value == 1 and "Ollama's default, 1" in told({}).how
    assert told({}, version="0.9.0").value is None  # before 0.9.7 Ollama picked 4 or 1 by free memory
    assert told({}, version="0.0.0").value == 1  # a build from source: no release to read, today's default
    assert told(None).value is None and "could not be read" in told(None).how
    assert told({"OLLAMA_NUM_PARALLEL": "8"}, host="192.0.2.10").value is None  # TEST-NET-1: another machine
    assert [read_value(v) for v in ("0", "x", " 3 ", None)] == [1, 1, 3, 1]  # as envconfig.Uint, then max(…, 1)
    unknown = against_slots("m", 3, told(None))
    assert unknown.startswith("max_concurrent 3: whether its Ollama runs 3 at once is unknown") and \
        unknown.endswith("start it with OLLAMA_NUM_PARALLEL=3, or set models.m.max_concurrent: 1"), unknown
    assert against_slots("m", 1, told(None)) == "" and against_slots("m", 2, told({"OLLAMA_NUM_PARALLEL": "2"})) == ""
    assert server_parallel("nomic-bert", True, None, "127.0.0.1", 11434).value == 1  # embeddings: one slot


def test_the_systemd_units_environment_is_read_for_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ollama's Linux installer runs `ollama serve` as the user ollama, whose /proc environ no other user reads;
    `systemctl show` gives the unit's Environment= (drop-ins from `systemctl edit ollama.service` included) to
    anyone."""
    shown = {"text": 'ActiveState=active\nEnvironment="PATH=/usr/bin:/bin" OLLAMA_NUM_PARALLEL=3\n'}
    monkeypatch.setattr(ollama_parallel.shutil, "which", lambda name: "/usr/bin/systemctl")
    monkeypatch.setattr(ollama_parallel, "_run", lambda command: shown["text"])
    monkeypatch.setattr(ollama_parallel, "_listener", lambda port: None)
    assert ollama_parallel.server_environment(11434) == ({"PATH": "/usr/bin:/bin", "OLLAMA_NUM_PARALLEL": "3"},
                                                         "the systemd unit ollama.service")
    shown["text"] = "ActiveState=active\nEnvironment=OLLAMA_HOST=0.0.0.0:11500 OLLAMA_NUM_PARALLEL=3\n"
    assert ollama_parallel.server_environment(11434) is None  # the unit serves another port: not this server
    assert ollama_parallel.server_environment(11500) is not None
    shown["text"] = "ActiveState=inactive\nEnvironment=OLLAMA_NUM_PARALLEL=3\n"
    assert ollama_parallel.server_environment(11434) is None
