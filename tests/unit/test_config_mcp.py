"""tools.mcp[] in the config: stdio or a URL, credentials only from the environment, errors with file, line, key."""

from __future__ import annotations

import pytest

from modelyard.config.loader import parse_config
from modelyard.errors import ConfigError

BASE = """\
models:
  local:
    provider: ollama
    model: qwen3.5:latest
agents:
  chat:
    primary: local
    tools:
      mcp:
"""


def error_of(server: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + server, "cfg.yaml")
    return info.value


def test_a_remote_server_with_its_token_from_the_environment_loads() -> None:
    config = parse_config(BASE + """\
        - url: https://mcp.example.com/mcp?team=7
          bearer_token_env: EXAMPLE_MCP_TOKEN
          headers: {X-Project: docs}
          headers_env: {X-Api-Key: EXAMPLE_MCP_KEY}
        - url: http://127.0.0.1:9000/sse
          transport: sse
        - command: npx
          args: [-y, some-server]
          restarts: 0
          call_timeout: 120
""", "cfg.yaml")
    servers = config.agents["chat"].tools.mcp
    assert servers[0].label == "https://mcp.example.com/mcp"  # the query (it may hold a key) never in a log
    assert servers[0].transport == "auto" and servers[1].transport == "sse"
    assert servers[2].restarts == 0 and servers[2].call_timeout == 120 and servers[2].label == "npx"


@pytest.mark.parametrize(("server", "line", "key", "words"), [
    ("        - url: https://x.example/mcp\n          headers: {Authorization: Bearer sk-live-123}\n",
     11, "agents.chat.tools.mcp.0.headers", "credentials are never written in the config"),
    ("        - url: https://x.example/mcp\n          headers_env: {Authorization: Bearer sk-live-123}\n",
     11, "agents.chat.tools.mcp.0.headers_env", "NAME of an environment variable"),
    ("        - url: https://user:pw@x.example/mcp\n", 10, "agents.chat.tools.mcp.0.url", "credentials are never"),
    ("        - url: ftp://x.example/mcp\n", 10, "agents.chat.tools.mcp.0.url", "http:// or https://"),
    ("        - url: https://x.example/mcp\n          command: npx\n", 10, "agents.chat.tools.mcp.0",
     "either 'command:'"),
    ("        - args: [x]\n", 10, "agents.chat.tools.mcp.0", "either 'command:'"),
    ("        - command: npx\n          bearer_token_env: TOKEN\n", 10, "agents.chat.tools.mcp.0",
     "are for a server reached by 'url:'"),
    ("        - url: https://x.example/mcp\n          transport: websocket\n", 11,
     "agents.chat.tools.mcp.0.transport", "streamable-http"),
    ("        - command: npx\n          restarts: 9\n", 11, "agents.chat.tools.mcp.0.restarts", "3"),
    ("        - url: https://x.example/mcp\n          bearer_token: sk-live-123\n", 11,
     "agents.chat.tools.mcp.0.bearer_token", "did you mean 'bearer_token_env'"),
])
def test_mcp_config_errors_name_file_line_and_key(server: str, line: int, key: str, words: str) -> None:
    err = error_of(server)
    assert err.path == "cfg.yaml" and err.line == line and err.key == key, (err.line, err.key, str(err))
    assert words in str(err), str(err)
    assert "sk-live-123" not in str(err) and "pw@" not in str(err)


def test_check_names_an_unset_mcp_token_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.ops.check import check_config

    monkeypatch.delenv("EXAMPLE_MCP_TOKEN", raising=False)
    monkeypatch.setenv("EXAMPLE_MCP_KEY", "set")
    config = parse_config(BASE + """\
        - url: https://mcp.example.com/mcp?k=1
          bearer_token_env: EXAMPLE_MCP_TOKEN
          headers_env: {X-Api-Key: EXAMPLE_MCP_KEY}
        - url: https://other.example.com/mcp
          headers_env: {X-Api-Key: EXAMPLE_MCP_TOKEN}
          required: false
""", "cfg.yaml")
    found = [(f.level, f.message) for f in check_config(config, {}) if "MCP server" in f.message]
    assert found == [
        ("error", "agent 'chat': MCP server 'https://mcp.example.com/mcp' needs the environment variable "
                  "EXAMPLE_MCP_TOKEN (tools.mcp[].bearer_token_env), which is not set here"),
        ("warning", "agent 'chat': MCP server 'https://other.example.com/mcp' needs the environment variable "
                    "EXAMPLE_MCP_TOKEN (tools.mcp[].headers_env.X-Api-Key), which is not set here"),
    ]
