"""``model: auto`` at the gateway: the orchestrator picks the agent, as for a turn in chat or Telegram.

Real orchestrator (its classifier trained from the built-in role examples), real gateway, the official
``openai`` SDK; the fake backend shows which agent's system prompt reached the model.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakes import OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config

BUG = "Fix this Python function, it raises KeyError: def get(d): return d['name']"
EMAIL = "Draft a polite email to my landlord asking when the broken heater will be repaired."


def config(tmp_path: Path, url: str, *, orchestrated: bool = True, extra_agent: str | None = None):
    model = {"fast": {"provider": "openai", "model": "fast-model", "endpoint": url}}
    agents = {name: {"primary": "fast", "system": f"You are the {name} agent."}
              for name in ("chat", "engineer", "research", "writer")}
    if orchestrated:
        agents["orchestrator"] = {"primary": "fast", "consumers": ["engineer", "research", "writer"]}
    if extra_agent:
        agents[extra_agent] = {"primary": "fast", "system": f"You are the {extra_agent} agent."}
    return make_config(model, agents, log={"path": str(tmp_path / "log.sqlite3")},
                       orchestration={"threshold": 0, "default": "chat"})


@pytest.fixture(scope="module")
def backend() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply_text="done") as server:
        yield server


def client_for(gw: GatewayServer) -> openai.OpenAI:
    # the first "auto" turn fits the classifier from the role examples: 17 s at load 13, past 30 s at load ~20
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=180)


def system_prompt(backend: OpenAIServer) -> str:
    return backend.last_request.json["messages"][0]["content"]


def test_auto_routes_each_message_to_its_agent_and_logs_the_decision(tmp_path: Path, backend) -> None:
    with GatewayServer(config(tmp_path, backend.url)) as gw:
        client = client_for(gw)
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=[
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": BUG}])  # the last user message is what gets routed
        assert raw.parse().choices[0].message.content == "done"
        assert raw.headers["x-modelyard-agent"] == "engineer"
        assert system_prompt(backend).startswith("You are the engineer agent.")
        request_id = raw.headers["x-modelyard-request-id"]

        streamed = client.chat.completions.create(model="auto", stream=True,
                                                  messages=[{"role": "user", "content": EMAIL}])
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "done"
        assert system_prompt(backend).startswith("You are the writer agent.")

        listed = [m.id for m in client.models.list().data]
        assert listed[0] == "auto" and "engineer" in listed
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        rows = db.execute("SELECT request_id, agent, method FROM routing_decisions ORDER BY ts").fetchall()
        agent_of = dict(db.execute("SELECT id, agent FROM requests").fetchall())
    assert rows[0] == (request_id, "engineer", "fast")
    assert rows[1][1] == "writer" and agent_of[rows[1][0]] == "writer"


def test_auto_through_the_responses_api(tmp_path: Path, backend) -> None:
    with GatewayServer(config(tmp_path, backend.url)) as gw:
        raw = client_for(gw).responses.with_raw_response.create(model="auto", input=BUG)
        assert raw.parse().output_text == "done"
        assert raw.headers["x-modelyard-agent"] == "engineer"


def test_an_agent_called_auto_keeps_its_name_and_no_orchestrator_means_no_auto(tmp_path: Path, backend) -> None:
    with GatewayServer(config(tmp_path, backend.url, extra_agent="auto")) as gw:
        raw = client_for(gw).chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": BUG}])
        assert raw.headers["x-modelyard-agent"] == "auto"
    with GatewayServer(config(tmp_path / "plain", backend.url, orchestrated=False)) as gw:
        with pytest.raises(openai.NotFoundError, match="does not exist") as refused:
            client_for(gw).chat.completions.create(model="auto", messages=[{"role": "user", "content": BUG}])
        assert "auto" not in [m.id for m in client_for(gw).models.list().data]
    # README's first client asks for model="auto"; with a config of one's own, without an orchestrator, the 404 said
    # only what the config has ("agents: chat, …; models: fast (address a model as 'model:NAME' …)")
    assert "'auto' lets an orchestrator pick the agent, and this config has none" in refused.value.message
    assert "orchestration.agent" in refused.value.message


def test_a_request_without_a_model_is_offered_auto_where_there_is_an_orchestrator(tmp_path: Path, backend) -> None:
    """No ``model`` sent: 400 "model: Field required" said nothing of what goes there; with an orchestrator in the
    config, 'auto' is one answer (without one it is not offered: test_openai_sdk)."""
    import httpx

    with GatewayServer(config(tmp_path, backend.url)) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    message = r.json()["error"]["message"]
    assert message.startswith("model: Field required — put an agent's name there: agents: chat, engineer"), message
    assert message.endswith("; 'auto' lets the orchestrator pick the agent)"), message
