"""handle_turn: delegation by the orchestrator, hand-offs, streaming, thinking kept out, bad input.

Hand-off checks (a revision that loses the answer is not used): tests/agents/test_handoff.py."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from modelyard.agents.errors import HandoffRefused, UnknownAgent
from modelyard.agents.turn import handle_turn
from modelyard.types import Message
from tests.agents.conftest import fake_config
from tests.fakes import OpenAIServer


def user(text: str) -> list[Message]:
    return [Message("user", text)]


async def test_fast_path_delegates_to_engineer_and_logs_the_decision(server, runtime_for, tmp_path: Path) -> None:
    runtime = runtime_for(fake_config(server.url, tmp_path))
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    result = await handle_turn(runtime, user("my python script crashes with a TypeError, please fix it"),
                               on_text=on_text)
    assert result.agent == "engineer"
    assert result.text == "<engineer> done"
    assert seen and seen[-1] == "<engineer> done"
    assert all(b.startswith(a) for a, b in itertools.pairwise(seen))  # accumulated, growing
    assert result.route[0].startswith("orchestrator: engineer (fast, ")
    assert result.route[1] == "engineer → fake"
    assert result.decision is not None and result.decision.method == "fast"
    assert len(server.requests_to("/v1/chat/completions")) == 1  # no model call to decide

    assert runtime.log.flush()  # decisions and requests: one writer
    conn = sqlite3.connect(runtime.log_path)
    rows = conn.execute("SELECT request_id, agent, method, confidence, ms, text FROM routing_decisions").fetchall()
    assert len(rows) == 1
    request_id, agent, method, confidence, ms, text = rows[0]
    assert (request_id, agent, method) == (result.request_id, "engineer", "fast")
    assert 0 < confidence <= 1 and ms > 0 and "TypeError" in text
    assert conn.execute("SELECT agent FROM requests WHERE id = ?", (request_id,)).fetchone() == ("engineer",)


async def test_small_talk_goes_to_chat(server, runtime_for, tmp_path: Path) -> None:
    runtime = runtime_for(fake_config(server.url, tmp_path))
    result = await handle_turn(runtime, user("hey, thanks a lot!"))
    assert (result.agent, result.text) == ("chat", "<chat> done")


async def test_writer_hands_off_to_utility_the_draft_streams_then_the_revision(runtime_for, tmp_path: Path) -> None:
    with OpenAIServer(reply_text=lambda b: f"<{b['messages'][0]['content'].split()[3]}> draft",
                      emit_reasoning=True, thinking_text="SECRET-REASONING") as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path))
        seen: list[str] = []

        async def on_text(text: str) -> None:
            seen.append(text)

        result = await handle_turn(runtime, user("draft a friendly email inviting the team to a picnic"),
                                   on_text=on_text)
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert [step.split(" ")[0] for step in result.route] == ["orchestrator:", "writer", "utility"]
    assert result.agent == "utility" and result.text == "<utility> draft"
    assert "<writer> draft" in seen and seen[-1] == "<utility> draft"  # the draft streamed, then was replaced
    handed = bodies[1]["messages"][-1]["content"]
    assert "<writer> draft" in handed and "draft a friendly email" in handed
    assert all("SECRET-REASONING" not in str(b["messages"]) for b in bodies)  # thinking never passed on
    assert all("SECRET-REASONING" not in s for s in seen)


async def test_inline_think_tags_never_reach_the_user(runtime_for, tmp_path: Path) -> None:
    with OpenAIServer(reply_text="<think>internal plan</think>The answer is 4.") as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path))
        seen: list[str] = []

        async def on_text(text: str) -> None:
            seen.append(text)

        result = await handle_turn(runtime, user("hi"), agent="chat", on_text=on_text)
    assert result.text == "The answer is 4."
    assert all("internal" not in s for s in seen)


async def test_explicit_agent_skips_the_orchestrator(server, runtime_for, tmp_path: Path) -> None:
    runtime = runtime_for(fake_config(server.url, tmp_path))
    result = await handle_turn(runtime, user("fix my code"), agent="research")
    assert result.agent == "research" and result.decision is None
    assert result.route == ["research → fake"]


async def test_low_confidence_asks_the_orchestrator_model(runtime_for, tmp_path: Path) -> None:
    def reply(body: dict) -> str:
        if body.get("response_format"):
            return '{"agent": "research", "task": "look it up"}'
        return "researched"

    with OpenAIServer(reply_text=reply) as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path, orchestration={"threshold": 1.0}))
        result = await handle_turn(runtime, user("bananas"))
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert result.agent == "research" and result.decision.method == "model"
    assert result.decision.task == "look it up"
    schema = bodies[0]["response_format"]["json_schema"]["schema"]  # constrained output, not free text
    assert bodies[0]["response_format"]["type"] == "json_schema" and "research" in schema["properties"]["agent"]["enum"]
    assert len(schema["properties"]["agent"]["enum"]) == 3  # the classifier's best three, not all five
    assert bodies[0]["messages"][-1]["content"].endswith("/no_think")  # thinking off for routing
    runtime.log.flush()
    conn = sqlite3.connect(runtime.log_path)
    assert conn.execute("SELECT method, agent FROM routing_decisions").fetchall() == [("model", "research")]
    parent = conn.execute("SELECT parent_id FROM requests WHERE agent = 'orchestrator'").fetchone()[0]
    assert parent == result.request_id  # the routing call is tied to the request it routed


async def test_handoff_loop_is_refused_before_any_model_runs(server, runtime_for, tmp_path: Path) -> None:
    config = fake_config(server.url, tmp_path, agents={"utility": {"consumers": ["writer"]}})
    runtime = runtime_for(config)
    with pytest.raises(HandoffRefused, match=r"loop refused: writer → utility → writer"):
        await handle_turn(runtime, user("write a poem"), agent="writer")
    assert server.requests_to("/v1/chat/completions") == []


async def test_too_deep_chain_is_refused(server, runtime_for, tmp_path: Path) -> None:
    config = fake_config(server.url, tmp_path, orchestration={"max_depth": 1})
    runtime = runtime_for(config)
    with pytest.raises(HandoffRefused, match="max_depth=1"):
        await handle_turn(runtime, user("write a poem"), agent="writer")


async def test_bad_input_gets_clear_answers(server, runtime_for, tmp_path: Path) -> None:
    runtime = runtime_for(fake_config(server.url, tmp_path))
    with pytest.raises(UnknownAgent, match=r"unknown agent 'nobody' \(agents: chat, "):
        await handle_turn(runtime, user("hi"), agent="nobody")
    empty = await handle_turn(runtime, user("   "))
    assert "empty" in empty.text and empty.model is None
    huge = await handle_turn(runtime, user("word " * 20_000), agent="chat")
    assert "too long" in huge.text and huge.model is None
    assert server.requests_to("/v1/chat/completions") == []


async def test_a_message_too_long_for_the_primary_goes_to_a_fallback_with_a_larger_context(
        server, runtime_for, tmp_path: Path) -> None:
    """One rule (router/fit.py): refused only when no model of the chain can take it; the old check
    let it through to the 4096-token primary, which had to fail (or silently truncate) it."""
    big = {"provider": "openai", "endpoint": server.url, "model": "backup-model", "context": 65536}
    runtime = runtime_for(fake_config(server.url, tmp_path, agents={"chat": {"fallbacks": ["backup"]}},
                                      models={"backup": big}))
    result = await handle_turn(runtime, user("word " * 5000), agent="chat")  # ~6,250 tokens
    assert result.model == "backup" and result.text == "<chat> done"
    sent = server.requests_to("/v1/chat/completions")
    assert [r.json["model"] for r in sent] == ["backup-model"]
    refused = await handle_turn(runtime, user("word " * 60_000), agent="chat")  # ~75,000: fits no model
    assert "too long" in refused.text and refused.model is None and "largest model" in refused.text
    assert len(server.requests_to("/v1/chat/completions")) == 1
