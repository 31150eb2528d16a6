"""The agent loop with an MCP server whose tool list changes mid-turn (notifications/tools/list_changed)."""

from __future__ import annotations

import sys
from pathlib import Path

from modelyard.agents.turn import handle_turn
from modelyard.types import Message
from tests.agents.conftest import fake_config
from tests.fakes import OpenAIServer

FAULTY = Path(__file__).parents[1] / "reliability" / "mcp_faulty_server.py"


async def test_the_next_model_step_is_offered_the_tool_list_as_the_server_changed_it(runtime_for,
                                                                                      tmp_path: Path) -> None:
    agents = {"engineer": {"tools": {"mcp": [{"command": sys.executable, "args": [str(FAULTY), "changing"]}]}}}
    with OpenAIServer(reply_text="Grown.") as fake:  # the fake calls the first tool offered: `grow`
        runtime = runtime_for(fake_config(fake.url, tmp_path, agents=agents))
        result = await handle_turn(runtime, [Message("user", "grow")], agent="engineer")
        bodies = [r.json for r in fake.requests_to("/v1/chat/completions")]
    assert result.text == "Grown." and result.route[0] == "engineer: grow ok"
    first = {t["function"]["name"] for t in bodies[0]["tools"]}
    second = {t["function"]["name"] for t in bodies[1]["tools"]}
    assert "secret" in first and "extra" not in first
    assert "extra" in second and "secret" not in second  # was: the list of the turn's start, every step
