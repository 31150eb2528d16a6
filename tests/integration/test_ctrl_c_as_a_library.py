"""Ctrl-C in a process that imports modelyard without being the ``modelyard`` command.

The package's ``__init__`` makes a Ctrl-C end the command quietly while it starts (``_interrupted_while_starting``:
``os._exit(130)``, no exception), and a command's own start sets Python's handler back. That handler must be set only
in the command: a program that imports modelyard (a pydantic-ai script, a Jupyter kernel, a worker process) keeps
Python's own ``default_int_handler`` — Ctrl-C raises KeyboardInterrupt there, which a kernel's "interrupt" and every
``try/finally`` rely on (docs.python.org/3/library/signal.html: "SIGINT is translated into a KeyboardInterrupt
exception if the parent process has not changed it").

What ``__init__`` reads to tell is ``sys.argv``. A ``multiprocessing`` worker started with "spawn" (macOS's and
Windows' default) is given its parent's: CPython's Lib/multiprocessing/spawn.py ``get_preparation_data`` sends
``sys_argv=sys.argv`` and ``prepare`` sets ``sys.argv = data['sys_argv']`` in the child before anything is
unpickled. A worker of the ``modelyard`` command thus read as the command itself and kept the quiet-start handler for
good (no command starts in it to set Python's back): a Ctrl-C ended it with ``os._exit`` — no ``finally``, no
``atexit``, "interrupted" said by each worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).parents[2] / "src")

#: what each host prints once modelyard is imported: another SIGINT handler than Python's, or what a SIGINT does
_REPORT = textwrap.dedent("""\
    def report():
        import os, signal
        handler = signal.getsignal(signal.SIGINT)
        if handler is not signal.default_int_handler:  # a Ctrl-C would not raise: not sent
            print("handler:" + getattr(handler, "__qualname__", repr(handler)))
            return
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes of the main thread
                pass
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
""")


def _run(argv: list[str], cwd: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), SRC])}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out.stdout.split()


def test_a_script_importing_modelyard_keeps_pythons_ctrl_c(tmp_path: Path) -> None:
    """A guard (right before this test was written): a program of the user's (an agent script, pydantic-ai's
    shape) that imports modelyard and its CLI module."""
    (tmp_path / "agent.py").write_text(_REPORT + "import modelyard, modelyard.console\nreport()\n")
    assert _run([sys.executable, "agent.py"], tmp_path) == ["KeyboardInterrupt"]


@pytest.mark.parametrize("name", ["modelyard_host", "ipykernel_like"])
def test_a_package_run_with_dash_m_importing_modelyard_keeps_pythons_ctrl_c(tmp_path: Path, name: str) -> None:
    """A guard (right before this test was written): a kernel is started as ``python -m ipykernel -f
    {connection_file}`` (a Jupyter kernel.json's argv), so ``sys.argv[0]`` is "-m" while its package imports — what
    ``__init__`` reads for ``python -m modelyard``. A package that imports modelyard as it loads, and again from its
    ``__main__`` (a notebook cell's import), is not the command — even named like it."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("import modelyard\n")
    (package / "__main__.py").write_text(_REPORT + "import modelyard.console\nreport()\n")
    assert _run([sys.executable, "-m", name, "-f", "kernel-1.json"], tmp_path) == ["KeyboardInterrupt"]


def test_a_spawned_worker_of_the_command_keeps_pythons_ctrl_c(tmp_path: Path) -> None:
    """The command (a script named ``modelyard``, as pip's console script is) starts a worker with "spawn"; the worker
    imports modelyard to run its job. It is no command: Python's handler, a Ctrl-C a KeyboardInterrupt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "job.py").write_text(_REPORT + textwrap.dedent("""\
        import modelyard

        def run():
            import contextlib, io
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                report()
            return out.getvalue().split()
    """))
    (bin_dir / "modelyard").write_text(textwrap.dedent("""\
        import multiprocessing
        import job

        if __name__ == "__main__":
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                print(*pool.apply(job.run))
    """))
    assert _run([sys.executable, str(bin_dir / "modelyard"), "replay"], bin_dir) == ["KeyboardInterrupt"]


def test_a_command_run_inside_a_host_leaves_the_hosts_handler(tmp_path: Path) -> None:
    """A guard (right before this test was written): a host with a SIGINT handler of its own (ipykernel installs one
    while a cell runs) runs a command in-process (``modelyard.console.main``, as console.py allows); a command's
    start sets Python's handler back only where the quiet-start one is set, so the host's stays."""
    (tmp_path / "config.yaml").write_text("models:\n  m: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                                          f"agents:\n  a: {{primary: m}}\nlog: {{path: '{tmp_path / 'log.db'}'}}\n")
    (tmp_path / "host.py").write_text(textwrap.dedent("""\
        import signal, sys

        def host_handler(signum, frame):
            print("host's handler")

        signal.signal(signal.SIGINT, host_handler)
        from modelyard import console

        sys.argv = ["modelyard", "models", "--no-reach", "--config", "config.yaml"]
        try:
            console.main()
        except SystemExit:
            pass
        print("kept" if signal.getsignal(signal.SIGINT) is host_handler else "replaced", file=sys.stderr)
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), SRC])}
    out = subprocess.run([sys.executable, "host.py"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=env)
    assert out.stderr.strip().splitlines()[-1] == "kept", (out.returncode, out.stdout, out.stderr)
    assert "ollama x" in out.stdout, out.stdout  # the command ran: its table names the model
