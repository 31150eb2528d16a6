"""Ctrl-C while the ``modelyard`` command starts, its stderr a pipe whose reader is gone.

``modelyard models 2>&1 | grep m``: Ctrl-C reaches the whole pipeline, ``grep`` ends at once, and the command's
quiet-start handler (modelyard/__init__.py) writes "interrupted" to a pipe nobody reads — EPIPE, a BrokenPipeError
(docs.python.org/3/library/signal.html, "Note on SIGPIPE": output piped to a receiver that "closes early"). The
handler raised it, and an exception a handler raises "will be raised 'out of thin air' in the main thread" (the same
page, "Note on Signal Handlers and Exceptions"): the command ended with exit 1, not 130 — or, wherever the start was
(an import reading a file under ``except OSError``), the Ctrl-C was swallowed and the command ran to its end, which is
what the handler is there to stop. Nothing to say it to is no reason not to end.
"""

from __future__ import annotations

import signal
from pathlib import Path

from tests.integration.test_cli_newcomer import _held, _installed_command


def test_ctrl_c_at_start_ends_the_command_when_stderr_is_gone(tmp_path: Path) -> None:
    proc = _held(tmp_path, [str(_installed_command()), "models", "--no-reach"], "typer")
    try:
        assert proc.stderr is not None
        proc.stderr.close()  # the pipeline's reader has ended
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, proc.returncode
