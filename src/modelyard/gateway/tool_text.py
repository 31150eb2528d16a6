"""The tool-calling trap at the HTTP edge.

A client that offers tools and gets back a tool call written as *plain text* (a fenced JSON
``{name, arguments}`` block, ``<tool_call>`` tags) sees a normal text answer, runs nothing and
silently does nothing. So, for requests with tools: a text-written call to one of the offered
tools from a model with ``tool_text_fallback: true`` becomes a real, structured call; from any
other model it is an unusable reply, and the router moves on to the next model in the chain
(logged as ``unusable_reply``), exactly as the agent loop does.
"""

from __future__ import annotations

from modelyard.agents.tool_text import TextCall, find_text_calls, text_call_problem
from modelyard.config.schema import Config
from modelyard.router.router import Accept
from modelyard.types import ChatRequest, ChatResponse, ToolCall


def _text_calls(request: ChatRequest, answer: ChatResponse) -> list[TextCall]:
    offered = {t.name for t in request.tools}
    return [c for c in find_text_calls(answer.text) if c.name in offered and not c.error]


def accept_for(config: Config, request: ChatRequest) -> Accept | None:
    """The router's acceptance check for ``request`` (None when it offers no tools)."""
    if not request.tools:
        return None

    offered = {t.name for t in request.tools}

    def accept(answer: ChatResponse) -> str | None:
        return text_call_problem(config, answer, offered)

    return accept


def promote_text_calls(request: ChatRequest, answer: ChatResponse) -> ChatResponse:
    """Turn text-written calls into structured ones (only ever reached for models allowed to)."""
    if not request.tools or answer.tool_calls:
        return answer
    found = _text_calls(request, answer)
    if found:
        answer.tool_calls = [ToolCall(c.name, c.arguments, "") for c in found]
        answer.text = ""
        answer.stop_reason = "tool_calls"
    return answer
