"""Issue 14.5: thinking switches go only to models that take them, and only when the agent sets thinking.

Qwen3 over an OpenAI-compatible server is steered with ``/think`` / ``/no_think`` in the prompt;
Qwen2.5 knows no such words and reads them as part of the question. So the prompt switch needs
the model to be known to think (config ``capabilities: [thinking]`` or a ``probe`` that saw it
think), while Ollama's ``think`` field — checked by Ollama itself — only needs the agent to ask.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from tests.fakes import OllamaServer, OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.providers import ModelProfile, ThinkingSwitch, build_provider
from modelyard.runtime import open_runtime
from modelyard.types import ChatRequest, Message

PROMPT = "Summarise the release notes."


def config(tmp_path: Path, url: str, model_id: str, *, capabilities: list[str] | None = None,
           provider: str = "openai") -> Any:
    model: dict[str, Any] = {"provider": provider, "endpoint": url, "model": model_id}
    if capabilities is not None:
        model["capabilities"] = capabilities
    agents = {"plain": {"primary": "m"}, "on": {"primary": "m", "thinking": True},
              "off": {"primary": "m", "thinking": False}}
    return make_config({"m": model}, agents, log={"path": str(tmp_path / "log.sqlite3")},
                       defaults={"retries": {"attempts": 0}})


async def sent_prompts(cfg: Any, server: OpenAIServer) -> dict[str, str]:
    """The last user message each agent's request put on the wire."""
    runtime = open_runtime(config=cfg)
    out = {}
    try:
        for agent in ("plain", "on", "off"):
            await runtime.router.complete(agent, ChatRequest([Message("user", PROMPT)]))
            out[agent] = [m for m in server.last_request.json["messages"] if m["role"] == "user"][-1]["content"]
    finally:
        await runtime.aclose()
    return out


