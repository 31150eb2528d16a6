"""One machine, several front-ends, real processes: a ``serve``, ``ask`` processes, a ``chat`` and a ``telegram``
bot (against the fake Bot API) on one slow backend with ``max_concurrent: 2`` — and no Redis.

The backend counts the requests it serves at once: it must never see more than 2, whichever process
sent them; an ``ask --local`` (opting out) is the control that shows the count would go over.
Then: an ``ask`` killed with -9 while it holds a slot gives it back at once (the kernel closes its
connection), and a killed serve leaves front-ends on their own state, saying so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fakes import OpenAIServer, TelegramServer
from tests.fakes.faults import Fault
from tests.reliability.loadgen import GatewayProcess

LIMIT = 2
SLOW = 0.8  # seconds per request at the backend
ALICE = 111


class Child:
    """A ``python -m modelyard …`` process with its output in files."""

    def __init__(self, args: list[str], directory: Path, name: str, env: dict[str, str], stdin: bytes | None = None):
        self.out, self.err = directory / f"{name}.out", directory / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "modelyard", *args], stdout=out, stderr=err, env=env,
                                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.stderr()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Machine:
    directory: Path
    config: Path
    env: dict[str, str]
    backend: OpenAIServer
    tg: TelegramServer
    serve: GatewayProcess
    children: list[Child] = field(default_factory=list)

    def run(self, name: str, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> Child:
        child = Child([*args, "--config", str(self.config)], self.directory, name, {**self.env, **(env or {})}, stdin)
        self.children.append(child)
        return child

    def ask(self, name: str, *extra: str) -> Child:
        return self.run(name, "ask", "--agent", "chat", *extra, f"question {name}")

    def health(self) -> dict[str, Any]:
        return httpx.get(self.serve.url + "/healthz", timeout=5).json()

    def slots(self) -> tuple[int, int]:
        model = next(m for m in self.health()["models"] if m["name"] == "slow")
        return model["in_flight"], model["waiting"]


def _write_config(directory: Path, backend: OpenAIServer, tg: TelegramServer) -> Path:
    data = {
        "models": {"slow": {"provider": "openai", "endpoint": f"{backend.url}/v1", "model": "slow-model",
                            "max_concurrent": LIMIT}},
        "agents": {"chat": {"primary": "slow", "max_tokens": 32}},
        "default_agent": "chat",
        "defaults": {"timeouts": {"queue": 60, "connect": 2, "first_token": 30, "idle": 30, "total": 120},
                     "retries": {"attempts": 0}},
        "log": {"path": str(directory / "routing.sqlite3")},
        "telegram": {"base_url": tg.base_url, "allowed_users": [ALICE], "agent": "chat", "edit_interval": 0.2},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def machine(tmp_path: Path, *serve_args: str) -> Iterator[Machine]:
    with OpenAIServer(models=["slow-model"], reply_text="Hello from the slow model.") as backend, \
            TelegramServer() as tg:
        backend.faults.set_default(Fault.delay(SLOW))
        config = _write_config(tmp_path, backend, tg)
        env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data"), "TELEGRAM_BOT_TOKEN": tg.token}
        env.pop("MODELYARD_STATE", None)
        serve = GatewayProcess(config, tmp_path, env=env)
        serve.args += list(serve_args)
        m = Machine(tmp_path, config, env, backend, tg, serve)
        try:
            serve.start()
            yield m
        finally:
            for child in m.children:
                child.stop()
            serve.stop()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


class Saturate:
    """Keeps ``clients`` requests at once going to serve's HTTP API until stopped."""

    def __init__(self, url: str, clients: int = 3):
        self.url, self.stop_flag, self.statuses = url, threading.Event(), []
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(clients)]

    def _loop(self, i: int) -> None:
        with httpx.Client(timeout=120) as http:
            n = 0
            while not self.stop_flag.is_set():
                body = {"model": "chat", "max_tokens": 16, "messages": [{"role": "user", "content": f"http {i}-{n}"}]}
                self.statuses.append(http.post(self.url + "/v1/chat/completions", json=body).status_code)
                n += 1

    def __enter__(self) -> Saturate:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(120)


