"""scripts/bootstrap.sh on a Python without ensurepip (Debian's and Ubuntu's, until python3-venv is installed).

Debian's ``python3 -m venv`` fails *after* it has made ``.venv/bin/python`` ("The virtual environment was not created
successfully because ensurepip is not available. On Debian/Ubuntu systems, you need to install the python3-venv
package…", deadsnakes/issues#97, pyenv/pyenv-installer#125), and a second run of a script that checks only for that
file stops at "No module named pip" (flouksac/OneSOC#2) — even after the user installed python3-venv as told.

The Pythons here are stand-ins run by the real script with a PATH that holds only what it needs (no apt-get, no
chromium), so nothing is installed and nothing slow runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bootstrap.sh"

#: Debian's python3: ensurepip importable or not (python3-venv installed or not); ``-m venv`` makes a complete venv
#: (stubs that log what they are asked) or, without ensurepip, a half one and Debian's message
_FAKE_PYTHON = """#!{python}
import os, sys
from pathlib import Path
HAS_ENSUREPIP = {has_ensurepip}
log = Path(os.environ["FAKE_LOG"])
log.open("a").write("python3 " + " ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
VERSION = tuple(int(p) for p in os.environ.get("FAKE_VERSION", "3.11").split("."))
if args[:1] == ["-c"]:
    if "ensurepip" in args[1]:
        sys.exit(0 if HAS_ENSUREPIP else 1)
    if "version_info <" in args[1]:
        sys.exit(VERSION < (3, 11))
    print("%d.%d" % VERSION)
    sys.exit(0)
if args[:2] == ["-m", "venv"]:
    bin_ = Path(args[2]) / "bin"
    bin_.mkdir(parents=True, exist_ok=True)
    if not HAS_ENSUREPIP:
        (bin_ / "python").write_text("#!/bin/sh\\necho 'No module named pip' >&2\\nexit 1\\n")
        (bin_ / "python").chmod(0o755)
        print("The virtual environment was not created successfully because ensurepip is not available.",
              file=sys.stderr)
        sys.exit(1)
    for name in ("python", "modelyard"):
        (bin_ / name).write_text(f"#!/bin/sh\\necho \\"venv-{{name}} $*\\" >> {{log}}\\nexit 0\\n")
        (bin_ / name).chmod(0o755)
    sys.exit(0)
sys.exit(2)
"""


def _checkout(tmp_path: Path, *, has_ensurepip: bool) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "modelyard"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "bootstrap.sh")
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("dirname", "id", "uname", "rm"):
        found = shutil.which(name)
        assert found, name
        (tools / name).symlink_to(found)
    python = tmp_path / "python3"
    python.write_text(_FAKE_PYTHON.format(python=sys.executable, has_ensurepip=has_ensurepip))
    python.chmod(0o755)
    env = {"PATH": str(tools), "PYTHON": str(python), "FAKE_LOG": str(tmp_path / "log"), "HOME": str(tmp_path)}
    return root, env


def _bootstrap(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(root / "scripts" / "bootstrap.sh")], capture_output=True, text=True,
                          env=env, timeout=60, cwd=root)


def test_no_ensurepip_says_what_to_install_and_makes_no_half_venv(tmp_path: Path) -> None:
    root, env = _checkout(tmp_path, has_ensurepip=False)
    done = _bootstrap(root, env)
    assert done.returncode == 1
    assert "apt install python3-venv" in done.stderr and "python3.11-venv" in done.stderr, done.stderr
    assert not (root / ".venv").exists()
    assert "-m venv" not in (tmp_path / "log").read_text()


def test_a_half_made_venv_is_made_again_once_python3_venv_is_installed(tmp_path: Path) -> None:
    """The first run (before this check existed, or by hand) left .venv/bin/python without pip; python3-venv is now
    installed: the venv is made again rather than "No module named pip"."""
    root, env = _checkout(tmp_path, has_ensurepip=True)
    half = root / ".venv" / "bin" / "python"
    half.parent.mkdir(parents=True)
    half.write_text("#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n")
    half.chmod(0o755)
    done = _bootstrap(root, env)
    log = (tmp_path / "log").read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "python3 -m venv .venv" in log
    assert "venv-python -m pip install --quiet -e .[local,dev]" in log and "venv-modelyard fetch-model" in log
    assert "No module named pip" not in done.stderr


def test_guard_a_good_venv_is_left_alone(tmp_path: Path) -> None:
    """Guard: a venv with pip is not made again (bootstrap stays idempotent and quick)."""
    root, env = _checkout(tmp_path, has_ensurepip=True)
    bin_ = root / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name in ("python", "modelyard"):
        (bin_ / name).write_text(f"#!/bin/sh\necho \"venv-{name} $*\" >> {env['FAKE_LOG']}\nexit 0\n")
        (bin_ / name).chmod(0o755)
    assert _bootstrap(root, env).returncode == 0
    assert "-m venv" not in (tmp_path / "log").read_text()
    assert os.access(bin_ / "python", os.X_OK)


def test_a_python_older_than_311_is_named_before_anything_is_made(tmp_path: Path) -> None:
    """Ubuntu 22.04's python3 is 3.10: bootstrap made the venv, installed the system packages, then pip refused
    ("requires a different Python: 3.10.12 not in '>=3.11'"), and the 3.10 .venv it left was kept by the next run."""
    root, env = _checkout(tmp_path, has_ensurepip=True)
    done = _bootstrap(root, {**env, "FAKE_VERSION": "3.10"})
    assert done.returncode == 1
    assert "needs Python 3.11 or newer" in done.stderr and "is 3.10" in done.stderr, done.stderr
    assert "PYTHON=python3.11" in done.stderr
    assert not (root / ".venv").exists()


def test_a_venv_of_an_older_python_is_made_again(tmp_path: Path) -> None:
    """The .venv a 3.10 run left (it has pip): with PYTHON=python3.11 it is made again, not kept."""
    root, env = _checkout(tmp_path, has_ensurepip=True)
    old = root / ".venv" / "bin" / "python"
    old.parent.mkdir(parents=True)
    old.write_text("#!/bin/sh\ncase \"$2\" in *version_info*) exit 1;; esac\nexit 0\n")  # 3.10, pip and all
    old.chmod(0o755)
    done = _bootstrap(root, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "python3 -m venv .venv" in (tmp_path / "log").read_text()
