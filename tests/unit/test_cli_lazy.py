"""The CLI imports a command's module when that command runs, so `modelyard --help` and one command's --help do not
pay for every command (0.4-0.7 s of imports before any command did anything: the config's pydantic models, the
router, the classifier, the bench's JSON schemas)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from inspect import cleandoc
from pathlib import Path

import pytest
import typer

from modelyard.cli import COMMANDS, app

#: what no --help needs: the HTTP stacks, the routing model's libraries, the config's models, the runtime
NEVER_FOR_HELP = {"aiohttp", "starlette", "uvicorn", "sklearn", "numpy", "httpx", "redis", "pydantic",
                  "modelyard.config.schema", "modelyard.runtime", "modelyard.router", "modelyard.ledger"}
MODULES = {f"modelyard.cli.{entry.module}" for entry in COMMANDS}

_RUN = """\
import contextlib, io, json, runpy, sys
sys.argv = ["modelyard", *sys.argv[1:]]
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        runpy.run_module("modelyard", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _run(*args: str) -> tuple[str, set[str]]:
    """``modelyard ARGS`` in a fresh interpreter: what it printed, and every module it imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said["code"] in (0, None), said["out"]
    return said["out"], set(said["modules"])


def test_help_lists_every_command_and_imports_none_of_them() -> None:
    out, modules = _run("--help")
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("│ ") and line[2] != " "
              and not line.split()[1].startswith("-")]
    assert listed == [entry.name for entry in COMMANDS], out
    for entry in COMMANDS:
        assert entry.summary[:40] in out, entry
    assert not (NEVER_FOR_HELP | MODULES) & modules, sorted((NEVER_FOR_HELP | MODULES) & modules)


@pytest.mark.parametrize("command", ["log", "report", "route", "ask", "serve"])
def test_a_commands_help_imports_its_own_module_only(command: str) -> None:
    """`modelyard log --help` imported ask's, the bench's and the classifier's modules with its own."""
    own = next(f"modelyard.cli.{entry.module}" for entry in COMMANDS if entry.name == command)
    out, modules = _run(command, "--help")
    assert f"modelyard {command} [OPTIONS]" in out, out
    assert own in modules and not (MODULES - {own}) & modules, sorted((MODULES - {own}) & modules)
    assert not {"aiohttp", "starlette", "uvicorn", "sklearn"} & modules


@pytest.mark.parametrize("command", [["log"], ["stats"]], ids=lambda c: c[0])
def test_reading_the_log_imports_no_routing_code(tmp_path: Path, command: list[str]) -> None:
    """`log` and `stats` imported the classifier (through `rate`'s routing labels, in their module) and every other
    command's module: ~0.3 s of the 0.5 s they spent importing, at load 15."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      f"agents:\n  chat: {{primary: a}}\nlog:\n  path: {tmp_path / 'log.sqlite3'}\n")
    out, modules = _run("--config", str(config), *command)
    assert '`modelyard ask "hello"` makes one' in out, out
    assert "modelyard.cli.inspect" in modules
    unwanted = {"modelyard.agents.classifier", "sklearn", "aiohttp", "starlette"}
    unwanted |= MODULES - {"modelyard.cli.inspect"}
    assert not unwanted & modules, sorted(unwanted & modules)


def test_the_list_says_what_each_commands_docstring_says() -> None:
    """--help lists COMMANDS' summaries without importing the commands: each is the first paragraph of the
    command's docstring (what its own --help says), so the two cannot drift apart."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    assert list(group.commands) == [entry.name for entry in COMMANDS]
    assert len({entry.name for entry in COMMANDS}) == len(COMMANDS)
    for entry in COMMANDS:
        command = group.commands[entry.name]
        assert command.name == entry.name
        doc = command.help or ""
        assert " ".join(cleandoc(doc).split("\n\n")[0].split()) == entry.summary, entry.name


def test_the_report_imports_no_routing_code(tmp_path: Path) -> None:
    """`report` reads each agent's role (a hand-off to a utility agent revises) through agents/topology, which
    imported the role from the classifier: the classifier and its encoder, calibration and request views, 0.1 s of
    the report's imports at load 3, for a one-line lookup of ``role:``. The role is read from agents/roles now."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      "agents:\n  chat: {primary: a}\n  tidy: {primary: a, role: utility}\n"
                      f"log:\n  path: {tmp_path / 'log.sqlite3'}\n")
    out, modules = _run("--config", str(config), "report")
    assert "modelyard report — " in out and "no requests in " in out, out
    assert "modelyard.agents.topology" in modules  # the roles were read
    unwanted = {"modelyard.agents.classifier", "modelyard.agents.encoder", "sklearn", "aiohttp", "starlette"}
    assert not unwanted & modules, sorted(unwanted & modules)


def test_models_imports_no_http_client(tmp_path: Path) -> None:
    """`models` builds every model's provider to ask whether it can be used, and sends no request: the providers'
    module imported aiohttp (its client, connector and HTTP parser), most of what `models` spent importing. aiohttp
    is imported when a request is first sent now."""
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      "  b: {provider: openai, model: x, endpoint: 'http://127.0.0.1:9/v1'}\n"
                      "  c: {provider: anthropic, model: x, api_key_env: MODELYARD_TEST_NO_SUCH_KEY}\n"
                      f"agents:\n  chat: {{primary: a, fallbacks: [b, c]}}\nlog:\n  path: {tmp_path / 'log.sqlite3'}\n")
    out, modules = _run("--config", str(config), "models", "--no-reach")
    assert "MODELYARD_TEST_NO_SUCH_KEY is not set" in out, out
    assert {"modelyard.providers.ollama", "modelyard.providers.openai", "modelyard.providers.anthropic"} <= modules
    assert not {"aiohttp", "multidict", "yarl"} & modules, sorted({"aiohttp", "multidict", "yarl"} & modules)
