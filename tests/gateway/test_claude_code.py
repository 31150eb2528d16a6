"""Claude Code itself (Anthropic's agentic CLI, from the npm registry) on the gateway's ``/v1/messages``.

The strictest client of that API there is: ~80 KB requests with two dozen tools, system blocks with
``cache_control``, mid-conversation ``system`` messages (a 2026 beta), adaptive thinking, ``?beta=true``
on the path, a bearer token instead of ``x-api-key``, and a tool loop. Before this test the gateway
refused its first request (a ``system`` message inside ``messages``). Installed once into the user
cache with npm (``@anthropic-ai/claude-code``, ~235 MB); skipped where npm is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.fakes import OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

VERSION = "2"  # the major version tested; npm takes the newest 2.x
REPLY = "Hello from the local engineer model."
pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: Claude Code comes from npm")


@pytest.fixture(scope="session")
def claude_code() -> Path:
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelyard-tests" / "claude-code"
    binary = prefix / "node_modules" / ".bin" / "claude"
    if not binary.exists():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"@anthropic-ai/claude-code@{VERSION}"], check=True, timeout=600, capture_output=True)
    return binary


def test_claude_code_runs_a_turn_and_its_tool_loop_on_a_local_agent(tmp_path, claude_code):
    with OpenAIServer(reply_text=REPLY) as backend:
        config = make_config(
            {"local": {"provider": "openai", "endpoint": backend.url, "model": "m", "context": 200_000,
                       "max_concurrent": 4}},
            {"engineer": {"primary": "local"}, "utility": {"primary": "local"}},
            log={"path": str(tmp_path / "log.db")})
        with GatewayServer(config, api_keys=("sk-gw-test",)) as gw:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
            env.update(ANTHROPIC_BASE_URL=gw.url, ANTHROPIC_AUTH_TOKEN="sk-gw-test", ANTHROPIC_MODEL="engineer",
                       ANTHROPIC_SMALL_FAST_MODEL="utility", DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1",
                       CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", HOME=str(tmp_path))
            done = subprocess.run([str(claude_code), "-p", "Say hello", "--output-format", "json"], env=env,
                                  cwd=tmp_path, capture_output=True, text=True, timeout=180)
        sent = [r.json for r in backend.requests]
    result = json.loads(done.stdout)
    assert done.returncode == 0 and not result["is_error"], done.stdout + done.stderr
    assert result["result"] == REPLY and result["num_turns"] >= 2
    first, last = sent[0], sent[-1]
    assert len(first["tools"]) >= 10 and first["messages"][0]["role"] == "system"
    assert "Say hello" in json.dumps(first["messages"])
    assert any(m["role"] == "tool" for m in last["messages"])  # the fake called a tool; Claude Code answered it
    with sqlite3.connect(tmp_path / "log.db") as db:
        rows = db.execute("SELECT agent, model, outcome FROM requests").fetchall()
    assert rows and set(rows) == {("engineer", "local", "ok")}
