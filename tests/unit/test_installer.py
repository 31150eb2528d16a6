"""installer.py: which installer put modelyard where it runs, and the command that adds an extra there.

The markers are the installers' own: pipx's ``pipx_metadata.json`` (pypa/pipx ``pipx_metadata_file.py``,
``PIPX_INFO_FILENAME``), uv's ``uv-receipt.toml`` (the receipts uv's tests snapshot: ``{ name = "black", specifier =
"==24.1.1" }``, ``{ name = ..., editable = "/path" }``, ``{ name = ..., extras = [...], directory = ... }``), and
``uv = x.y`` in the ``pyvenv.cfg`` of a ``uv venv`` (no pip in it: astral-sh/uv#2390).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard import installer
from modelyard.installer import Install, Installer, add_extra_command, detect

REQ = "'llama-cpp-python[server]>=0.3.2'"


def _receipt(tmp_path: Path, requirement: str) -> Path:
    (tmp_path / "uv-receipt.toml").write_text(f"[tool]\nrequirements = [{requirement}]\n", encoding="utf-8")
    return tmp_path


def test_pipx_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venvs" / "modelyard"
    venv.mkdir(parents=True)
    (venv / "pipx_metadata.json").write_text("{}", encoding="utf-8")
    found = detect(venv, "/x/bin/python")
    assert found.installer is Installer.PIPX
    assert add_extra_command("local", found) == f"pipx inject modelyard {REQ}"


@pytest.mark.parametrize(("requirement", "expected"), [
    ('{ name = "modelyard", directory = "/src/my yard" }', "uv tool install '/src/my yard[local]'"),
    ('{ name = "modelyard", editable = "/src/modelyard" }', "uv tool install --editable '/src/modelyard[local]'"),
    ('{ name = "modelyard", path = "/d/modelyard-0.1.0-py3-none-any.whl" }',
     "uv tool install '/d/modelyard-0.1.0-py3-none-any.whl[local]'"),
    ('{ name = "modelyard", specifier = "==0.1.0" }', "uv tool install 'modelyard[local]==0.1.0'"),
    ('{ name = "other" }', "uv tool install 'modelyard[local]'"),
])
def test_uv_tool_environment_reinstalls_from_its_own_source(tmp_path: Path, requirement: str, expected: str) -> None:
    found = detect(_receipt(tmp_path, requirement), "/x/bin/python")
    assert found.installer is Installer.UV_TOOL
    assert add_extra_command("local", found) == expected


def test_an_unreadable_receipt_still_names_uv(tmp_path: Path) -> None:
    (tmp_path / "uv-receipt.toml").write_text("Invalid receipt", encoding="utf-8")  # uv's own test breaks one so
    assert add_extra_command("local", detect(tmp_path, "/x/bin/python")) == "uv tool install 'modelyard[local]'"


def test_a_venv_with_pip_uses_its_own_pip(tmp_path: Path) -> None:
    """Not the ``pip`` first on PATH, which may be another environment's or the system's."""
    found = Install(Installer.PIP, tmp_path, "/home/me/.venvs/modelyard/bin/python")
    assert add_extra_command("local", found) == f"/home/me/.venvs/modelyard/bin/python -m pip install {REQ}"


def test_a_uv_venv_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nuv = 0.5.1\n", encoding="utf-8")
    monkeypatch.setattr(installer, "has_pip", lambda: False)
    monkeypatch.setattr(installer.shutil, "which", lambda name: None)
    found = detect(tmp_path, "/v/bin/python")
    assert found.installer is Installer.UV_PIP
    assert add_extra_command("local", found) == f"uv pip install --python /v/bin/python {REQ}"


def test_neither_pip_nor_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "has_pip", lambda: False)
    monkeypatch.setattr(installer.shutil, "which", lambda name: None)
    found = detect(tmp_path, "/v/bin/python")
    assert found.installer is Installer.NONE
    assert add_extra_command("local", found).startswith("/v/bin/python -m ensurepip, then /v/bin/python -m pip install")


def test_the_requirement_comes_from_the_installed_metadata() -> None:
    """pyproject.toml's ``local`` extra, as the install recorded it, not a second copy of it."""
    assert installer.extra_requirements("local") == ["llama-cpp-python[server]>=0.3.2"]
