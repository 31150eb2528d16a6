"""A routing log the user cannot write (helper-34's hunt): the data directory or the file read-only for the user
modelyard runs as. `ask` and `serve` used to stop with a traceback from sqlite3 ("attempt to write a readonly
database"); now they say which file and what to check, exit 1, and print no traceback.

As root (CI containers) permissions do not bind, so the commands run as ``nobody`` (``setpriv``); as another user
the directory is simply made read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CONFIG = """
models:
  m:
    provider: openai
    endpoint: http://127.0.0.1:9/v1
    model: x
agents:
  chat:
    primary: m
log:
  path: {log}
"""


def as_someone_who_cannot_write(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop root for this test"
    return [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", *args]


@pytest.mark.parametrize("existing", [False, True], ids=["new_file", "existing_file"])
@pytest.mark.parametrize("command", [["ask", "hi"], ["serve", "--port", "9"]], ids=["ask", "serve"])
def test_a_log_that_cannot_be_written_is_a_clear_error(command: list[str], existing: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="modelyard-ro-") as where:  # not under pytest's own (mode 700) base
        check(Path(where), command, existing)


def check(tmp_path: Path, command: list[str], existing: bool) -> None:
    data = tmp_path / "data"
    data.mkdir()
    log = data / "log.db"
    if existing:  # written before, by someone else (or before a chmod)
        subprocess.run([sys.executable, "-c", "import sys; from modelyard.ledger import LogWriter; "
                        "LogWriter(sys.argv[1]).close()", str(log)], check=True, timeout=30)
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(log=log))
    tmp_path.chmod(0o755)
    config.chmod(0o644)
    data.chmod(0o555)
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        done = subprocess.run(as_someone_who_cannot_write([sys.executable, "-m", "modelyard", *command,
                                                           "--config", str(config)]),
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    finally:
        data.chmod(0o755)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said and f"routing log {log}: cannot be opened for writing" in said, said