def _bot_answers(tg: TelegramServer, chat_id: int) -> int:
    return sum(1 for c in tg.sent if c.chat_id == chat_id and c.params.get("reply_markup"))


def test_serve_ask_and_telegram_share_two_slots(tmp_path: Path) -> None:
    with machine(tmp_path, "--no-telegram") as m:
        bot = m.run("telegram", "telegram")
        _wait(lambda: "running" in bot.stderr() or bot.proc.poll() is not None, 60, "the bot started")
        assert "limits: shared with `modelyard serve`" in bot.stderr(), bot.output()
        with Saturate(m.serve.url):
            _wait(lambda: m.backend.in_flight == LIMIT, 20, "serve alone fills both slots")
            asks = [m.ask(f"ask{i}") for i in range(3)]
            chat = m.run("chat", "chat", "--agent", "chat", stdin=b"hello from a terminal\n/quit\n")
            for chat_id in (1001, 1002):
                m.tg.push_message(ALICE, chat_id, f"hello from chat {chat_id}")
            pids = {a.proc.pid for a in asks} | {bot.proc.pid, chat.proc.pid}
            seen: set[int] = set()

            def borrowers() -> bool:
                seen.update(m.health()["state"]["lending"]["borrowers"])
                return pids <= seen
            _wait(borrowers, 60, "every front-end borrowed from serve")
            codes = [a.wait(120) for a in [*asks, chat]]
            _wait(lambda: all(_bot_answers(m.tg, c) for c in (1001, 1002)), 120, "the bot answered both chats")
            peak = m.backend.max_in_flight
            # the control: a front-end that opts out double-books the model
            control = m.ask("control", "--local")
            assert control.wait(120) == 0, control.output()
        assert codes == [0, 0, 0, 0], [a.output() for a in [*asks, chat]]
        assert "Hello from the slow model." in chat.output(), chat.output()
        assert peak == LIMIT, f"the backend saw {peak} requests at once (limit {LIMIT}; serve, 3 asks, a chat, a bot)"
        assert m.backend.max_in_flight == LIMIT + 1, "`ask --local` kept its own slots (the test can fail)"
        assert m.tg.calls_to("getUpdates"), "the bot polled the fake Bot API"
        for a in asks:
            assert "note:" not in a.stderr(), a.stderr()
            # and says where its limits were (it used to be silent when borrowing worked)
            assert f"limits: shared with `modelyard serve` (pid {m.serve.proc.pid})" in a.stderr(), a.stderr()  # type: ignore[union-attr]
        assert "limits: shared with `modelyard serve`" in chat.stderr(), chat.stderr()
        assert "limits: shared" not in control.stderr(), control.stderr()
        assert m.slots() == (0, 0)


def test_kill_9_of_a_front_end_holding_a_slot_gives_it_back_at_once(tmp_path: Path) -> None:
    with machine(tmp_path, "--no-telegram") as m:
        m.backend.faults.set_default(Fault.delay(30))
        victim = m.ask("victim")
        _wait(lambda: m.slots()[0] == 1 and m.backend.in_flight == 1, 60, "the ask holds a slot at serve")
        assert m.health()["state"]["lending"]["borrowers"] == [victim.proc.pid]
        assert "modelyard_front_ends 1.0" in httpx.get(m.serve.url + "/metrics", timeout=5).text
        victim.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        victim.wait(10)
        _wait(lambda: m.slots()[0] == 0, 10, "the slot came back")
        back = time.monotonic() - killed
        print(f"\nslot back {back * 1000:.0f} ms after kill -9 (measured through /healthz)")
        assert back < 2.0
        assert m.health()["state"]["lending"]["borrowers"] == []


