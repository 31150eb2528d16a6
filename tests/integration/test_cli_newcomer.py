"""What a newcomer gets wrong, said plainly: one line naming the file and what to do, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.integration.test_cli import CONFIG
from typer.testing import CliRunner

from modelyard.cli import app

#: every command that reads this host's log file, with the arguments it needs to get that far
READERS = [["log"], ["stats"], ["report"], ["rate", "abc", "good"], ["models", "--no-reach"], ["routing", "labels"],
           ["check"], ["probe", "--only", "reachable"]]


@pytest.mark.parametrize("kind", ["not a database", "a directory"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_log_path_that_is_not_a_log_is_named(tmp_path: Path, kind: str, command: list[str]) -> None:
    """`log.path` naming a text file or a directory made log/stats/report/rate/models/check/probe end in
    sqlite3's traceback ('file is not a database', 'unable to open database file'); ask and serve said it."""
    log = tmp_path / "log.sqlite3"
    if kind == "a directory":
        log.mkdir()
    else:
        log.write_text("not a database\n")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9", log=log))
    out = CliRunner().invoke(app, ["--config", str(config), *command])
    assert isinstance(out.exception, SystemExit), out.exception  # not sqlite3's error
    assert out.exit_code == 1, out.output
    said = "cannot be opened" if kind == "not a database" else "a directory, not a file: name a file in it"
    assert f"routing log {log}: {said}" in out.output and "check log.path in the config" in out.output


def test_ctrl_c_while_the_command_starts_is_no_traceback(tmp_path: Path) -> None:
    """Importing the CLI takes a second or more on a busy machine (4 s at load 7): a Ctrl-C then printed a
    KeyboardInterrupt traceback from deep inside typing or typer, before any command handled signals. Since the
    commands are imported lazily, one came inside typer's own lookup of the command, which exits 130 saying
    nothing (0.1-0.3 s in, idle): each moment of the start is tried."""
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    command = [sys.executable, "-m", "modelyard", "models", "--no-reach"]
    started = time.monotonic()
    whole = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    took = time.monotonic() - started
    assert whole.returncode == 0 and whole.stdout, whole
    interrupted = 0
    # fixed moments (idle: the whole command takes ~0.5 s) and moments within this machine's own start-up time: at
    # load ~20 every fixed one fell before the interpreter had started, and none tried the CLI's imports
    for delay in sorted({0.1, 0.2, 0.3, 0.45} | {round(took * share, 2) for share in (0.3, 0.5, 0.7)}):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=tmp_path)
        time.sleep(delay)  # the interpreter is up, the CLI's imports are not done
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        if proc.returncode == 1 and "Fatal Python error: init_import_site" in stderr:
            # the signal came before the interpreter had started (it was importing `site`, at load ~11 0.1 s was
            # not enough): CPython's own traceback, no line of modelyard run yet — not the moment this is about
            continue
        assert "Traceback" not in stderr, stderr
        if proc.returncode == 0 and not stderr:  # done before the signal came (a fast machine, the last delay)
            continue
        if proc.returncode == -signal.SIGINT and not stderr and stdout == whole.stdout:
            # done, then the signal came while the interpreter shut down (it restores the default handler then):
            # everything was said; `models --no-reach` takes ~0.4 s since aiohttp is imported lazily (55090eb)
            continue
        interrupted += 1
        # 130, or ended by the signal itself after saying so (seen in about 1 run of 3 here; cause not pinned down):
        # a shell shows either as 130
        assert proc.returncode in (130, -signal.SIGINT) and stderr.strip().endswith("interrupted"), (
            delay, proc.returncode, stderr)
    assert interrupted >= 2, "the command ended before the signal at almost every moment tried"


