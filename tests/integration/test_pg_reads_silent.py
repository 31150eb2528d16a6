"""The readers of a PostgreSQL routing log (``log``, ``stats``, ``report``, ``models``, the dashboard) on a connection
gone silent mid-query: a firewall that drops packets, a server host frozen or pulled off the network. Nothing answers
and no TCP error comes, and a server-side ``statement_timeout`` cannot fire where the query never arrived — users of
libpq report the call waiting for ever (psycopg/psycopg2#561 "If the connection is lost in the middle of a query, it
will never detect it"; psycopg/psycopg2#1017, an 8-minute hang "despite the statement_timeout being 5 seconds";
netdata/netdata#4988, ``iptables -A INPUT -p tcp --dport 5432 -j DROP``: "Module hangs forever"). The silence is
:mod:`tests.shared.fault_proxy`'s, in front of the real PostgreSQL; the bound (``pg.READ_BOUND``, its length set in
ledger/pg.py, not repeated here) is set to 2 s here. Each reader now ends with one line naming the server and what to
check, not a hang.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.gateway.harness import GatewayServer, fake_config
from tests.integration.test_pg_partition import _through
from tests.shared.fault_proxy import FaultProxy

from modelyard.ledger import pg

BOUND = 2.0
#: in every reader's query of the log's rows, and in none of the connection's set-up (migration check, lock bound)
QUERY = b"FROM requests"
#: the command in a child process with the bound set as the test wants (a child does not see a monkeypatch)
CHILD = ("import sys; from modelyard.ledger import pg; pg.READ_BOUND = float(sys.argv[1]); "
         "from modelyard.cli import main; sys.argv = ['modelyard', *sys.argv[2:]]; main()")


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FaultProxy]:
    pg.PgConnection(pg_url).close()  # the log's tables, made before anything goes through the proxy
    with FaultProxy(5432) as proxy:
        yield proxy


def log_config(directory: Path, url: str) -> Path:
    """A config of one model whose routing log is at ``url`` (its spool in ``directory``)."""
    config = directory / "config.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": {"provider": "openai", "endpoint": "http://127.0.0.1:9"}},
        "agents": {"a": {"primary": "m"}}, "default_agent": "a",
        "log": {"path": str(directory / "spool.sqlite3"), "url": url}}))
    return config


@pytest.mark.parametrize("command", [["log"], ["stats"], ["report"], ["models", "--no-reach"]])
def test_a_command_reading_a_silent_connection_ends_naming_the_server(tmp_path: Path, pg_url: str,
                                                                      proxy: FaultProxy, command: list[str]) -> None:
    config = log_config(tmp_path, _through(pg_url, proxy.port))
    proxy.silence_on(QUERY)
    t0 = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(BOUND), *command, "--config", str(config)],
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`modelyard {command[0]}` still waits on the silent connection") from None
    assert proxy.connections >= 1
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    said = [line for line in out.stderr.splitlines() if f"127.0.0.1:{proxy.port}" in line]
    assert len(said) == 1 and f"no answer from PostgreSQL within {BOUND:g}s" in said[0], out.stderr
    assert "reachable" in said[0], out.stderr
    assert time.monotonic() - t0 < 40


def test_the_dashboard_answers_an_error_when_the_log_goes_silent(tmp_path: Path, pg_url: str, proxy: FaultProxy,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg, "READ_BOUND", BOUND, raising=False)  # raising: the old code had none
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", "sk-ant-test-0123456789abcdef")
    with OpenAIServer() as oa, OllamaServer() as ol, AnthropicServer() as an:
        config = fake_config(tmp_path, oa.url, ol.url, an.url)
        config = config.model_copy(update={"log": config.log.model_copy(update={"url": _through(pg_url, proxy.port)})})
        with GatewayServer(config) as gw:
            proxy.silence_on(QUERY)
            for path in ("/api/log", "/api/summary"):
                try:
                    r = httpx.get(gw.url + path, timeout=30)
                except httpx.TimeoutException:
                    raise AssertionError(f"{path} still waits on the silent connection") from None
                assert r.status_code == 503, (path, r.status_code, r.text)
                message = r.json()["error"]["message"]
                assert f"127.0.0.1:{proxy.port}" in message and "no answer from PostgreSQL" in message, message
