"""What a small team running modelyard on several hosts against one Redis sees of the shared state, and what an
outage of Redis costs it: serve's start line, `models`' exit status, a laptop's `ask` during an outage."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from tests.fakes import OpenAIServer
from tests.shared.redis_kit import PrivateRedis, until


def _write(path: Path, endpoint: str, state: dict, tmp_path: Path, *, limit: int = 2) -> Path:
    path.write_text(yaml.safe_dump({
        "models": {"fast": {"provider": "openai", "endpoint": endpoint, "model": "m", "max_concurrent": limit}},
        "agents": {"chat": {"primary": "fast"}}, "log": {"path": str(tmp_path / "log.db")}, "state": state}))
    return path


def _run(*args: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1",
                               "COLUMNS": "200"})


def test_ask_during_a_redis_outage_takes_one_slot_unless_on_outage_is_fail(tmp_path: Path, prefix: str) -> None:
    """A laptop's `ask` that cannot reach Redis never counted the instances, so its share was 0 and every model
    was skipped as state_unreachable: the command failed although it sends one request. It takes one slot now."""
    server = PrivateRedis(tmp_path)  # never started: the port is closed, as during an outage
    with OpenAIServer(models=["m"]) as backend:
        state = {"url": server.url, "prefix": prefix, "timeout": 0.3}
        config = _write(tmp_path / "team.yaml", backend.url, state, tmp_path)
        out = _run("ask", "--agent", "chat", "--config", str(config), "hi", tmp_path=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Hello from the fake server." in out.stdout
        assert len(backend.requests_to("/v1/chat/completions")) == 1

        failing = _write(tmp_path / "fail.yaml", backend.url, {**state, "on_outage": "fail"}, tmp_path)
        out = _run("ask", "--agent", "chat", "--config", str(failing), "hi", tmp_path=tmp_path)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "state_unreachable" in out.stdout + out.stderr
        assert len(backend.requests_to("/v1/chat/completions")) == 1


def test_models_exits_1_when_it_could_not_read_the_shared_state(tmp_path: Path, prefix: str) -> None:
    """`models` with Redis down printed the config's limits as the slots and exited 0: a script (or a person) could
    not tell a team-wide view from none. It still lists what the log says, says why on stderr, and exits 1 — as it
    does when the log's database cannot be read."""
    with PrivateRedis(tmp_path) as server:
        config = _write(tmp_path / "team.yaml", "http://127.0.0.1:9/v1",
                        {"url": server.url, "prefix": prefix, "timeout": 0.3}, tmp_path)
        seen = _run("models", "--no-reach", "--config", str(config), tmp_path=tmp_path)
        assert seen.returncode == 0, seen.stdout + seen.stderr
        assert "reachable" in seen.stdout
        server.kill()
        for extra in ([], ["--json"]):
            out = _run("models", "--no-reach", *extra, "--config", str(config), tmp_path=tmp_path)
            assert out.returncode == 1, out.stdout + out.stderr
            assert "fast" in out.stdout  # the listing is still there
            error = " ".join(out.stderr.split())
            assert f"error: shared state {server.url} (prefix {prefix}) could not be read" in error, out.stderr
            assert "not what the processes sharing them hold" in error, out.stderr


