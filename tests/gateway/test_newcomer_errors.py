"""What a first-time client gets wrong at the gateway is answered in words that say what to do."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from modelyard.cli import app


def test_a_get_where_a_post_belongs_says_to_post(gateway) -> None:
    """`curl http://127.0.0.1:8765/v1/chat/completions` (a GET) got {"message": "Method Not Allowed", "code": null}."""
    r = httpx.get(gateway.url + "/v1/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["message"] == "GET /v1/chat/completions is not served: use POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = httpx.get(gateway.url + "/api/chat")  # an Ollama path answers in Ollama's shape
    assert r.status_code == 405 and r.json()["error"] == "GET /api/chat is not served: use POST"


def test_serve_on_an_address_not_of_this_machine_says_so_before_announcing(tmp_path: Path, monkeypatch) -> None:
    """`serve --host 192.0.2.1` (another machine's address, a typo) printed 'modelyard gateway on
    http://192.0.2.1:…' and then uvicorn's '[Errno 99] error while attempting to bind', exit 3."""
    monkeypatch.setenv("NEWCOMER_GW_KEYS", "k1")
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  a: {provider: ollama, model: x}\nagents:\n  chat: {primary: a}\n"
                      f"gateway: {{api_keys_env: NEWCOMER_GW_KEYS}}\nlog: {{path: {tmp_path / 'log.sqlite3'}}}\n")
    out = CliRunner().invoke(app, ["--config", str(config), "serve", "--host", "192.0.2.1", "--port", "18765"])
    assert out.exit_code == 2, out.output
    assert "cannot serve on 192.0.2.1:18765" in out.output and "must be an address of this machine" in out.output
    assert "modelyard gateway on" not in out.output
    bad_name = CliRunner().invoke(app, ["--config", str(config), "serve", "--host", "no-such-host.invalid"])
    assert bad_name.exit_code == 2 and "cannot serve on no-such-host.invalid:" in bad_name.output, bad_name.output