async def test_qwen25_never_gets_a_switch_it_does_not_understand(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        sent = await sent_prompts(config(tmp_path, server.url, "qwen2.5-coder-7b-instruct"), server)
    assert sent == {"plain": PROMPT, "on": PROMPT, "off": PROMPT}


async def test_a_model_declared_to_think_gets_the_switch_only_when_the_agent_sets_it(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        sent = await sent_prompts(config(tmp_path, server.url, "qwen3-8b", capabilities=["thinking"]), server)
    assert sent == {"plain": PROMPT, "on": PROMPT + " /think", "off": PROMPT + " /no_think"}


async def test_ollama_gets_think_only_when_the_agent_sets_it(tmp_path: Path) -> None:
    with OllamaServer(["qwen3:8b"]) as server:
        runtime = open_runtime(config=config(tmp_path, server.url, "qwen3:8b", provider="ollama"))
        bodies = {}
        try:
            for agent in ("plain", "on", "off"):
                await runtime.router.complete(agent, ChatRequest([Message("user", PROMPT)]))
                bodies[agent] = server.last_request.json
        finally:
            await runtime.aclose()
    assert "think" not in bodies["plain"]  # the model's own default: nothing sent
    assert (bodies["on"]["think"], bodies["off"]["think"]) == (True, False)


def test_the_gateway_sends_no_switch_when_the_client_asks_for_none(tmp_path: Path) -> None:
    with OpenAIServer(reply_text="ok") as server:
        cfg = config(tmp_path, server.url, "qwen2.5-7b-instruct")
        with GatewayServer(cfg) as gateway:
            client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=10)
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": PROMPT}])
            client.chat.completions.create(model="plain", messages=[{"role": "user", "content": PROMPT}])
        bodies = [r.json for r in server.requests_to("/v1/chat/completions")]
    assert [b["messages"][-1]["content"] for b in bodies] == [PROMPT, PROMPT]


def probe_config(tmp_path: Path, url: str) -> Path:
    data = {"log": {"path": str(tmp_path / "log.sqlite3")},
            "models": {"m": {"provider": "openai", "endpoint": url, "model": "qwen3-8b"}},
            "agents": {"off": {"primary": "m", "thinking": False}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("thinks", [True, False])
def test_what_probe_found_decides_the_switch(tmp_path: Path, thinks: bool) -> None:
    with OpenAIServer(emit_reasoning=thinks) as server:
        path = probe_config(tmp_path, server.url)
        out = CliRunner().invoke(app, ["probe", "--config", str(path), "--only", "reachable,thinking"])
        assert out.exit_code == 0, out.output
        probe_prompts = [r.json["messages"][-1]["content"] for r in server.requests_to("/v1/chat/completions")]
        assert any(p.endswith(" /think") for p in probe_prompts)  # the probe tried the switch to find out
        server.reset()
        runtime = open_runtime(path)
        assert runtime.router.providers["m"].profile.thinking is thinks

        async def ask() -> None:
            try:
                await runtime.router.complete("off", ChatRequest([Message("user", PROMPT)]))
            finally:
                await runtime.aclose()

        asyncio.run(ask())
        sent = server.last_request.json["messages"][-1]["content"]
    assert sent == (PROMPT + " /no_think" if thinks else PROMPT)


def test_check_warns_when_an_agents_thinking_would_not_reach_its_model(tmp_path: Path) -> None:
    path = probe_config(tmp_path, "http://127.0.0.1:9")
    out = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert "agent 'off' sets thinking off, but no switch is sent to its primary 'm'" in out.output
    assert "list `thinking` in the capabilities of model 'm'" in out.output


@pytest.mark.parametrize(("switch", "known", "wanted", "sent"), [
    (ThinkingSwitch.QWEN_SOFT, None, True, None),  # words in the prompt: only to a model known to think
    (ThinkingSwitch.QWEN_SOFT, True, False, False),
    (ThinkingSwitch.QWEN_SOFT, True, None, None),  # the agent did not ask: nothing
    (ThinkingSwitch.OLLAMA_THINK, None, False, False),  # a field the server checks: sent when asked
    (ThinkingSwitch.ANTHROPIC_BUDGET, False, True, None),  # measured not to think: never
    (ThinkingSwitch.NONE, True, True, None),
])
def test_thinking_to_send(switch: ThinkingSwitch, known: bool | None, wanted: bool | None,
                          sent: bool | None) -> None:
    assert ModelProfile(thinking_switch=switch, thinking=known).thinking_to_send(wanted) is sent


def test_profiles_per_backend_and_what_config_and_probe_add() -> None:
    cfg = make_config({"q": {"provider": "openai", "model": "Qwen/Qwen3-8B"},
                       "l": {"provider": "openai", "model": "llama-3.1-8b", "capabilities": ["thinking"]},
                       "o": {"provider": "ollama", "model": "qwen3:8b"},
                       "c": {"provider": "anthropic", "api_key_env": "K", "capabilities": ["tools", "thinking"]},
                       "e": {"provider": "llamacpp"}},
                      {"a": {"primary": "q"}})
    p = {name: build_provider(name, m).profile for name, m in cfg.models.items()}
    assert p["q"].thinking_switch is ThinkingSwitch.QWEN_SOFT and p["q"].thinking is None
    assert p["l"].thinking_switch is ThinkingSwitch.NONE and p["l"].thinking is True
    assert p["o"].thinking_switch is ThinkingSwitch.OLLAMA_THINK and p["o"].json_mode is True
    assert (p["c"].thinking_switch, p["c"].tool_calls, p["c"].json_mode) == (ThinkingSwitch.ANTHROPIC_BUDGET, True,
                                                                             False)
    assert p["e"].shows_thinking is False
    declared = build_provider("c", cfg.models["c"])
    declared.learn({"thinking": False, "tools": False, "json": True})
    # the config's claims stand; what it does not claim, the probe settles
    assert (declared.profile.thinking, declared.profile.tool_calls, declared.profile.json_mode) == (True, True, True)
