"""The tool-calling trap against the real embedded model (Qwen2.5-Coder-0.5B, in-process llama.cpp).

Asked to use a tool, this model writes the call as plain JSON text and never a structured call.
With ``tool_text_fallback: true`` the call must really run; without it, the reply must count as
unusable and the chain must move on (here to a fake OpenAI-compatible model that calls properly).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard.agents.orchestrator import Orchestrator
from modelyard.agents.turn import handle_turn
from modelyard.config import Config
from modelyard.paths import embedded_default_config
from modelyard.runtime import open_runtime
from modelyard.types import Message
from tests.fakes import OpenAIServer

pytestmark = pytest.mark.model
ASK = [Message("user", "Read the file notes.txt and tell me what it says.")]


def real_config(tmp_path: Path, *, fallback: bool, backup_url: str | None = None) -> Config:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("the answer is 42")
    data: dict[str, Any] = yaml.safe_load(embedded_default_config().read_text())
    data["log"] = {"path": str(tmp_path / "log.sqlite3")}
    data["models"]["qwen-coder-0.5b"]["tool_text_fallback"] = fallback
    engineer = data["agents"]["engineer"]
    engineer.update(max_tokens=48, tools={"workspace": str(ws), "files": "read", "max_steps": 1})
    if backup_url:
        data["models"]["backup"] = {"provider": "openai", "endpoint": backup_url, "model": "backup"}
        engineer["fallbacks"] = ["backup"]
    return Config.model_validate(data)


async def test_real_model_text_tool_call_becomes_a_real_call(tmp_path: Path, default_model: Path) -> None:
    runtime = open_runtime(config=real_config(tmp_path, fallback=True))
    try:
        result = await handle_turn(runtime, ASK, agent="engineer")
    finally:
        await runtime.aclose()
    assert result.route[0] == "engineer: read_file (from text) ok"
    assert result.model == "qwen-coder-0.5b"


async def test_real_model_text_tool_call_without_fallback_falls_back(tmp_path: Path, default_model: Path) -> None:
    with OpenAIServer(tool_arguments={"path": "notes.txt"}) as backup:
        runtime = open_runtime(config=real_config(tmp_path, fallback=False, backup_url=backup.url))
        try:
            result = await handle_turn(runtime, ASK, agent="engineer")
        finally:
            await runtime.aclose()
    assert result.route[0] == "engineer: read_file ok"  # the backup's structured call
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    first = conn.execute("SELECT model, outcome, reason, detail FROM attempts ORDER BY ts, seq").fetchone()
    assert first[:3] == ("qwen-coder-0.5b", "fallback", "unusable_reply")
    assert "written as plain text" in first[3]


async def test_real_model_slow_path_answers_inside_the_schema(tmp_path: Path, default_model: Path) -> None:
    """The 0.5B model, constrained by the JSON Schema (a llama.cpp grammar), names one of the
    classifier's candidates on the first try: no repair round-trip, no fall to the default agent."""
    data: dict[str, Any] = yaml.safe_load(embedded_default_config().read_text())
    data["log"] = {"path": str(tmp_path / "log.sqlite3")}
    data["orchestration"]["threshold"] = 1.0  # every decision goes to the model
    data["agents"]["orchestrator"]["max_tokens"] = 48
    runtime = open_runtime(config=Config.model_validate(data))
    orchestrator = Orchestrator.from_config(runtime.config)
    text = "Convert this CSV to JSON:\nname,age\nAnna,31\nBen,25"
    try:
        decision = await orchestrator.decide(runtime.router, text)
    finally:
        await runtime.aclose()
    assert decision.method == "model", decision.detail
    assert decision.agent in orchestrator.candidates(text)
