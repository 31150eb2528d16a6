"""Redis Sentinel: modelyard needs one Redis primary, and says so — for a Sentinel URL (``redis+sentinel://``, the form
other clients take) at config load, and for a ``redis://`` URL naming a Sentinel's port (it answers PING, then "ERR
unknown command 'eval'" to everything modelyard needs: checked against a real ``redis-server --sentinel``, Redis 7.0)
at start. Before, the first was "expected a Redis URL like …" with no word of Sentinel, and the second started a gateway
that gave no model a slot, with /healthz saying "ResponseError: unknown command 'evalsha'".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from modelyard.config.loader import parse_config
from modelyard.errors import ConfigError
from modelyard.router.shared.link import StoreFault, scripts_refused
from tests.shared.redis_kit import free_port, short_lease

SRC = Path(__file__).resolve().parents[2] / "src"


@contextlib.contextmanager
def running_sentinel(directory: Path, program: str = "redis-server") -> Iterator[int]:
    """A Sentinel (``program --sentinel``: Redis's, or Valkey's ``valkey-server``) on a free port; its port."""
    port = free_port()
    conf = directory / "sentinel.conf"  # a Sentinel rewrites its config file: one of its own
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor team 127.0.0.1 6379 1\n")
    exe = shutil.which(program)
    assert exe, f"{program} is not installed: run scripts/services.sh"
    proc = subprocess.Popen([exe, str(conf), "--sentinel", "--dir", str(directory)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with contextlib.closing(redis.Redis(port=port, socket_connect_timeout=0.2, protocol=2)) as probe:
                    probe.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline and proc.poll() is None, f"{program} --sentinel did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with running_sentinel(tmp_path_factory.mktemp("sentinel")) as port:
        yield port


@pytest.mark.parametrize("url", ["redis+sentinel://:s3cret@10.0.0.5:26379/team", "sentinel://10.0.0.5:26379"])
def test_a_sentinel_url_says_it_is_not_supported_and_what_to_write(url: str) -> None:
    text = "models:\n  m: {provider: openai, endpoint: 'http://127.0.0.1:9'}\nagents:\n  chat: {primary: m}\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text + f"state: '{url}'\n", "team.yaml")
    text = str(exc.value)
    assert "Sentinel URLs are not supported" in text and "redis://HOST:6379/0" in text
    assert "get-master-addr-by-name" in text and "s3cret" not in text


def test_a_sentinel_port_is_named_at_start(sentinel: int, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{sentinel}/0"
    found = asyncio.run(scripts_refused(short_lease(url=url, timeout=1)))
    assert found is not None and found[0] is StoreFault.SENTINEL, found
    config = tmp_path / "team.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9", "max_concurrent": 1}},
        "agents": {"chat": {"primary": "m"}}, "log": {"path": str(tmp_path / "log.sqlite3")}, "state": url}))
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_STATE"}
    env["PYTHONPATH"] = f"{SRC}{os.pathsep}{env.get('PYTHONPATH', '')}"
    done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "serve", "--port",
                           str(free_port())], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert f"{url} is not a Redis modelyard can use" in done.stderr
    assert "SENTINEL get-master-addr-by-name NAME" in done.stderr and "Traceback" not in done.stderr
