"""How this modelyard was installed, so a hint names the command for *that* installer.

The missing ``local`` extra said ``pip install 'modelyard[local]'`` everywhere. In a ``pipx install`` or ``uv tool
install`` environment that command, typed in a shell, installs into whatever ``pip`` is first on PATH — not modelyard's
environment — and modelyard is not on PyPI, so it found nothing there either. Each installer leaves a marker in the
environment's root (``sys.prefix``):

- pipx writes ``pipx_metadata.json`` (pypa/pipx, ``pipx_metadata_file.py``: ``PIPX_INFO_FILENAME``); a package goes
  into such an environment with ``pipx inject NAME PACKAGE``;
- ``uv tool install`` writes ``uv-receipt.toml`` with the requirements it was given (``[tool] requirements = [{ name =
  "modelyard", directory = "/src/modelyard" }]``, as uv's own tests snapshot it). uv has no ``inject``: the tool is
  installed again with the extra, which replaces its environment (astral-sh/uv#7312, #14746);
- ``uv venv`` makes environments without pip (astral-sh/uv#2390) and says ``uv = x.y`` in ``pyvenv.cfg``;
- any other environment with pip takes ``<its python> -m pip install`` (its own pip, whichever is on PATH).
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path

#: the ``local`` extra's requirement when the installed metadata cannot be read (a source tree on PYTHONPATH)
_LOCAL_REQUIREMENT = "llama-cpp-python[server]>=0.3.2"


class Installer(StrEnum):
    """What put modelyard into the environment it runs from."""

    PIPX = "pipx"
    UV_TOOL = "uv tool"
    PIP = "pip"  # a venv (or the system's Python) with pip
    UV_PIP = "uv pip"  # an environment without pip, with uv on PATH or made by uv
    NONE = "none"  # neither pip nor uv


@dataclass(frozen=True)
class Install:
    """An environment: its root, its interpreter and what installed modelyard there."""

    installer: Installer
    prefix: Path
    python: str


def has_pip() -> bool:
    """Whether this interpreter's environment has pip (``uv tool``'s and ``uv venv``'s have none)."""
    return importlib.util.find_spec("pip") is not None


def _made_by_uv(prefix: Path) -> bool:
    try:
        lines = (prefix / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.split("=", 1)[0].strip() == "uv" for line in lines)


def detect(prefix: Path | None = None, python: str | None = None) -> Install:
    """The installer of the environment at ``prefix`` (this interpreter's, ``sys.prefix``, by default)."""
    root = Path(prefix if prefix is not None else sys.prefix)
    exe = python or sys.executable
    if (root / "pipx_metadata.json").is_file():
        kind = Installer.PIPX
    elif (root / "uv-receipt.toml").is_file():
        kind = Installer.UV_TOOL
    elif has_pip():
        kind = Installer.PIP
    elif _made_by_uv(root) or shutil.which("uv") is not None:
        kind = Installer.UV_PIP
    else:
        kind = Installer.NONE
    return Install(kind, root, exe)


def extra_requirements(extra: str) -> list[str]:
    """The requirements modelyard's ``extra`` adds, from the installed metadata (pyproject.toml's, as built)."""
    try:
        declared = metadata.requires("modelyard") or []
    except metadata.PackageNotFoundError:
        declared = []
    marker = f'extra == "{extra}"'
    found = [req.split(";", 1)[0].strip() for req in declared if marker in req.replace("'", '"')]
    return found or ([_LOCAL_REQUIREMENT] if extra == "local" else [])


def _uv_tool_spec(prefix: Path, extra: str) -> tuple[str, bool]:
    """What to give ``uv tool install`` for modelyard with ``extra``: the source it was installed from, read from the
    receipt (a directory, a wheel, or the name with its version), and whether it was editable. The name alone when the
    receipt cannot be read."""
    try:
        receipt = tomllib.loads((prefix / "uv-receipt.toml").read_text(encoding="utf-8"))
        requirements = receipt["tool"]["requirements"]
    except (OSError, ValueError, KeyError, TypeError):
        requirements = []
    for req in requirements if isinstance(requirements, list) else []:
        if not isinstance(req, dict) or req.get("name") != "modelyard":
            continue
        for key in ("editable", "directory", "path"):
            if isinstance(req.get(key), str):
                return f"{req[key]}[{extra}]", key == "editable"
        specifier = req.get("specifier")
        return f"modelyard[{extra}]" + (specifier if isinstance(specifier, str) else ""), False
    return f"modelyard[{extra}]", False


def add_extra_command(extra: str, install: Install | None = None) -> str:
    """The one shell command that adds modelyard's ``extra`` to the environment modelyard runs from."""
    where = install or detect()
    reqs = extra_requirements(extra)
    quoted = " ".join(shlex.quote(r) for r in reqs)
    python = shlex.quote(where.python)
    if where.installer is Installer.PIPX:
        return f"pipx inject {shlex.quote(where.prefix.name)} {quoted}"
    if where.installer is Installer.UV_TOOL:
        spec, editable = _uv_tool_spec(where.prefix, extra)
        return "uv tool install " + ("--editable " if editable else "") + shlex.quote(spec)
    if where.installer is Installer.PIP:
        return f"{python} -m pip install {quoted}"
    if where.installer is Installer.UV_PIP:
        return f"uv pip install --python {python} {quoted}"
    return f"{python} -m ensurepip, then {python} -m pip install {quoted}"
