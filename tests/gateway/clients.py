"""Shared by the client-library tests: backends whose first model answers JSON when (and only when) it is
sent a JSON schema, so a library's structured output works only if the gateway passed the schema on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import AnthropicServer, OllamaServer, OpenAIServer
from tests.gateway.conftest import ANTHROPIC_KEY

CITY = {"city": "Paris"}
TEXT = "Hello from fast."


def _reply(body: dict[str, Any]) -> str:
    """What a model constrained to the schema would say; plain text when it was sent none."""
    fmt = body.get("response_format") or {}
    return json.dumps(CITY) if fmt.get("type") == "json_schema" and fmt["json_schema"].get("schema") else TEXT


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[OpenAIServer, OllamaServer, AnthropicServer]]:
    with OpenAIServer(reply_text=_reply, tool_arguments=CITY) as oa, \
            OllamaServer(reply_text="Hello from backup.", tool_arguments={"city": "Oslo"}) as ol, \
            AnthropicServer(api_key=ANTHROPIC_KEY, reply_text="Hello from cloud.") as an:
        yield oa, ol, an


def logged(tmp_path: Path) -> list[tuple[str, str, str]]:
    """The routing log's rows (agent, model, outcome), read right after an answer: committed before its end."""
    with sqlite3.connect(tmp_path / "log.db") as db:
        return db.execute("SELECT agent, model, outcome FROM requests ORDER BY rowid").fetchall()
