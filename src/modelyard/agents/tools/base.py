"""What every tool is, and the toolbox that runs them with every failure turned into a message.

A tool failing must not end the turn: the model gets a clear message (unknown tool, bad
arguments, refused path, non-zero exit...) and can try something else. Each failure is also
logged (``modelyard.agents.tools`` logger), arguments redacted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from modelyard.errors import redact
from modelyard.types import ToolCall, ToolDefinition

log = logging.getLogger("modelyard.agents.tools")

Handler = Callable[[dict[str, Any]], Awaitable[str]]


class ToolError(Exception):
    """A refusal or failure whose message is meant for the model."""


@dataclass(slots=True)
class Tool:
    definition: ToolDefinition
    run: Handler

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(slots=True)
class ToolOutcome:
    name: str
    ok: bool
    text: str
    #: arguments did not fit the tool's schema (the loop gives the model one repair round-trip)
    bad_arguments: bool = False


def schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or [],
            "additionalProperties": False}


def cap(text: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, saying so when something was cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore") + f"\n[output truncated at {limit} bytes of {len(data)}]"


class Toolbox:
    def __init__(self, tools: list[Tool] | None = None, *, output_limit: int = 16_000, agent: str = ""):
        self.tools: dict[str, Tool] = {}
        self.output_limit = output_limit
        self.agent = agent
        #: called before each model step: tool sources whose list may change (MCP's tools/list_changed)
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self.tools:
            raise ValueError(f"two tools are named '{tool.name}'")
        self.tools[tool.name] = tool

    def put(self, tool: Tool) -> None:
        """Add or replace (a source's own tool whose description or schema changed)."""
        self.tools[tool.name] = tool

    def remove(self, name: str) -> None:
        self.tools.pop(name, None)

    async def refresh(self) -> None:
        """Bring every changing source's tools up to date (before the model is shown them)."""
        for refresh in self.refreshers:
            await refresh()

    def __bool__(self) -> bool:
        return bool(self.tools)

    def definitions(self) -> list[ToolDefinition]:
        return [t.definition for t in self.tools.values()]

    def check(self, name: str, arguments: Any) -> str | None:
        """Why these arguments do not fit the tool's schema, or None."""
        tool = self.tools.get(name)
        if tool is None:
            return None
        if not isinstance(arguments, dict):
            return "arguments must be a JSON object"
        try:
            errors = sorted(Draft202012Validator(tool.definition.parameters).iter_errors(arguments), key=str)
        except Exception as exc:  # a $ref that resolves nowhere (an MCP server's schema): the tool checks its own
            log.warning("agent %s: tool %s's schema cannot be checked (%s); arguments passed on unchecked",
                        self.agent, name, type(exc).__name__)
            return None
        if not errors:
            return None
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        return f"{where + ': ' if where else ''}{first.message}"

    async def call(self, call: ToolCall) -> ToolOutcome:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return self._failed(call, f"unknown tool '{call.name}'. Available tools: {known}")
        problem = self.check(call.name, call.arguments)
        if problem:
            outcome = self._failed(call, f"invalid arguments for '{call.name}': {problem}")
            outcome.bad_arguments = True
            return outcome
        try:
            text = await tool.run(call.arguments)
        except ToolError as exc:
            return self._failed(call, f"{call.name}: {exc}")
        except Exception as exc:
            log.exception("tool %s raised", call.name)
            return self._failed(call, f"tool '{call.name}' failed: {type(exc).__name__}: {exc}")
        log.info("agent %s: tool %s ok", self.agent, call.name)
        # tools cap their own content at output_limit; this bounds headers and notes around it too
        return ToolOutcome(call.name, True, cap(text, self.output_limit + 1024))

    def _failed(self, call: ToolCall, message: str) -> ToolOutcome:
        args = redact(json.dumps(call.arguments, default=str))[:300]
        log.warning("agent %s: tool call %s(%s) refused: %s", self.agent, call.name, args, message)
        return ToolOutcome(call.name, False, "error: " + cap(message, self.output_limit))
