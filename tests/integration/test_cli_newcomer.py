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


@pytest.mark.parametrize("kind", ["not a database", "a directory", "a damaged log"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_log_path_that_is_not_a_log_is_named(tmp_path: Path, kind: str, command: list[str]) -> None:
    """`log.path` naming a text file or a directory made log/stats/report/rate/models/check/probe end in
    sqlite3's traceback ('file is not a database', 'unable to open database file'); ask and serve said it.
    Another program's file (not named as a database) is said to be no log; a file named as one that SQLite cannot
    read is said to be damaged, as the next writer sets it aside (tests/reliability/test_ledger_hunt36.py)."""
    log = tmp_path / ("notes.txt" if kind == "not a database" else "log.sqlite3")
    if kind == "a directory":
        log.mkdir()
    else:
        log.write_text("not a database\n")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9", log=log))
    out = CliRunner().invoke(app, ["--config", str(config), *command])
    assert isinstance(out.exception, SystemExit), out.exception  # not sqlite3's error
    assert out.exit_code == 1, out.output
    if kind == "a damaged log":
        assert f"routing log {log} is damaged" in out.output and "sets it aside" in out.output, out.output
        assert log.read_text() == "not a database\n"  # a reader leaves it as it is
        return
    said = "cannot be opened" if kind == "not a database" else "a directory, not a file: name a file in it"
    assert f"routing log {log}: {said}" in out.output and "check log.path in the config" in out.output


#: a module found through this finder first (sitecustomize runs before the command's first line): on reaching the
#: module named by $HOLD_AT it makes the file $HOLD_MARK and sleeps, so the test's SIGINT comes exactly there
_HOLD = """
import os, sys, time

class Hold:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == os.environ["HOLD_AT"]:
            open(os.environ["HOLD_MARK"], "w").close()
            time.sleep(float(os.environ.get("HOLD_FOR", "120")))
        return None

sys.meta_path.insert(0, Hold)
"""

#: the moments of the start tried: runpy finding `python -m`'s module, __main__ importing the entry point, and (guards:
#: handled since 2c79235 and after) the CLI importing typer, typer's lookup importing the command's module, the
#: command importing what it uses
MOMENTS = ["modelyard.__main__", "modelyard.console", "typer", "modelyard.cli.inspect", "modelyard.providers.http"]


def _held(tmp_path: Path, command: list[str], moment: str, **popen: Any) -> subprocess.Popen[str]:
    """``command`` started, and held as it imports ``moment`` (returned once it is there)."""
    (tmp_path / "hold").mkdir(exist_ok=True)
    (tmp_path / "hold" / "sitecustomize.py").write_text(_HOLD)
    mark = tmp_path / "held"
    src = str(Path(__file__).parents[2] / "src")
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"} | popen.pop("env", {})
    env |= {"HOLD_AT": moment, "HOLD_MARK": str(mark),
            "PYTHONPATH": os.pathsep.join([str(tmp_path / "hold"), src, env.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path, **popen)
    deadline = time.monotonic() + 120
    while not mark.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{moment} not imported ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.02)
    return proc


def _installed_command() -> Path:
    script = Path(sys.executable).with_name("modelyard")  # the console script pip writes into the venv
    assert script.is_file(), f"{script}: the venv has no `modelyard` command (pip install -e .)"
    return script


@pytest.mark.parametrize(("entry", "moment"), [("python -m modelyard", m) for m in MOMENTS]
                         + [("modelyard", m) for m in MOMENTS if m != "modelyard.__main__"])  # the script: console's
def test_ctrl_c_while_the_command_starts_is_no_traceback(tmp_path: Path, entry: str, moment: str) -> None:
    """Importing the CLI takes a second or more on a busy machine (4 s at load 7): a Ctrl-C then printed a
    KeyboardInterrupt traceback, from typer, from typer's lookup of the command (said nothing, exit 130) and, at load
    ~10 after those were handled, from `<frozen runpy>` and `from modelyard.console import main`: before the entry
    point's own `try`. Timed signals hit each moment by chance (1 run in 60 at load 13); here the start is held at
    each moment (a finder that sleeps there) and the signal sent then. Not tried: the interpreter's own start before
    `modelyard` is found (`site`: 'Fatal Python error: init_import_site', CPython's)."""
    prefix = [str(_installed_command())] if entry == "modelyard" else [sys.executable, "-m", "modelyard"]
    proc = _held(tmp_path, [*prefix, "models", "--no-reach"], moment)
    try:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert proc.returncode == 130 and stderr.strip().endswith("interrupted"), (proc.returncode, stderr)


def test_a_ctrl_c_the_parent_ignores_stays_ignored_while_the_command_starts(tmp_path: Path) -> None:
    """A guard of the quiet start (modelyard/__init__.py): started with SIGINT ignored (`nohup`, a `&` job of a
    script), the command must not become one that a Ctrl-C ends."""
    proc = _held(tmp_path, [str(_installed_command()), "models", "--no-reach"], "typer", env={"HOLD_FOR": "1"},
                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and stdout.strip() and "interrupted" not in stderr, (proc.returncode, stderr)


def test_importing_modelyard_leaves_ctrl_c_alone() -> None:
    """A guard of the quiet start: only the `modelyard` command gets it, not a program that imports the package."""
    out = subprocess.run([sys.executable, "-c", "import signal, modelyard, modelyard.console; "
                          "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert out.stdout.strip() == "True", out


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
    assert out.exit_code == 3, out.output  # its one model is unavailable: none can answer
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
    why = {m["model"]: m["why"] for m in json.loads(out.stdout)["models"]}
    assert why["local"].endswith("(run `modelyard fetch-model` to fetch the default model)"), why
    assert why["mine"] == (f"GGUF file not found: {tmp_path}/x.gguf — {config}:3: models.mine.path is "
                           f"'{tmp_path}/x.gguf': put the file there, or correct the path at that line")


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
    assert done.returncode == 3, done.stderr  # its one model is unavailable: none can answer
    assert "GGUF file not found" in done.stdout, done.stdout  # llama_cpp was imported to get this far
    assert "ResourceWarning" not in done.stderr, done.stderr


def test_serve_says_at_start_which_agents_no_model_can_answer(tmp_path: Path) -> None:
    """README's five steps: `export ANTHROPIC_API_KEY=…`, then `serve`. With the export skipped (or the GGUF not
    fetched) serve started saying nothing of it, and every request to an agent whose models all lacked theirs came
    back 424 — the first word of it was in the client."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  local: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      "  cloud: {provider: anthropic, model: claude-haiku-4-5, api_key_env: NEWCOMER9_UNSET_KEY}\n"
                      "agents:\n  chat: {primary: local, fallbacks: [cloud]}\n  writer: {primary: cloud}\n"
                      f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MODELYARD_CONFIG", "NEWCOMER9_UNSET_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2] / "src"), env.get("PYTHONPATH", "")])
    stdout = serve_until(config, env, tmp_path / "serve.out", "no model can answer for")  # its last start line
    assert "cloud: unavailable: environment variable NEWCOMER9_UNSET_KEY is not set" in stdout, stdout
    assert "no model can answer for writer: requests to it fail (424)" in stdout, stdout  # chat has local left


def serve_until(config: Path, env: dict[str, str], out: Path, started: str) -> str:
    """Run `serve --port 0` until its output says ``started`` (and a moment more for the line after it), then Ctrl-C
    it; its output. The tests picked a free port, closed it and waited for anything listening there: another
    program could take it between (they flaked once so), and its listener was taken for serve's. Serve takes a free
    port itself now and says which."""
    with out.open("w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config), "serve", "--port", "0",
                                 "--no-keep-warm"], stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while started not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (out.read_text(), proc.communicate())
            time.sleep(0.05)
        time.sleep(0.5)  # the line after it
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        return out.read_text()
    finally:
        proc.kill()


def test_serve_running_the_bot_for_nobody_says_how_to_let_someone_in(tmp_path: Path) -> None:
    """README's five steps end with the bot: 'add a telegram: section and put the token in TELEGRAM_BOT_TOKEN'. With
    no allowed_users, serve started it saying only 'telegram bot @… running', and it ignored every message; the
    `telegram` command warned and said where the user id is found."""
    from tests.fakes.telegram import TelegramServer

    with TelegramServer() as tg:
        config = tmp_path / "config.yaml"
        config.write_text("models:\n  local: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                          "agents:\n  chat: {primary: local}\n"
                          f"telegram: {{base_url: '{tg.base_url}', token_env: NEWCOMER9_BOT_TOKEN}}\n"
                          f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
        env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"} | {"NEWCOMER9_BOT_TOKEN": tg.token}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2] / "src"), env.get("PYTHONPATH", "")])
        out = tmp_path / "serve.out"
        serve_until(config, env, out, "running in this process")
    said = " ".join(out.read_text().split())
    assert "warning: telegram.allowed_users is empty: the bot will answer nobody — send it a message: the line " \
           "'ignored message from user N' below names your user id; put N in telegram.allowed_users and restart " \
           "serve" in said, said
