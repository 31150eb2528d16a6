"""Recognise tool calls a model wrote as plain text instead of as structured calls.

Small local models often answer a tool request with *plausible* call syntax in their text:
a fenced ```json {"name": …, "arguments": {…}}``` block, or Qwen/Hermes
``<tool_call>{…}</tool_call>`` tags (sometimes with the closing tag cut off). Left alone, the
agent silently does nothing. This module finds such calls; the agent loop decides whether the
answering model may have them turned into real calls (``tool_text_fallback``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from modelyard.config.schema import Config
from modelyard.errors import json_problem
from modelyard.types import ChatResponse

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)
_FENCED = re.compile(r"```(?:json|tool_call|javascript)?\s*\n?(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(slots=True)
class TextCall:
    """A call found in text. ``error`` is set when the call is recognisable but its arguments are not
    a JSON object (that gets one repair round-trip)."""

    name: str
    arguments: dict[str, Any]
    error: str = ""


def _calls_in(value: Any) -> list[TextCall]:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("function"), dict):  # OpenAI-shaped {"type": "function", "function": {...}}
            item = item["function"]
        name = item.get("name")
        if not isinstance(name, str) or not name:
            continue
        key = "arguments" if "arguments" in item else "parameters" if "parameters" in item else None
        if key is None:
            continue
        raw = item[key]
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else {}
            except (ValueError, RecursionError) as exc:
                calls.append(TextCall(name, {}, f"arguments are not valid JSON ({json_problem(exc)})"))
                continue
        if not isinstance(raw, dict):
            calls.append(TextCall(name, {}, "arguments are not a JSON object"))
            continue
        calls.append(TextCall(name, raw))
    return calls


def _parse(block: str) -> list[TextCall] | None:
    """Calls in one candidate block; a block that looks like a call but does not parse counts too."""
    block = block.strip()
    if not block.startswith(("{", "[")):
        return None
    try:
        value = json.loads(block)
    except (ValueError, RecursionError) as exc:
        name = re.search(r'"name"\s*:\s*"([^"]+)"', block)
        if name and re.search(r'"(arguments|parameters)"\s*:', block):
            return [TextCall(name.group(1), {}, f"the call is not valid JSON ({json_problem(exc)})")]
        return None
    return _calls_in(value)


def find_text_calls(text: str) -> list[TextCall]:
    """Every tool call written in ``text`` (tagged, fenced, or the whole text as one JSON object)."""
    if not text or ("{" not in text):
        return []
    for pattern in (_TAGGED, _FENCED):
        found = [c for block in pattern.findall(text) for c in (_parse(block) or [])]
        if found:
            return found
    return _parse(text) or []


def text_call_problem(config: Config, answer: ChatResponse, offered: set[str] | None = None) -> str | None:
    """Why ``answer`` must not be accepted as-is: it writes a tool call as plain text and the answering
    model is not allowed ``tool_text_fallback``. ``offered`` limits the check to those tool names."""
    if answer.tool_calls:
        return None
    found = [c for c in find_text_calls(answer.text) if offered is None or c.name in offered]
    if not found:
        return None
    model = config.models.get(answer.model)
    if model is not None and model.tool_text_fallback:
        return None
    return (f"tool call to '{found[0].name}' written as plain text, not as a structured call "
            f"(tool_text_fallback is off for {answer.model})")
