"""The agent loop against the fake OpenAI server: structured calls, the tool-calling trap, repairs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelyard.agents.loop import MAX_CALLS_PER_STEP
from modelyard.agents.tool_text import find_text_calls
from modelyard.agents.turn import handle_turn
from modelyard.types import Message
from tests.agents.conftest import fake_config
from tests.fakes import Fault, OpenAIServer


def engineer_with_files(workspace: Path, **tools: Any) -> dict[str, dict[str, Any]]:
    return {"engineer": {"tools": {"workspace": str(workspace), "files": "read", **tools}}}


def setup_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("the answer is 42")
    return ws


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


async def test_structured_tool_call_runs_and_result_goes_back(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}, reply_text="It says 42.") as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer_with_files(ws)))
        seen: list[str] = []

        async def on_text(text: str) -> None:
            seen.append(text)

        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer", on_text=on_text)
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert result.text == "It says 42." and seen == ["It says 42."]
    assert result.route == ["engineer: read_file ok", "engineer → fake"]
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["read_file", "list_files"]
    assert tool_messages(bodies[1])[0]["content"] == "the answer is 42"
    assert bodies[1]["messages"][-2]["tool_calls"][0]["function"]["name"] == "read_file"


async def test_text_written_call_is_turned_into_a_real_call_when_configured(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}, reply_text="Done: 42.") as fake:
        fake.push(Fault.tool_call_as_text())
        config = fake_config(fake.url, tmp_path, agents=engineer_with_files(ws))
        config = config.model_copy(update={"models": {
            **config.models, "fake": config.models["fake"].model_copy(update={"tool_text_fallback": True})}})
        runtime = runtime_for(config)
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert result.route[0] == "engineer: read_file (from text) ok"
    assert result.text == "Done: 42."
    assert tool_messages(bodies[1])[0]["content"] == "the answer is 42"


async def test_text_written_call_without_fallback_moves_to_the_next_model(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}, reply_text="Read it.") as fake:
        fake.push(Fault.tool_call_as_text())  # the primary falls into the trap; the backup calls properly
        agents = engineer_with_files(ws)
        agents["engineer"]["fallbacks"] = ["backup"]
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=agents))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
        models = [r.json["model"] for r in fake.requests_to("/v1/chat/completions")]
    assert models[:2] == ["qwen2.5-fake", "backup-model"]
    assert result.route[0] == "engineer: read_file ok"
    runtime.log.flush()
    conn = sqlite3.connect(runtime.log_path)
    attempts = conn.execute("SELECT model, outcome, reason, detail FROM attempts ORDER BY ts, seq").fetchall()
    assert attempts[0][:3] == ("fake", "fallback", "unusable_reply")
    assert "written as plain text" in attempts[0][3] and "tool_text_fallback is off" in attempts[0][3]
    assert attempts[1][:2] == ("backup", "ok")


async def test_malformed_arguments_get_one_repair_then_the_loop_stops(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(tool_arguments={"file": "notes.txt"}) as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer_with_files(ws)))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    repair = tool_messages(bodies[1])[0]["content"]
    assert "invalid arguments for 'read_file': 'path' is a required property" in repair
    assert "Call the tool again" in repair
    assert result.route[0] == "engineer: read_file error"
    assert len(bodies) == 2  # the repair round-trip; the fake then answers in text


async def test_second_malformed_call_after_the_repair_fails_clearly(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(tool_arguments={"file": "notes.txt"}) as fake:
        fake.set_default(Fault.tool_call_as_text())  # keeps writing the same bad call
        config = fake_config(fake.url, tmp_path, agents=engineer_with_files(ws))
        config = config.model_copy(update={"models": {
            **config.models, "fake": config.models["fake"].model_copy(update={"tool_text_fallback": True})}})
        result = await handle_turn(runtime_for(config), [Message("user", "read notes.txt")], agent="engineer")
        requests = len(fake.requests_to("/v1/chat/completions"))
    assert requests == 2
    assert result.text.startswith("I could not finish this: the model sent unusable tool arguments again after one "
                                  "repair (invalid arguments for 'read_file'")


async def test_step_limit_ends_the_loop_with_a_message(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(tool_arguments={"path": "notes.txt"}) as fake:
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer_with_files(ws, max_steps=1)))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
    assert result.text == "I could not finish this within 1 tool steps (tools.max_steps)."


def test_text_call_formats() -> None:
    fenced = find_text_calls('Sure!\n```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```')
    assert [(c.name, c.arguments) for c in fenced] == [("read_file", {"path": "a"})]
    tagged = find_text_calls('<tool_call>\n{"name": "ls", "arguments": "{\\"path\\": \\".\\"}"}\n</tool_call>')
    assert [(c.name, c.arguments) for c in tagged] == [("ls", {"path": "."})]
    cut = find_text_calls('<tool_call>{"name": "ls", "arguments": {"path": "."}}')
    assert [(c.name, c.error) for c in cut] == [("ls", "")]
    broken = find_text_calls('```json\n{"name": "ls", "arguments": {"path": }}\n```')
    assert broken[0].name == "ls" and "not valid JSON" in broken[0].error
    assert find_text_calls("Here is some code: `x = {1: 2}`") == []
    assert find_text_calls('```json\n{"name": "Bob", "age": 3}\n```') == []  # JSON, but not a call


def test_text_call_with_an_integer_json_cannot_hold_is_a_broken_call_not_a_crash() -> None:
    """``json.loads`` refuses integers over 4300 digits with a plain ValueError (no ``.msg``): a model
    writing one in a tool call gets the repair round-trip like any other bad JSON."""
    huge = "9" * 5000
    broken = find_text_calls(f'<tool_call>{{"name": "ls", "arguments": {{"depth": {huge}}}}}</tool_call>')
    assert broken[0].name == "ls" and "not valid JSON" in broken[0].error and "4300" in broken[0].error
    inner = find_text_calls(f'<tool_call>{{"name": "ls", "arguments": "{{\\"depth\\": {huge}}}"}}</tool_call>')
    assert inner[0].name == "ls" and "4300" in inner[0].error


async def test_dozens_of_calls_in_one_reply_run_a_bounded_number_and_every_call_is_answered(
        runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    calls = [{"id": f"call_{i}", "type": "function",
              "function": {"name": "read_file", "arguments": json.dumps({"path": "notes.txt"})}} for i in range(40)]
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    with OpenAIServer(reply_text="Done.") as fake:
        fake.push(Fault.raw(200, json.dumps(body), headers={"content-type": "application/json"}))
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer_with_files(ws)))
        result = await handle_turn(runtime, [Message("user", "read notes.txt many times")], agent="engineer")
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    results = tool_messages(bodies[1])
    assert len(results) == 40  # every call answered, as the APIs require
    assert [m["content"] for m in results[:MAX_CALLS_PER_STEP]] == ["the answer is 42"] * MAX_CALLS_PER_STEP
    assert all(m["content"].startswith("error: not run") for m in results[MAX_CALLS_PER_STEP:])
    assert result.text == "Done."
    assert f"engineer: {40 - MAX_CALLS_PER_STEP} more tool calls not run (at most {MAX_CALLS_PER_STEP} per step)" \
        in result.route


def _one_call(arguments: str) -> Fault:
    """A whole chat.completion whose one tool call carries ``arguments`` exactly as the model wrote them."""
    call = {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": arguments}}
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    return Fault.raw(200, json.dumps(body), headers={"content-type": "application/json"})


@pytest.mark.parametrize("broken", ['{"path": "notes', '{"path": "notes.txt"} I will now read it.',
                                    "{'path': 'notes.txt'}", '["notes.txt"]'],
                         ids=["cut_off", "trailing_prose", "single_quotes", "not_an_object"])
async def test_arguments_that_are_no_json_object_get_a_repair_with_one_model(
        runtime_for, tmp_path: Path, broken: str) -> None:
    """A small local model's broken arguments were malformed_response: with one model in the chain (the default
    config) the person got "no model could answer". Now the model is told and calls again."""
    ws = setup_workspace(tmp_path)
    with OpenAIServer(reply_text="It says 42.") as fake:
        fake.push(_one_call(broken), _one_call('{"path": "notes.txt"}'))
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer_with_files(ws)))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert len(bodies) == 3 and {b["model"] for b in bodies} == {"qwen2.5-fake"}
    repair = tool_messages(bodies[1])[0]["content"]
    assert "could not read the call to 'read_file': arguments were " in repair
    assert "call the tool again with a JSON object" in repair
    sent_back = bodies[1]["messages"][-2]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent_back) == {"INVALID_JSON": broken}  # valid JSON for any server; the model sees its text
    assert tool_messages(bodies[2])[1]["content"] == "the answer is 42"
    assert result.text == "It says 42."
    assert result.route[:2] == ["engineer: read_file error", "engineer: read_file ok"]
    runtime.log.flush()
    conn = sqlite3.connect(runtime.log_path)
    attempts = conn.execute("SELECT model, outcome, detail FROM attempts ORDER BY ts, seq").fetchall()
    assert attempts[0][:2] == ("fake", "ok")
    assert attempts[0][2].startswith("tool call 'read_file' arguments invalid: ")
    assert "notes" not in attempts[0][2]  # the parser's word, never the arguments


async def test_broken_arguments_twice_end_the_loop_after_one_repair(runtime_for, tmp_path: Path) -> None:
    ws = setup_workspace(tmp_path)
    with OpenAIServer(reply_text="never") as fake:
        fake.set_default(_one_call('{"path": '))
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=engineer_with_files(ws)))
        result = await handle_turn(runtime, [Message("user", "read notes.txt")], agent="engineer")
        requests = len(fake.requests_to("/v1/chat/completions"))
    assert requests == 2
    assert result.text.startswith("I could not finish this: the model sent unusable tool arguments again after one "
                                  "repair (could not read the call to 'read_file': arguments were not valid JSON")
