"""A Redis that refuses the password stops `serve` and `telegram` at start, saying where the URL is set and what to
write — they started, gave no model a slot and answered every request 503 (a newcomer's fourth walk)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from tests.shared.redis_kit import PrivateRedis, free_port, short_lease

SRC = Path(__file__).resolve().parents[2] / "src"
PASSWORD = "s3cret-team-pw"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> object:
    with PrivateRedis(tmp_path_factory.mktemp("redis"), "--requirepass", PASSWORD) as server:
        yield server


def _config(tmp_path: Path, state: str | None) -> Path:
    path = tmp_path / "team.yaml"
    body: dict = {"models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
                  "agents": {"chat": {"primary": "m"}}, "log": {"path": str(tmp_path / "log.sqlite3")}}
    if state is not None:
        body["state"] = state
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "MODELYARD_STATE"}
    full.update({"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})})
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, env=full,
                          timeout=60)


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["telegram"]], ids=lambda c: c[0])
def test_a_wrong_password_in_the_config_stops_the_process_naming_the_line(guarded: PrivateRedis, tmp_path: Path,
                                                                        command: list[str]) -> None:
    wrong = f"redis://:not-{PASSWORD}@127.0.0.1:{guarded.port}/0"
    config = _config(tmp_path, wrong)
    line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if text.startswith("state:"))
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    done = _run("--config", str(config), *command)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert f"{config}:{line}: state: Redis at redis://:***@127.0.0.1:{guarded.port}/0 refused the credentials" \
        in done.stderr, done.stderr
    assert "redis://:PASSWORD@HOST:6379/0" in done.stderr and "MODELYARD_STATE" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert "Uvicorn running" not in done.stderr + done.stdout  # stopped before serving anything


def test_no_password_in_modelyard_state_names_the_variable(guarded: PrivateRedis, tmp_path: Path) -> None:
    done = _run("--config", str(_config(tmp_path, None)), "serve", "--port", str(free_port()),
                env={"MODELYARD_STATE": f"redis://127.0.0.1:{guarded.port}/0"})
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.strip().startswith(f"error: MODELYARD_STATE: Redis at redis://127.0.0.1:{guarded.port}/0 "
                                          "refused the credentials"), done.stderr


def test_the_right_password_or_an_outage_is_not_a_refusal(guarded: PrivateRedis) -> None:
    """An unreachable Redis is an outage, ridden out (state.on_outage), never a reason to refuse to start."""
    from redis.exceptions import AuthenticationError

    from modelyard.router.shared.link import failure, refused

    right = short_lease(url=f"redis://:{PASSWORD}@127.0.0.1:{guarded.port}/0")
    nobody = short_lease(url=f"redis://127.0.0.1:{free_port()}/0")
    wrong = short_lease(url=f"redis://:nope@127.0.0.1:{guarded.port}/0")
    assert asyncio.run(refused(right)) is None
    assert asyncio.run(refused(nobody)) is None
    why = asyncio.run(refused(wrong))
    assert why is not None and why.startswith("AuthenticationError") and "nope" not in why
    # what /healthz, `models` and a request's state_unreachable say about it: what to write, too
    assert "redis://:PASSWORD@HOST:6379/0" in failure(AuthenticationError("invalid username-password pair"))


def test_models_says_the_refusal_once_in_its_caption(guarded: PrivateRedis, tmp_path: Path) -> None:
    """`models` is a look: the store's condition is its caption's. It also printed the running processes' warning,
    "… unreachable (…): models fall back to this process's share (share)", on stderr above the table."""
    config = _config(tmp_path, f"redis://:nope@127.0.0.1:{guarded.port}/0")
    done = _run("--config", str(config), "models", "--no-reach")
    assert done.returncode == 1, done.stderr  # the shared state could not be read (helper-66): said once, exit 1
    said = " ".join(done.stderr.split())
    assert said.startswith("error: shared state redis://:***@") and said.count("error:") == 1, done.stderr
    assert "refused" not in said and "could not be read (why: the line above" in said, done.stderr
    caption = " ".join(done.stdout.split())  # wrapped at the terminal's width
    assert "refused the credentials" in caption and "redis://:PASSWORD@HOST:6379/0" in caption


def test_models_says_the_embedded_models_slots_are_this_hosts(redis_url: str, prefix: str, tmp_path: Path,
                                                              default_model: Path) -> None:
    """The embedded model runs inside each process, so its shared slots are per host: a laptop's `models` showed its
    own `0/1` beside the other models' team-wide counts while a gateway host's embedded model was busy."""
    config = tmp_path / "team.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"url": redis_url, "prefix": prefix},
        "models": {"embedded": {"provider": "llamacpp", "path": str(default_model)},
                   "m": {"provider": "openai", "endpoint": "http://10.0.0.7:9"}},  # on the network: every host's
        "agents": {"chat": {"primary": "m", "fallbacks": ["embedded"]}},
        "log": {"path": str(tmp_path / "log.sqlite3")},
    }))
    done = _run("--config", str(config), "models", "--no-reach", env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert f"embedded: runs inside each process, so its slots are per host: 0/1 is this host's " \
           f"({socket.gethostname()})" in done.stdout, done.stdout
    assert "  m: runs inside" not in done.stdout
    listed = json.loads(_run("--config", str(config), "models", "--no-reach", "--json").stdout)["models"]
    assert {m["model"]: m["slots_per_host"] for m in listed} == {"embedded": True, "m": False}


def test_a_host_that_logs_elsewhere_is_named(redis_url: str, prefix: str, tmp_path: Path, pg_url: str) -> None:
    """Hosts share limits through Redis and the log through PostgreSQL: one whose config has no log.url (or another
    database) wrote its requests to its own file, and `log`/`report` on the laptop silently lacked them. Each
    process now registers where its log goes (the database, never the user or password) beside its limits."""
    secret_url = pg_url.replace("postgres@", "postgres:pw-in-url@", 1)
    assert "pw-in-url" in secret_url

    def config(name: str, log_url: str | None) -> Path:
        path = tmp_path / f"{name}.yaml"
        log: dict = {"path": str(tmp_path / f"{name}.sqlite3")}
        if log_url:
            log["url"] = log_url
        path.write_text(yaml.safe_dump({
            "state": {"url": redis_url, "prefix": prefix},
            "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
            "agents": {"chat": {"primary": "m"}}, "log": log}))
        return path

    full = {k: v for k, v in os.environ.items() if k != "MODELYARD_STATE"}
    full.update({"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                 "MODELYARD_DATA_DIR": str(tmp_path / "host-a")})
    gateway = subprocess.Popen([sys.executable, "-m", "modelyard", "--config", str(config("host-a", secret_url)),
                                "serve", "--port", str(free_port())], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=full)
    try:
        laptop = config("laptop", None)
        deadline = time.monotonic() + 60
        while True:
            done = _run("--config", str(laptop), "models", "--no-reach", env={"COLUMNS": "400"})
            if "logs differ" in done.stdout or time.monotonic() > deadline or gateway.poll() is not None:
                break
            time.sleep(0.2)
        database = secret_url.split("?")[0].replace("postgres:pw-in-url@", "")
        assert (f"logs differ: this host's file only (no log.url) here, {database} at "
                f"{socket.gethostname()}:{gateway.pid}:") in done.stdout, done.stdout
        registered = redis.Redis.from_url(redis_url).hgetall(f"{prefix}:configs")
        assert registered and not any(b"pw-in-url" in v for v in registered.values()), registered
    finally:
        gateway.terminate()
        gateway.communicate(timeout=60)


async def test_a_password_changed_while_running_is_said_with_what_to_write_never_shown(tmp_path: Path,
                                                                                      caplog: pytest.LogCaptureFixture,
                                                                                      ) -> None:
    """The team rotates the Redis password (CONFIG SET requirepass, then the old sessions are closed) while a gateway
    runs: it falls back to its share at once, and says why and what to write — neither password in any line."""
    from modelyard.router import ModelPool
    from tests.helpers import make_config

    with PrivateRedis(tmp_path, "--requirepass", PASSWORD) as server:
        url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        config = make_config({"m": {"provider": "openai", "max_concurrent": 2}}, {"a": {"primary": "m"}})
        pool = ModelPool(config, shared=short_lease(url=url, prefix="rotated", timeout=0.3, refresh=0.1, lease=1.2))
        try:
            await pool["m"].acquire(1)
            await pool["m"].release()
            counted = time.monotonic() + 5  # its share is known once it has counted the processes (its heartbeat):
            while pool.link is not None and not (pool.link.instances and pool.link.host_instances):
                # rotated before that (CI once, under load), it rightly has no share to fall back to
                assert time.monotonic() < counted, "the gateway never counted the processes that share its Redis"
                await asyncio.sleep(0.02)
            admin = redis.Redis(port=server.port, password=PASSWORD)
            admin.config_set("requirepass", "rotated-" + PASSWORD)
            admin.client_kill_filter(_type="normal", skipme=True)
            admin.close()
            deadline = time.monotonic() + 5
            while pool.link is not None and pool.link.up:
                assert time.monotonic() < deadline, "the gateway never noticed its password was refused"
                await asyncio.sleep(0.02)
            status = pool.state_status()
            assert status is not None and "Redis refused the credentials" in status.detail
            assert "redis://:PASSWORD@HOST:6379/0" in status.detail
            assert await pool["m"].acquire(0.5) < 0.5  # its share: floor(2 / 1 instance)
            await pool["m"].release()
        finally:
            await pool.aclose()
    said = caplog.text + str(status.detail) + status.url
    assert PASSWORD not in said and "refused the credentials" in caplog.text
