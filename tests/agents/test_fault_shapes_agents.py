"""Issue 8's shapes through the agent layer: the tool loop and the streamed turn pipeline.

Provider data of any shape ends in an answer (repaired where it can be) or in a fallback / a clear
ChainExhausted — never a TypeError inside the loop, never an empty answer passed off as done.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelyard.agents.turn import handle_turn
from modelyard.router import ChainExhausted
from modelyard.types import Message
from tests.agents.conftest import fake_config
from tests.fakes import Fault, OpenAIServer


def engineer(workspace: Path, *, fallbacks: list[str] | None = None) -> dict[str, dict[str, Any]]:
    return {"engineer": {"tools": {"workspace": str(workspace), "files": "read"}, "fallbacks": fallbacks or []}}


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("the answer is 42")
    return ws


def attempts(runtime) -> list[tuple[str, str, str | None]]:
    runtime.log.flush()
    conn = sqlite3.connect(runtime.log_path)
    try:
        return [tuple(r) for r in conn.execute("SELECT model, outcome, reason FROM attempts ORDER BY ts, seq")]
    finally:
        conn.close()


async def test_tool_loop_falls_back_past_a_step_with_no_choices(runtime_for, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}, reply_text="It says 42.") as fake:
        fake.push(Fault.shape("no_choices", "empty"))  # the first step's answer is empty: not a "done"
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer(ws, fallbacks=["backup"])))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
    assert result.text == "It says 42." and result.route[0] == "engineer: read_file ok"
    assert attempts(runtime)[:2] == [("fake", "fallback", "malformed_response"), ("backup", "ok", None)]


async def test_tool_loop_final_answer_in_content_parts_is_read(runtime_for, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}, reply_text="It says 42.") as fake:
        fake.push(Fault.ok(), Fault.shape("content_parts", "text"))  # step 1: the call; step 2: parts
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer(ws)))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
    assert result.text == "It says 42." and result.model == "fake"


async def test_tool_loop_with_every_answer_unusable_is_a_clear_error(runtime_for, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}) as fake:
        fake.set_default(Fault.shape("content_parts", "image"))
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer(ws, fallbacks=["backup"])))
        with pytest.raises(ChainExhausted) as info:
            await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
    assert [a.reason for a in info.value.record.attempts] == ["malformed_response", "malformed_response"]


async def test_streamed_turn_shows_a_split_emoji_whole(runtime_for, server: OpenAIServer, tmp_path: Path) -> None:
    server.push(Fault.shape("split_surrogate"))
    runtime = runtime_for(fake_config(server.url, tmp_path))
    shown: list[str] = []

    async def on_text(text: str) -> None:
        shown.append(text)
        text.encode("utf-8")  # what Telegram or a terminal does with it: must not raise

    result = await handle_turn(runtime, [Message("user", "hello")], agent="chat", on_text=on_text)
    assert result.text.endswith("\U0001f600") and shown[-1].endswith("\U0001f600")
    conn = sqlite3.connect(runtime.log_path)
    runtime.log.flush()
    assert conn.execute("SELECT response FROM requests WHERE id = ?", (result.request_id,)).fetchone()[0] \
        .endswith("\U0001f600")
    conn.close()


async def test_streamed_turn_with_no_choices_is_chain_exhausted_not_an_empty_answer(runtime_for, server, tmp_path):
    server.push(Fault.shape("no_choices", "missing"))
    runtime = runtime_for(fake_config(server.url, tmp_path))
    with pytest.raises(ChainExhausted) as info:
        await handle_turn(runtime, [Message("user", "hello")], agent="chat")
    assert info.value.record.attempts[0].reason == "malformed_response"
