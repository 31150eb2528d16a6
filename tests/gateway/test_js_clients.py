"""JavaScript clients on the gateway's three wire APIs, as their users call them: the official ``openai``,
``@anthropic-ai/sdk`` and ``ollama`` npm packages, and the Vercel AI SDK (``ai``) with ``@ai-sdk/openai``
(Responses and chat completions), ``@ai-sdk/anthropic`` and ``ollama-ai-provider-v2``.

One small script per client (tests/gateway/js/) runs its cases under Node and prints what it got as JSON.
The packages are installed once into the user cache with npm (~40 MB); skipped where npm is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import Fault
from tests.gateway.clients import CITY, TEXT, backends, logged  # noqa: F401  (backends: this module's fixture)

#: the major versions tested; npm takes the newest of each
PACKAGES = ["ai@6", "@ai-sdk/openai@3", "@ai-sdk/anthropic@3", "ollama-ai-provider-v2@3", "openai@6",
            "@anthropic-ai/sdk@1", "ollama@0.6", "zod@4"]
SCRIPTS = Path(__file__).parent / "js"
pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the clients come from npm")


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """The packages under a cache prefix, and the scripts beside them (Node resolves imports from the script)."""
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelyard-tests" / "js-clients"
    marker = prefix / ("installed-" + "-".join(p.replace("/", "+") for p in PACKAGES))
    if not marker.exists():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix), *PACKAGES],
                       check=True, timeout=600, capture_output=True)
        marker.touch()
    scripts = prefix / "scripts"
    shutil.copytree(SCRIPTS, scripts, dirs_exist_ok=True)
    return scripts


def run(node_clients: Path, gateway, script: str, *cases: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(["node", str(node_clients / script), *cases], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GATEWAY_URL": gateway.url, **env})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def error(result: Any) -> dict[str, Any]:
    assert isinstance(result, dict) and "error" in result, result
    return result["error"]


def broken_stream(node_clients: Path, gateway, fakes, script: str) -> str:
    """What the client raised for a stream the model broke after its first text (the answer had begun)."""
    fakes[0].push(Fault.error_midstream(after_chunks=2))
    return error(run(node_clients, gateway, script, "broken_stream")["broken_stream"])["message"]


def test_openai_sdk(node_clients, gateway, fakes, tmp_path):
    got = run(node_clients, gateway, "openai.mjs", "chat", "chat_stream", "chat_tools", "chat_parse", "responses",
              "responses_stream", "responses_tools", "responses_parse", "not_found")
    assert got["chat"] == {"text": TEXT, "finish": "stop", "model": "fast", "usage": got["chat"]["usage"]}
    assert "".join(got["chat_stream"]["parts"]) == TEXT and got["chat_stream"]["usage"]["completion_tokens"] > 0
    assert got["chat_tools"] == {"text": TEXT, "calls": 1}
    assert got["chat_parse"] == CITY and got["responses_parse"] == CITY  # the schema reached the model
    assert got["responses"]["text"] == TEXT and got["responses"]["status"] == "completed"
    assert "".join(got["responses_stream"]["parts"]) == TEXT == got["responses_stream"]["text"]
    assert got["responses_tools"] == [["get_weather", CITY]]
    assert error(got["not_found"])["status"] == 404 and "coder" in error(got["not_found"])["message"]
    assert len(logged(tmp_path)) == 9  # every answer's row, the 404 none
    assert "incomplete" in broken_stream(node_clients, gateway, fakes, "openai.mjs")


def test_anthropic_sdk(node_clients, gateway, fakes):
    got = run(node_clients, gateway, "anthropic.mjs", "create", "stream", "tools", "tools_stream", "structured",
              "count", "not_found")
    assert got["create"]["text"] == TEXT and got["create"]["stop"] == "end_turn" and got["create"]["model"] == "fast"
    assert "".join(got["stream"]["parts"]) == TEXT == got["stream"]["text"] and got["stream"]["usage"]["output_tokens"]
    assert got["tools"] == {"stop": "tool_use", "call": ["get_weather", CITY], "answer": TEXT}
    assert got["tools_stream"] == {"stop": "tool_use", "calls": [["get_weather", CITY]]}
    assert got["structured"] == CITY and got["count"] > 0
    assert error(got["not_found"])["status"] == 404
    assert "incomplete" in broken_stream(node_clients, gateway, fakes, "anthropic.mjs")


def test_ollama_js(node_clients, gateway, fakes):
    got = run(node_clients, gateway, "ollama.mjs", "chat", "chat_stream", "generate", "tools", "structured", "list",
              "ps", "show", "not_found", "not_served")
    assert got["chat"]["text"] == TEXT and got["chat"]["done"] == "stop" and got["chat"]["eval_count"] > 0
    assert got["chat_stream"]["text"] == TEXT and got["chat_stream"]["done_reason"] == "stop"
    assert got["generate"] == TEXT and got["tools"] == {"call": ["get_weather", CITY], "answer": TEXT}
    assert got["structured"] == CITY
    assert {"coder", "fast"} <= set(got["list"]) and {"coder", "fast"} <= set(got["ps"]) and "tools" in got["show"]
    assert error(got["not_found"])["status"] == 404 and "coder" in error(got["not_found"])["message"]
    assert error(got["not_served"])["message"].startswith("no endpoint POST /api/pull")  # not '[object Object]'
    assert "incomplete" in broken_stream(node_clients, gateway, fakes, "ollama.mjs")


@pytest.mark.parametrize("provider", ["responses", "chat", "anthropic", "ollama"])
def test_vercel_ai_sdk(provider, node_clients, gateway, fakes, tmp_path):
    cases = ("text", "stream", "tools", "tools_stream", "object", "not_found")
    got = run(node_clients, gateway, "ai_sdk.mjs", *cases, AI_SDK_PROVIDER=provider)
    assert got["text"]["text"] == TEXT and got["text"]["finish"] == "stop" and got["text"]["output"] > 0
    assert "".join(got["stream"]["parts"]) == TEXT and got["stream"]["finish"] == "stop"
    assert got["tools"] == {"text": TEXT, "steps": [["tool-calls", [["get_weather", CITY]], ["9C and rain in Paris"]],
                                                     ["stop", [], []]]}
    assert got["tools_stream"]["text"] == TEXT and "tool-result" in got["tools_stream"]["kinds"]
    assert got["object"] == CITY
    assert error(got["not_found"])["status"] == 404
    assert len(logged(tmp_path)) == 7  # two steps each for the tool loops
    fakes[0].push(Fault.error_midstream(after_chunks=2))
    broken = run(node_clients, gateway, "ai_sdk.mjs", "broken_stream", AI_SDK_PROVIDER=provider)["broken_stream"]
    if provider == "ollama":  # the provider drops Ollama's {"error": …} line (as from Ollama itself): README
        assert broken["finish"] == "other" and "".join(broken["parts"]) == "Hello from"
    else:
        assert "incomplete" in error(broken)["message"]
