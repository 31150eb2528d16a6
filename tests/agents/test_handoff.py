"""Hand-offs never lose the upstream answer (issue #14.2), reproduced with the exact case.

"write a blog post about our product launch of a new coffee mug": writer wrote 321 tokens, the
default topology handed them to utility, which answered with a 14-token title — and that was all
the user saw. The fake OpenAI server plays both agents (one word = one token, as it counts them).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from modelyard.agents.handoff import handoff_request, rejection
from modelyard.agents.topology import HandoffPurpose, handoff_purpose
from modelyard.agents.turn import handle_turn
from modelyard.types import Message
from tests.agents.conftest import agent_of, fake_config
from tests.fakes import OpenAIServer
from tests.fakes.faults import Fault

TASK = "write a blog post about our product launch of a new coffee mug"
POST = " ".join(["Our new mug keeps coffee hot for hours and feels great in the hand."] * 23)[:1900]  # ~321 words
TITLE = "Launching Our New Coffee Mug: A Sip of Something Special for Every Single Morning"  # 14 words


def replies(utility: str) -> Any:
    def reply(body: dict[str, Any]) -> str:
        return POST if agent_of(body) == "writer" else utility
    return reply


async def run_turn(fake: OpenAIServer, runtime_for, tmp_path: Path, **config: Any) -> tuple[Any, list[str], Any]:
    runtime = runtime_for(fake_config(fake.url, tmp_path, agents={"writer": {"max_tokens": 400}}, **config))
    seen: list[str] = []

    async def on_text(text: str) -> None:
        seen.append(text)

    result = await handle_turn(runtime, [Message("user", TASK)], on_text=on_text)
    assert runtime.log.flush()
    return result, seen, runtime


def rows(runtime) -> list[sqlite3.Row]:
    conn = sqlite3.connect(runtime.log_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT id, parent_id, agent, outcome, tokens_out, response, error FROM requests "
                            "ORDER BY ts").fetchall()
    finally:
        conn.close()


async def test_a_title_instead_of_the_post_is_not_a_revision_and_the_post_stands(runtime_for, tmp_path) -> None:
    with OpenAIServer(reply_text=replies(TITLE)) as fake:
        result, seen, runtime = await run_turn(fake, runtime_for, tmp_path)
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert result.decision is not None and result.decision.agent == "writer"
    assert result.agent == "writer" and result.text == POST.strip()  # the writer's work reaches the user
    assert seen[-1] == POST.strip() and TITLE not in seen[-1]
    step = next(s for s in result.route if s.startswith("utility"))
    assert "not used" in step and "not a revision" in step and "kept writer's answer" in step
    # what the hand-off asked for: the whole text back, with the room to write it
    handed = bodies[-1]
    assert agent_of(handed) == "utility" and "COMPLETE revised answer" in handed["messages"][-1]["content"]
    assert handed["max_tokens"] >= 321
    # both steps in the log: the hand-off is a child of the writer's request and says why it was not used
    writer, utility = rows(runtime)
    assert (writer["agent"], utility["agent"]) == ("writer", "utility")
    assert utility["parent_id"] == writer["id"] == result.request_id
    assert writer["tokens_out"] >= 300 and utility["tokens_out"] == 14
    assert "hand-off result not used" in utility["error"] and writer["error"] is None
    assert [r.id for r in result.records] == [writer["id"], utility["id"]]


async def test_a_real_revision_replaces_the_answer(runtime_for, tmp_path) -> None:
    revised = POST.replace("great", "wonderful")
    with OpenAIServer(reply_text=replies(revised)) as fake:
        result, seen, runtime = await run_turn(fake, runtime_for, tmp_path)
    assert result.agent == "utility" and result.text == revised.strip()
    assert seen[0] != revised and seen[-1] == revised.strip()  # the draft streamed first, then was replaced
    assert any(s.startswith("utility (revise)") and s.endswith(": used") for s in result.route)
    assert all(r["error"] is None for r in rows(runtime))


async def test_a_failed_hand_off_keeps_the_upstream_answer(runtime_for, tmp_path) -> None:
    with OpenAIServer(reply_text=replies(TITLE)) as fake:
        fake.push(Fault.ok())
        fake.push(Fault.status(500))  # the utility's one model fails (no retries in these configs)
        result, _, runtime = await run_turn(fake, runtime_for, tmp_path)
    assert result.agent == "writer" and result.text == POST.strip()
    assert any("hand-off failed" in s for s in result.route)
    assert [r["outcome"] for r in rows(runtime)] == ["ok", "failed"]


async def test_a_revision_cut_off_at_its_token_limit_is_not_used(runtime_for, tmp_path) -> None:
    long_revision = POST + " " + POST  # twice the post: it cannot fit the revision's budget
    with OpenAIServer(reply_text=replies(long_revision), honour_max_tokens=True) as fake:
        result, _, runtime = await run_turn(fake, runtime_for, tmp_path)
    assert result.agent == "writer" and result.text == POST.strip()
    assert any("cut off at max_tokens" in s for s in result.route)
    utility = rows(runtime)[1]
    assert "cut off" in utility["error"]


def test_what_each_hand_off_is_for(tmp_path) -> None:
    config = fake_config("http://127.0.0.1:9", tmp_path)
    assert handoff_purpose(config, "utility") is HandoffPurpose.REVISE
    assert handoff_purpose(config, "writer") is HandoffPurpose.BUILD_ON
    build = handoff_request(HandoffPurpose.BUILD_ON, request="r", source="research", output="notes",
                            output_tokens=100, max_tokens=50)
    assert build.max_tokens == 50  # building on an answer is the agent's own answer: its own budget
    assert rejection(HandoffPurpose.BUILD_ON, "long " * 100, "short", truncated=False) is None
    assert rejection(HandoffPurpose.REVISE, "long " * 100, "short", truncated=False) is not None
    assert rejection(HandoffPurpose.BUILD_ON, "x", "   ", truncated=False) == "its answer was empty"
