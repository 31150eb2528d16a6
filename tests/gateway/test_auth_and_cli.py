"""Bearer keys, loopback-only default, and ``modelyard serve`` refusing an open non-loopback bind."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
import yaml
from typer.testing import CliRunner

from modelyard.cli import app as cli_app
from modelyard.config.schema import GatewayConfig
from modelyard.gateway.auth import InsecureBind, KeyCheck, check_bind, is_loopback, load_keys, who_may_call
from tests.cpu_wait import CpuWait
from tests.gateway.harness import GatewayServer, fake_config

KEY = "my-gateway-key-0001"


@pytest.fixture
def keyed_gateway(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_ANTHROPIC_KEY", "unused")
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    with GatewayServer(config, api_keys=(KEY, "second-key-0002")) as gw:
        yield gw


def test_keys_are_required_when_configured(keyed_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    url = keyed_gateway.url
    body = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 401
    wrong = httpx.post(url + "/v1/chat/completions", json=body, headers={"authorization": "Bearer " + KEY[:-1]})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert KEY[:-1] not in wrong.text
    assert httpx.get(url + "/metrics").status_code == 401
    assert httpx.get(url + "/api/log").status_code == 401
    assert httpx.get(url + "/v1/models").status_code == 401
    assert httpx.get(url + "/healthz").status_code == 200  # liveness stays open for probes
    assert httpx.get(url + "/").status_code == 200  # the page itself holds no data; it asks for a key
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
    assert client.chat.completions.create(**body).model == "fast"
    second = openai.OpenAI(base_url=url + "/v1", api_key="second-key-0002", max_retries=0)
    assert second.models.list().data
    assert KEY not in caplog.text


def test_key_check_is_exact():
    check = KeyCheck((b"abc123",))
    assert check.allows("Bearer abc123") and check.allows("bearer abc123")
    assert not check.allows("Bearer abc1234") and not check.allows("Basic abc123") and not check.allows(None)
    assert KeyCheck(()).allows(None)


def test_loopback_detection():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "::", "example.org"))


def test_non_loopback_bind_needs_keys(monkeypatch):
    monkeypatch.delenv("GW_KEYS", raising=False)
    cfg = GatewayConfig(api_keys_env="GW_KEYS")
    with pytest.raises(InsecureBind, match="set GW_KEYS"):
        check_bind("0.0.0.0", cfg, load_keys(cfg))
    with pytest.raises(InsecureBind, match=r"gateway\.api_keys_env"):
        check_bind("0.0.0.0", GatewayConfig(), ())
    monkeypatch.setenv("GW_KEYS", " k1 , k2,")
    assert load_keys(cfg) == (b"k1", b"k2")
    check_bind("0.0.0.0", cfg, load_keys(cfg))
    check_bind("127.0.0.1", GatewayConfig(), ())


def test_serve_refuses_open_bind_with_exit_2(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("GW_SECRET_KEYS", "")
    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url, gateway={"api_keys_env": "GW_SECRET_KEYS"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    result = CliRunner().invoke(cli_app, ["serve", "--config", str(path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "requires API keys" in result.output and "GW_SECRET_KEYS" in result.output


def test_serve_beyond_loopback_without_keys_names_the_file_and_the_lines(tmp_path, monkeypatch):
    """`modelyard serve --host 0.0.0.0` on the config `init` wrote said "set gateway.api_keys_env in the config to the
    name of an environment variable holding the keys": no file (the newcomer's is out of sight, under ~/.config), no
    lines, nothing on what a key is or how a client sends it — LiteLLM's users hit the same wall with its master_key
    (BerriAI/litellm#1207: "say something about … how to fill it"). Now all four; on the embedded default, that a config
    of one's own comes first. The variable the config names but that is empty says where a service reads it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "mine.yaml"
    path.write_text("models:\n  m: {provider: openai, endpoint: 'http://127.0.0.1:9'}\nagents:\n  chat: {primary: m}\n"
                    f"log: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    result = CliRunner().invoke(cli_app, ["serve", "--config", str(path), "--host", "0.0.0.0"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert (f"set gateway.api_keys_env in {path} — gateway: {{api_keys_env: MODELYARD_API_KEYS}} — and export "
            "MODELYARD_API_KEYS=KEY, one or more comma-separated keys you make up") in text, text
    assert "clients send one as their API key (Authorization: Bearer KEY)" in text, text
    with pytest.raises(InsecureBind, match=r"a config file of your own \(`modelyard init` writes one"):
        check_bind("0.0.0.0", GatewayConfig(), ())
    monkeypatch.delenv("GW_EMPTY", raising=False)
    empty = r"it is unset or empty here \(a service reads it from .*xdg/modelyard/env\)"
    with pytest.raises(InsecureBind, match=empty):
        check_bind("0.0.0.0", GatewayConfig(api_keys_env="GW_EMPTY"), ())


def test_serve_on_a_port_another_program_holds_says_so(tmp_path, fakes):
    """A port in use is the machine's state, not bad input: exit 1 (not done), as docs/commands.md's scheme has it —
    it exited 2, the code for a config error. systemd's Restart=on-failure restarts "when it exited with an exit code
    not equalling 0" (systemd.service(5), https://www.freedesktop.org/software/systemd/man/systemd.service.html#Restart=,
    wording from systemd commit 5389fedd "man: document Restart= a bit more", 2012), so the unit
    retries either way; a unit that stops retrying on bad input (RestartPreventExitStatus=2) now retries a port the
    other program may free."""
    import socket

    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli_app, ["serve", "--config", str(path), "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{port} is already in use by another program" in result.output and "--port" in result.output
    assert "a `modelyard serve` of another config" in result.output, result.output


def test_serve_command_starts_and_answers(tmp_path, fakes):
    import socket
    import subprocess
    import sys
    import time

    oa, ol, an = fakes
    config = fake_config(tmp_path, oa.url, ol.url, an.url)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", "--config", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # 15 s of serve's own: the time its threads waited for a CPU is the machine's (pinned to one core at load ~9 it
        # was not listening after 15 s of wall time)
        cpu_wait, started = CpuWait(proc.pid), time.monotonic()
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                               json={"model": "coder", "messages": [{"role": "user", "content": "hi"}]})
                break
            except httpx.ConnectError:
                assert proc.poll() is None, "serve ended before it listened"
                waited = time.monotonic() - started
                assert waited - cpu_wait.seconds() < 15, f"serve did not start ({waited:.1f}s)"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["model"] == "fast"
        assert r.headers.get("server") is None  # no server banner
        # serve keeps local models warm: the Ollama model was preloaded (a chat with no messages)
        preloads = ol.wait_for(lambda: [q for q in ol.requests_to("/api/chat") if not (q.json or {}).get("messages")])
        assert preloads[0].json["model"]
        # an idle keep-alive connection outlives the idle time of common clients' pools (aiohttp keeps
        # one 15 s): uvicorn's default closed it after 5 s, racing a client that reused it
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            ask = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            conn.sendall(ask)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(6)
            conn.sendall(ask)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200"), "the server closed an idle connection after 5 s"
        # a second serve on the same port is refused before it starts anything, naming the first
        second = CliRunner().invoke(cli_app, ["serve", "--config", str(path), "--port", str(port)])
        assert second.exit_code == 1, second.output  # not done: the machine's state, not bad input
        assert f"127.0.0.1:{port} is already in use by `modelyard serve` pid {proc.pid} of this config" in second.output
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}" in out and "not required (loopback only)" in out
    assert "(OpenAI API at /v1, Anthropic's at /v1/messages, Ollama's at /api; dashboard at /" in out
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in out  # the access log, without credentials


def test_serves_start_says_which_public_names_a_keyless_gateway_answers():
    """The start line said "not required (loopback only)" whatever gateway.allowed_hosts listed: a proxied client's
    403 left no trace of which names were let in (a proxy's name misspelled there is every request refused)."""
    listed = GatewayConfig(allowed_hosts=["gw.example.com", "*.ts.net"])
    assert who_may_call((), listed) == ("not required (loopback only, and requests addressed to gw.example.com, "
                                        "*.ts.net)")
    assert who_may_call((), GatewayConfig()) == "not required (loopback only)"
    assert who_may_call((b"k1", b"k2"), listed) == "required (2 configured)"  # with keys every name may call
