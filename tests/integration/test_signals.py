"""Ctrl-C and SIGTERM while the embedded model generates: a real ``modelyard`` process, the real model.

Issue #14.1: stopping ``ask``/``chat`` mid-answer used to end in a segfault (llama.cpp still
generating in a worker thread while the interpreter freed the model) or "Event loop is closed";
``serve`` printed a traceback per cancelled task and cut the client's stream without an error
event; the log said ``cancelled`` with 0/0 tokens. Each case runs several times: the crash was
a race, seen in 4 runs out of 4 but not guaranteed in any single one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.model

SRC = Path(__file__).resolve().parents[2] / "src"
TASK = "Write a long, detailed Python module implementing a bank account class with many methods and docstrings."
RUNS = 3


def _config(tmp_path: Path, model: Path, port: int = 8765) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "default_agent": "engineer",
        # a loaded machine (load 16: other work beside the suite) gave no first token within the default 30 s, and a
        # 503 failed a test about signals; the bounds here are hang-guards only
        "defaults": {"timeouts": {"queue": 120, "first_token": 120, "idle": 60}},
        "models": {"local": {"provider": "llamacpp", "path": str(model), "context": 2048}},
        "agents": {"engineer": {"primary": "local", "max_tokens": 600}},
        "log": {"path": str(tmp_path / "log.sqlite3")},
        "gateway": {"port": port},
    }))
    return path


#: every process a test started: killed after the test, whatever it ended with (a failed assert left a `serve` running)
_started: list[Proc] = []


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    yield
    while _started:
        left = _started.pop()
        if left.proc.poll() is None:
            left.proc.kill()
            left.proc.wait(timeout=10)
        left.close()


class Proc:
    """A modelyard process whose stdout is read as it arrives."""

    def __init__(self, *args: str, config: Path, stdin: str | None = None):
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, "-m", "modelyard", *args, "--config", str(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, text=True)
        _started.append(self)
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.flush()
        self.out = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read(1):
            self.out += chunk

    def wait_for_output(self, chars: int, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.out) < chars:
            if self.proc.poll() is not None:
                pytest.fail(f"exited {self.proc.returncode} before answering: {self.proc.stderr.read()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"no answer within {timeout}s: {self.out!r}")
            time.sleep(0.05)

    def stop(self, signum: int | None, timeout: float = 90.0) -> tuple[int, str]:
        if signum is not None:
            self.proc.send_signal(signum)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"still running {timeout}s after signal {signum}")
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        self.close()
        return rc, stderr

    def close(self) -> None:
        """The pipes of the process that has ended, once its reader has read the end (left open: a ResourceWarning
        later)."""
        self._reader.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):  # stdin's flush to a process that has gone
                    pipe.close()


def _clean_exit(rc: int, stderr: str, expected: int) -> None:
    assert rc == expected, f"exit status {rc}, expected {expected}; stderr:\n{stderr}"
    assert "Traceback" not in stderr and "Segmentation fault" not in stderr, stderr
    assert "Event loop is closed" not in stderr, stderr


def _last_request(tmp_path: Path) -> sqlite3.Row:
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM requests ORDER BY ts DESC LIMIT 1").fetchone()
    assert row is not None, "the stopped request was not logged"
    attempt = conn.execute("SELECT * FROM attempts WHERE request_id = ?", (row["id"],)).fetchone()
    conn.close()
    assert row["outcome"] == "cancelled" and attempt["outcome"] == "cancelled"
    assert row["tokens_in"] > 10 and row["tokens_out"] > 0, dict(row)  # what was really produced, not 0/0
    assert row["model"] == "local" and row["response"], dict(row)  # the partial answer is kept
    return row


@pytest.mark.parametrize("run", range(RUNS))
def test_ctrl_c_during_ask_stops_the_model_and_logs_the_partial_answer(run: int, tmp_path: Path,
                                                                      default_model: Path) -> None:
    proc = Proc("ask", "--agent", "engineer", TASK, config=_config(tmp_path, default_model))
    proc.wait_for_output(40)
    rc, stderr = proc.stop(signal.SIGINT)
    _clean_exit(rc, stderr, 130)
    row = _last_request(tmp_path)
    assert row["response"] in proc.out or proc.out.strip().startswith(row["response"].strip()[:20])
    assert "CANCELLED" in stderr and row["id"] in stderr  # the route line of the stopped answer


@pytest.mark.parametrize("run", range(RUNS))
def test_ctrl_c_during_chat_stops_the_model_and_logs_the_partial_answer(run: int, tmp_path: Path,
                                                                       default_model: Path) -> None:
    """Since walk 9 the Ctrl-C stops the answer and chat goes on at its prompt (as `ollama run`): /quit ends it."""
    proc = Proc("chat", "--agent", "engineer", config=_config(tmp_path, default_model), stdin=TASK + "\n")
    proc.wait_for_output(len("modelyard chat") + 120)
    proc.proc.send_signal(signal.SIGINT)
    assert proc.proc.stdin is not None
    proc.proc.stdin.write("/quit\n")  # read at the prompt chat goes back to, once the stopped answer is logged
    proc.proc.stdin.flush()
    rc, stderr = proc.stop(None)
    _clean_exit(rc, stderr, 0)
    assert "stopped; the chat goes on" in stderr, stderr
    _last_request(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("endpoint", [*(["chat"] * RUNS), "responses"],
                         ids=[*(f"chat-{i}" for i in range(RUNS)), "responses"])
def test_sigterm_during_a_served_stream_ends_it_with_an_error_event(endpoint: str, tmp_path: Path,
                                                                   default_model: Path) -> None:
    port = _free_port()
    proc = Proc("serve", "--no-keep-warm", "--no-access-log", config=_config(tmp_path, default_model, port))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.proc.poll() is not None:
            proc.proc.kill()
            pytest.fail(f"serve did not start: {proc.proc.stderr.read()}")
        time.sleep(0.2)

    events: list[dict] = []
    if endpoint == "chat":
        path, body = "/v1/chat/completions", {"model": "engineer", "stream": True,
                                               "messages": [{"role": "user", "content": TASK}]}
    else:
        path, body = "/v1/responses", {"model": "engineer", "stream": True, "input": TASK}
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=120) as response:
        assert response.status_code == 200
        signalled = False
        for line in response.iter_lines():
            if line == "data: [DONE]":
                events.append({"done": True})
            if not line.startswith("data: {"):
                continue
            events.append(json.loads(line.removeprefix("data: ")))
            if not signalled and len(events) >= 15:
                proc.proc.send_signal(signal.SIGTERM)
                signalled = True
    assert signalled, f"the answer ended before the signal ({len(events)} events)"
    last = events[-1]
    if endpoint == "chat":  # a final error event, no bare cut, no [DONE]
        assert last.get("error", {}).get("code") == "shutting_down", events[-3:]
        assert not any(e.get("done") for e in events)
    else:  # the Responses API's own ending: response.failed, saying why
        assert last["type"] == "response.failed", events[-3:]
        assert "shutting down" in last["response"]["error"]["message"]
    stopping = time.monotonic()
    rc, stderr = proc.stop(None)  # already stopping
    print(f"serve exited {time.monotonic() - stopping:.1f}s after the stream ended")
    _clean_exit(rc, stderr, 143)
    _last_request(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_one_signal_at_the_chat_prompt_ends_it(signum: int, tmp_path: Path) -> None:
    """Waiting at the prompt, one Ctrl-C ends ``chat`` (it used to take two: the first only cancelled a
    task whose loop was blocked reading the terminal); SIGTERM ends it with 143. No model involved."""
    from tests.fakes import OpenAIServer

    with OpenAIServer(reply_text="hi there") as fake:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({
            "models": {"fake": {"provider": "openai", "endpoint": fake.url, "model": "fake"}},
            "agents": {"chat": {"primary": "fake"}},
            "log": {"path": str(tmp_path / "log.sqlite3")},
        }))
        proc = Proc("chat", "--agent", "chat", "--local", config=path, stdin="hello\n")
        proc.wait_for_output(len("modelyard chat") + 40, timeout=60)
        deadline = time.monotonic() + 30
        while "hi there" not in proc.out and time.monotonic() < deadline:  # one turn answered, then the prompt
            time.sleep(0.05)
        time.sleep(0.5)
        rc, stderr = proc.stop(signum, timeout=15)
    _clean_exit(rc, stderr, 128 + signum)