def _serve_lines(config: Path, tmp_path: Path, until: str) -> str:
    """serve's start-up output up to the first line containing ``until`` (then it is stopped)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", "--config", str(config), "--port", str(port),
                             "--no-keep-warm"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / f"data-{port}"), "COLUMNS": "400"})
    lines: queue.Queue[str] = queue.Queue()
    out = proc.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in iter(out.readline, "")] + [lines.put("")],
                              daemon=True)
    reader.start()
    said: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while not any(until in line for line in said):
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"serve never said {until!r} within 60 s:\n{''.join(said)}") from None
            assert line, "".join(said)  # it exited without saying it
            said.append(line)
    finally:
        proc.terminate()
        proc.wait(15)
        reader.join(5)  # it reads to the end of the pipe, then the pipe is closed (left open: a ResourceWarning later)
        out.close()
    return "".join(said)


def test_serve_says_once_whether_it_reached_the_shared_state(tmp_path: Path, prefix: str) -> None:
    """serve said 'limits: shared through Redis … (connecting)' and never whether it got there: a host pointed at a
    Redis that was down (or another one) started like the others. Now one line says which, with the other
    processes it found and whether they apply the same limits."""
    import asyncio

    from modelyard.config import load_config
    from modelyard.router import ModelPool

    with PrivateRedis(tmp_path) as server:
        config = _write(tmp_path / "team.yaml", "http://127.0.0.1:9/v1",
                        {"url": server.url, "prefix": prefix, "timeout": 0.3}, tmp_path)

        async def beside_another() -> str:
            other = ModelPool(load_config(config))  # another host's process, already running
            other.join()
            try:
                return await asyncio.to_thread(_serve_lines, config, tmp_path, "shared state:")
            finally:
                await other.aclose()

        said = asyncio.run(beside_another())
        assert f"shared state: connected to {server.url} prefix '{prefix}' (1 other instance(s), same limits)" \
            in said, said
        server.kill()
        said = _serve_lines(config, tmp_path, "shared state:")
        assert f"shared state: cannot reach {server.url} prefix '{prefix}' (" in said, said
        assert "no model gets a slot until it answers" in said, said


def test_hosts_on_one_log_but_different_redis_servers_are_said(tmp_path: Path, redis_url: str, prefix: str,
                                                               pg_url: str, caplog) -> None:
    """A typo in one host's state.url (another Redis server) or none: the hosts share the routing log but not the
    limits, each hands out the whole max_concurrent of the same backends, and nothing could say so — no Redis sees
    both. Each host's forwarder now records the shared state it uses in the log; the forwarders and `models` say
    the hosts that use another."""
    import logging
    import socket

    from modelyard.ledger import presence
    from modelyard.ledger.forward import Forwarder

    with PrivateRedis(tmp_path) as typo:
        here = socket.gethostname()  # both "hosts" are this machine: a loopback Redis is named with it
        right = presence.fingerprint(redis_url, prefix, here)
        wrong = presence.fingerprint(typo.url, prefix, here)
        assert right != wrong and f"redis {here}:{typo.port}/0 prefix '{prefix}'" == wrong
        assert "***" not in wrong and ":@" not in presence.fingerprint("redis://:secret@10.0.0.5:6379/2", "p", "h")
        assert presence.fingerprint("redis://:secret@10.0.0.5:6379/2", "p", "h") == "redis 10.0.0.5:6379/2 prefix 'p'"
        hosts = [Forwarder(tmp_path / f"spool-{i}.sqlite3", pg_url, poll=0.05) for i in range(2)]
        try:
            with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
                hosts[0].presence, hosts[1].presence = right, wrong
                for forwarder in hosts:
                    forwarder.presence_every = 0.2  # 30 s in a process: both sides look within the test's bound
                for forwarder in hosts:
                    forwarder.wake()
                until(lambda: (hosts[0].state_differs and hosts[1].state_differs)
                       or [f.last_error for f in hosts if f.last_error] or "not recorded" in caplog.text)
                assert hosts[0].state_differs and hosts[1].state_differs, caplog.text
            assert [d.split(" (seen ")[0] for d in hosts[1].state_differs] == [f"{here} uses {right}"]
            assert [d.split(" (seen ")[0] for d in hosts[0].state_differs] == [f"{here} uses {wrong}"]
            assert hosts[0].health().limited_apart == tuple(hosts[0].state_differs)  # /healthz log.forward
            assert any("limit the same models apart" in r.getMessage() and wrong in r.getMessage()
                       for r in caplog.records), caplog.text

            config = tmp_path / "team.yaml"
            config.write_text(yaml.safe_dump({
                "models": {"fast": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "model": "m"}},
                "agents": {"chat": {"primary": "fast"}},
                "log": {"path": str(tmp_path / "log.db"), "url": pg_url},
                "state": {"url": typo.url, "prefix": prefix, "timeout": 0.3}}))
            out = _run("models", "--no-reach", "--config", str(config), tmp_path=tmp_path)
            assert out.returncode == 0, out.stdout + out.stderr
            said = " ".join(out.stdout.split())
            assert "shared state: hosts writing to this routing log limit the same models apart" in said, said
            assert f"this host uses {wrong}; {here} uses {right} (seen" in said, said  # not itself
        finally:
            for forwarder in hosts:
                forwarder.close()


def test_hosts_limiting_apart_are_warned_of_once_not_at_every_look(tmp_path: Path, pg_url: str, caplog) -> None:
    """The warning that hosts limit the same models apart compared whole sentences, "seen 12s ago" included: each
    look (every 30 s) found another age and warned again. The hosts and what they use decide; the age does not."""
    import logging
    import socket

    from modelyard.ledger import presence
    from modelyard.ledger.forward import Forwarder

    here = socket.gethostname()
    right = presence.fingerprint("redis://10.0.0.5:6379/0", "p", here)
    wrong = presence.fingerprint("redis://10.0.0.6:6379/0", "p", here)
    hosts = [Forwarder(tmp_path / f"spool-{i}.sqlite3", pg_url, poll=0.05) for i in range(2)]
    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            hosts[0].presence, hosts[1].presence = right, wrong
            hosts[0].presence_every, hosts[1].presence_every = 0.2, 1.6  # host 0 sees host 1's age grow 0 → 1 s
            for forwarder in hosts:
                forwarder.wake()
            until(lambda: hosts[0].state_differs and hosts[1].state_differs)
            ages = set()
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline and len(ages) < 3:
                ages.update(hosts[0].state_differs)
                time.sleep(0.05)
            assert len(ages) >= 2, ages  # the picture's age changed between looks
        warned = [r.getMessage() for r in caplog.records if "limit the same models apart" in r.getMessage()
                  and f"this host uses {right}" in r.getMessage()]
        assert len(warned) == 1, warned
    finally:
        for forwarder in hosts:
            forwarder.close()