def test_serve_down_front_ends_fall_back_and_say_so(tmp_path: Path) -> None:
    with machine(tmp_path, "--no-telegram") as m:
        bot = m.run("telegram", "telegram")
        _wait(lambda: "running" in bot.stderr() or bot.proc.poll() is not None, 60, "the bot started")
        pid = m.serve.proc.pid if m.serve.proc else 0
        m.serve.kill9()  # its registry file stays behind, naming a dead pid
        lone = m.ask("alone")
        assert lone.wait(120) == 0, lone.output()
        assert f"note: limits: this process only — `modelyard serve` (pid {pid}) is not running" in lone.stderr()
        m.tg.push_message(ALICE, 2001, "still there?")
        _wait(lambda: _bot_answers(m.tg, 2001), 60, "the bot answers on its own")
        assert "lost `modelyard serve`" in bot.stderr(), bot.stderr()
        # serve back: the long-running bot borrows again
        m.serve.start()
        m.tg.push_message(ALICE, 2002, "and now?")
        _wait(lambda: _bot_answers(m.tg, 2002), 60, "the bot answers again")
        _wait(lambda: bot.proc.pid in m.health()["state"]["lending"]["borrowers"], 10, "the bot borrows again")


def test_serve_runs_the_bot_and_a_second_bot_is_refused(tmp_path: Path) -> None:
    with machine(tmp_path) as m:  # the config has a telegram section and the token is set: the bot runs in serve
        _wait(lambda: m.health().get("telegram") == "running", 30, "the bot runs inside serve")
        m.tg.push_message(ALICE, 3001, "hello")
        _wait(lambda: _bot_answers(m.tg, 3001), 60, "serve's bot answered")
        assert "modelyard_telegram_up 1.0" in httpx.get(m.serve.url + "/metrics", timeout=5).text
        assert m.tg.token not in m.serve.output()
        second = m.run("telegram2", "telegram")
        assert second.wait(60) == 2
        assert f"already runs inside `modelyard serve` (pid {m.serve.proc.pid})" in second.stderr()  # type: ignore[union-attr]
        models = m.run("models", "models")
        assert models.wait(60) == 0
        assert "shared with `modelyard serve`" in models.output(), models.output()


def test_a_second_gateway_for_the_same_config_borrows_the_first_ones_limits(tmp_path: Path) -> None:
    with machine(tmp_path, "--no-telegram") as m:
        second = GatewayProcess(m.config, tmp_path, env=m.env)
        second.args += ["--no-telegram"]
        try:
            second.start()
            state = httpx.get(second.url + "/healthz", timeout=5).json()["state"]
            assert state["backend"] == "borrowed" and state["up"], state
            assert second.proc is not None and second.proc.pid in m.health()["state"]["lending"]["borrowers"]
            with Saturate(m.serve.url, clients=2) as one, Saturate(second.url, clients=2) as two:
                _wait(lambda: m.backend.in_flight == LIMIT, 20, "both slots in use")
                time.sleep(3 * SLOW)
            peak = m.backend.max_in_flight
            assert set(one.statuses) == {200} and set(two.statuses) == {200}, (one.statuses, two.statuses)
        finally:
            second.stop()
        assert peak == LIMIT, f"two gateways on one config: the backend saw {peak} at once (limit {LIMIT})"


@pytest.fixture(autouse=True)
def _no_stray_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_STATE", raising=False)


def test_a_config_edited_after_serve_started_is_said_not_mixed_silently(tmp_path: Path) -> None:
    """A team edits the config (a model added, a limit raised) while serve runs: serve keeps the file as it read
    it, ask reads the new one and borrowed serve's limits with 'limits: shared with `modelyard serve`' — the new
    model's limits quietly stayed in ask's own process, the raised one was serve's old one. Now both say so."""
    with machine(tmp_path, "--no-telegram") as m:
        data = yaml.safe_load(m.config.read_text())
        data["models"]["slow"]["max_concurrent"] = LIMIT + 1
        data["models"]["other"] = {"provider": "openai", "endpoint": f"{m.backend.url}/v1", "model": "slow-model"}
        m.config.write_text(yaml.safe_dump(data))
        asked = m.ask("edited")
        assert asked.wait(120) == 0, asked.output()
        said = " ".join(asked.stderr().split())
        assert f"(pid {m.serve.proc.pid if m.serve.proc else 0}) runs this config as the file was when it started" \
            in said, said
        assert f"other is not in it (its limits stay in this process); slow: max_concurrent {LIMIT + 1} in the " \
            f"file, {LIMIT} in serve (serve's applies): restart it to apply the file" in said, said