def test_the_installed_command_starts_from_the_signal_safe_entry_point() -> None:
    """`modelyard` (the console script pip writes) must enter where `python -m modelyard` does."""
    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["modelyard"] == "modelyard.console:main"


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and subcommand (typer's own click: its classes are not the `click` package's)."""
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_every_option_of_every_command_says_what_it_does() -> None:
    """`log -n`, `log --outcome` and `--json` on check, plan, report and replay were bare names in --help; replay's
    --config said 'Config file (else $MODELYARD_CONFIG, the user config, …)' where it is the required candidate."""
    bare = [f"{' '.join(path)} {param.opts[0]}" for path, command in _commands(typer.main.get_command(app))
            for param in command.params
            if param.param_type_name == "option" and param.opts[0] != "--help" and not (param.help or "").strip()]
    assert len(_commands(typer.main.get_command(app))) > 20 and bare == []
    replay = dict(_commands(typer.main.get_command(app)))[("replay",)]
    config = next(p for p in replay.params if p.opts[0] == "--config")
    assert "CANDIDATE" in config.help and "required" in config.help


def test_a_cloud_model_without_api_key_env_says_what_to_add(tmp_path: Path) -> None:
    """'no api_key_env configured for an Anthropic model' named the problem, not the line to add."""
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  haiku: {{provider: anthropic, model: claude-haiku-4-5}}\n"
                      f"agents:\n  chat: {{primary: haiku}}\nlog:\n  path: {tmp_path / 'log.sqlite3'}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "add `api_key_env: ANTHROPIC_API_KEY` under the model and export that variable" in out.output


@pytest.mark.parametrize("command", [["log"], ["ask", "--agent", "chat", "hi"]], ids=lambda c: c[0])
def test_a_default_log_that_cannot_be_made_names_the_data_directory(tmp_path: Path, command: list[str]) -> None:
    """With no log.path in the config the error said '(log.path)': a newcomer looked for a line that was not
    there; the file's place came from $MODELYARD_DATA_DIR (or the user data directory)."""
    blocked = tmp_path / "data"
    blocked.write_text("a file where the data directory should be\n")
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      "agents:\n  chat: {primary: a}\n")
    out = CliRunner().invoke(app, ["--config", str(config), *command], env={"MODELYARD_DATA_DIR": str(blocked)})
    assert isinstance(out.exception, SystemExit) and out.exit_code == 1, out.output
    said = " ".join(out.output.split())
    assert f"routing log {blocked / 'routing.sqlite3'}: cannot be opened" in said
    assert "it is the default place, in $MODELYARD_DATA_DIR" in said and "set log.path in the config" in said


def test_models_has_json_for_scripts(tmp_path: Path) -> None:
    """log, stats, report, route, probe, check and plan had --json; `models --json`, the first thing a script asks
    ('is my model up?'), was 'No such option'."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9", log=tmp_path / "log.sqlite3"))
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--no-reach", "--json"],
                             env={"MODELYARD_TEST_NO_SUCH_KEY": ""})
    assert out.exit_code == 0, out.output
    got = {m["model"]: m for m in json.loads(out.output)["models"]}
    assert got["local"]["state"] == "available" and got["local"]["why"] is None
    assert got["local"]["primary_for"] == ["chat"] and got["local"]["fallback_for"] == ["writer"]
    assert got["cloud"]["state"] == "unavailable" and "MODELYARD_TEST_NO_SUCH_KEY" in got["cloud"]["why"]
    assert got["cloud"]["local"] is False and got["cloud"]["price"] == {"input": 1.0, "output": 5.0}


def test_a_missing_default_model_names_the_command_that_fetches_it(tmp_path: Path) -> None:
    """'run scripts/bootstrap.sh': a clone's script, which a pip install does not have; `fetch-model` is the
    command everywhere."""
    pytest.importorskip("llama_cpp")
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  local: {{provider: llamacpp}}\n"
                      f"  mine: {{provider: llamacpp, path: {tmp_path}/x.gguf}}\n"
                      f"agents:\n  chat: {{primary: local, fallbacks: [mine]}}\n"
                      f"log: {{path: {tmp_path}/log.sqlite3}}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "models", "--json"],
                             env={"MODELYARD_CACHE_DIR": str(tmp_path / "empty-cache")})
    why = {m["model"]: m["why"] for m in json.loads(out.output)["models"]}
    assert why["local"].endswith("(run `modelyard fetch-model` to fetch the default model)"), why
    assert why["mine"] == f"GGUF file not found: {tmp_path}/x.gguf (check the model's `path:` in the config)"


def test_a_command_that_looks_for_llama_cpp_leaves_no_unclosed_file(tmp_path: Path) -> None:
    """llama-cpp-python opens /dev/null twice on import and never closes it: `models` (asking whether it is installed,
    for the embedded model) and the test runs ended with two 'ResourceWarning: unclosed file <… name='/dev/null'>'
    lines at exit. The warnings are shown here as they are in a development run (-W always)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  local: {{provider: llamacpp, path: {tmp_path / 'none.gguf'}}}\n"
                      f"agents:\n  chat: {{primary: local}}\nlog: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-m", "modelyard", "--config", str(config),
                           "models", "--no-reach"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GGUF file not found" in done.stdout, done.stdout  # llama_cpp was imported to get this far
    assert "ResourceWarning" not in done.stderr, done.stderr
