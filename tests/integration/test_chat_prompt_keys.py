"""Ctrl-C and Ctrl-D at `modelyard chat`'s prompt, typed into a real terminal (a pseudo-terminal: the line
discipline echoes ``^C`` and turns the keys into SIGINT and end-of-file, as a shell's terminal does).

The prompt is printed without a line end: what followed a key there stayed on the prompt's line — ``chat> ^C``
then ``interrupted`` on the same line, and after Ctrl-D the shell's own prompt glued to ``chat> ``. Python's REPL
and `sqlite3` end the line first; so does this now.
"""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

import modelyard

#: the modelyard this test imported (the child runs the same code)
SRC = Path(modelyard.__file__).resolve().parents[1]


def _chat_then(key: bytes, tmp_path: Path) -> tuple[str, int]:
    """What the terminal shows when ``key`` is typed at chat's first prompt, and the exit status."""
    config = tmp_path / "config.yaml"  # no request is made: a model nothing serves is enough
    config.write_text("models:\n  local: {provider: ollama, model: x, endpoint: 'http://127.0.0.1:9'}\n"
                      f"agents:\n  chat: {{primary: local}}\nlog: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("MODELYARD_CONFIG", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its standard input, output and error
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "modelyard", "--config", str(config), "chat", "--agent",
                                   "chat"], env)
    shown = b""

    def read_until(done: bytes | None, seconds: float) -> None:
        nonlocal shown
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (done is None or done not in shown):
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child ended and closed the terminal
                    return
                if not chunk:
                    return
                shown += chunk

    try:
        read_until(b"chat> ", 120)  # the CLI's start takes seconds on a loaded machine
        assert b"chat> " in shown, shown
        os.write(fd, key)
        read_until(None, 30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return shown.decode(errors="replace").replace("\r\n", "\n"), os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize(("key", "status", "tail"), [
    (b"\x03", 130, "chat> ^C\ninterrupted\n"),  # SIGINT: the command's own word, on its own line
    (b"\x04", 0, "chat> \n"),                   # end of input: a quiet end, the line closed
], ids=["ctrl-c", "ctrl-d"])
def test_a_key_at_the_prompt_ends_the_prompts_line(key: bytes, status: int, tail: str, tmp_path: Path) -> None:
    shown, code = _chat_then(key, tmp_path)
    assert code == status, shown
    assert shown.endswith(tail), repr(shown)
    assert "Traceback" not in shown
