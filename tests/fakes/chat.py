"""Scripted-answer logic shared by the LLM fakes (Ollama, OpenAI-compatible, Anthropic).

Each protocol only turns a `Plan` (thinking pieces, text pieces, optional tool call,
token counts) into its own wire format; what gets answered is decided once, here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp

from tests.fakes.faults import EMOJI, HIGH, INVALID_UTF8_MARK, LOW, Fault, FaultKind
from tests.fakes.playback import Playback, RawPlayback, Rendering, json_bytes
from tests.fakes.server import FakeServer, RecordedRequest

DEFAULT_REPLY = "Hello from the fake server."
DEFAULT_THINKING = "Let me think about this briefly."

ReplyText = str | Callable[[dict[str, Any]], str]


def nginx_page(status: int) -> str:
    """The page nginx serves for an error status (its upstream down, a body too large...)."""
    title = f"{status} {HTTPStatus(status).phrase}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n")


def split_pieces(text: str) -> list[str]:
    """Word-sized pieces with their leading whitespace, so "".join(pieces) == text."""
    return re.findall(r"\s*\S+|\s+$", text)


def shaped_pieces(reply: str, fault: Fault) -> list[str]:
    """The reply's pieces as the fault reshapes them (see tests/fakes/faults.py)."""
    kind = fault.kind
    if kind is FaultKind.SPLIT_SURROGATE:
        return [*split_pieces(reply), " " + HIGH, LOW]  # one emoji, its halves in two chunks
    if kind is FaultKind.LONE_SURROGATE:
        return [*split_pieces(reply), " " + HIGH]
    if kind is FaultKind.INVALID_UTF8:
        return [*split_pieces(reply), " " + INVALID_UTF8_MARK]
    if kind is FaultKind.HUGE_LINE:
        return ["a" * fault.size]
    if kind is FaultKind.HUGE_ANSWER:
        return ["a" * 1000] * max(fault.size // 1000, 1)
    return split_pieces(reply)


def expected_text(reply: str, fault: Fault) -> str:
    """What a client that repairs text (joins split pairs, U+FFFD for the rest) should end up with."""
    kind = fault.kind
    if kind is FaultKind.SPLIT_SURROGATE:
        return reply + " " + EMOJI
    if kind is FaultKind.LONE_SURROGATE:
        return reply + " \ufffd"
    if kind is FaultKind.INVALID_UTF8:
        return reply + " \ufffd\ufffd"
    return reply


#: the reasoning a ``content_parts:thinking`` answer carries in its first (Magistral-style) part
PART_THINKING = "Checking the question first."


def content_value(piece: str, fault: Fault, first: bool) -> Any:
    """A text piece as ``content`` under the fault: a plain string, or the ``content_parts`` forms."""
    if fault.kind is not FaultKind.CONTENT_PARTS:
        return piece
    part = {"type": "text", "text": piece}
    if not first:
        return [part]
    if fault.variant == "thinking":  # Mistral Magistral: {"type": "thinking", "thinking": [text parts]}
        return [{"type": "thinking", "thinking": [{"type": "text", "text": PART_THINKING}]}, part]
    if fault.variant == "image":
        return [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    if fault.variant == "number":
        return 42
    return [part]


def usage_values(fault: Fault, input_tokens: int, output_tokens: int) -> tuple[Any, Any]:
    """Token counts as sent: ints, or (``odd_usage``) null and a numeric string."""
    if fault.kind is FaultKind.ODD_USAGE:
        return None, str(output_tokens)
    return input_tokens, output_tokens


def split_fragments(text: str, size: int = 8) -> list[str]:
    """Fixed-size pieces of a string (tool-call argument fragments)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def count_words(value: Any) -> int:
    """Words in every string found under text-bearing keys of a messages structure."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    if isinstance(value, dict):
        return sum(count_words(value[k]) for k in ("content", "text", "thinking") if k in value)
    return 0


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass
class Plan:
    """What the fake will say, independent of the protocol."""

    thinking: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    tool_call: ToolCall | None = None
    input_tokens: int = 1
    #: the fault being played: protocols render the shape faults (content parts, no choices...) from it
    fault: Fault = field(default_factory=Fault)
    #: the text was cut at the request's token limit (one piece = one token): finish reason "length"
    cut: bool = False

    def limit(self, max_tokens: Any) -> Plan:
        """Cut the text at ``max_tokens`` pieces, as a real server stops at its limit."""
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens < len(self.text):
            self.text = self.text[:max_tokens]
            self.cut = True
        return self

    @property
    def tool_fragments(self) -> list[str]:
        return split_fragments(self.tool_call.arguments_json) if self.tool_call else []

    @property
    def output_tokens(self) -> int:
        return len(self.thinking) + len(self.text) + len(self.tool_fragments)

    @property
    def full_text(self) -> str:
        return "".join(self.text)

    @property
    def full_thinking(self) -> str:
        return "".join(self.thinking)


class ChatServer(FakeServer):
    """Common knobs of the LLM fakes: scripted reply, tool arguments, chunk pacing."""

    def __init__(
        self,
        *,
        reply_text: ReplyText = DEFAULT_REPLY,
        thinking_text: str = DEFAULT_THINKING,
        tool_arguments: dict[str, Any] | None = None,
        answer_tools: bool = True,
        tool_preamble: str = "",
        chunk_interval: float = 0.0,
    ) -> None:
        super().__init__()
        self.reply_text = reply_text
        self.thinking_text = thinking_text
        self.tool_arguments: dict[str, Any] = dict(tool_arguments or {})
        self.answer_tools = answer_tools
        self.tool_preamble = tool_preamble
        self.chunk_interval = chunk_interval

    # ----- protocol hooks --------------------------------------------------------------

    tool_call_prefix = "call_"

    def error_payload(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def error_headers(self) -> dict[str, str]:
        return {}

    midstream_status = 500

    def error_chunk(self, payload: dict[str, Any]) -> bytes:
        """The protocol's in-stream error frame for `payload`."""
        raise NotImplementedError

    # ----- shared flow -----------------------------------------------------------------

    def error_response(
        self,
        status: int,
        message: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        payload = self.error_payload(status, message, error_type)
        return JSONResponse(payload, status_code=status, headers={**self.error_headers(), **(headers or {})})

    def status_fault_response(self, fault: Fault) -> Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["retry-after"] = fault.retry_after
        if fault.variant == "html":  # a proxy in front of the server answered, with its own page
            return HTMLResponse(nginx_page(fault.code), status_code=fault.code, headers=headers)
        return self.error_response(fault.code, fault.message, fault.error_type, headers)

    def plan(
        self,
        body: dict[str, Any],
        fault: Fault,
        *,
        tools: Iterable[str],
        last_is_tool_result: bool,
        thinking: bool,
        input_tokens: int,
    ) -> Plan:
        """Decide the answer: tool call to the first tool, text, or a tool call written as text."""
        tool_names = list(tools)
        thinking_pieces = split_pieces(self.thinking_text) if thinking else []
        if fault.kind is FaultKind.TOOL_CALL_AS_TEXT:
            name = tool_names[0] if tool_names else "get_weather"
            arguments = self.tool_arguments or {"city": "Paris"}
            text = "```json\n" + json.dumps({"name": name, "arguments": arguments}) + "\n```"
            return Plan(thinking_pieces, split_pieces(text), None, input_tokens, fault)
        if tool_names and self.answer_tools and not last_is_tool_result:
            call = ToolCall(new_id(self.tool_call_prefix), tool_names[0], dict(self.tool_arguments))
            return Plan(thinking_pieces, split_pieces(self.tool_preamble), call, input_tokens, fault)
        reply = self.reply_text(body) if callable(self.reply_text) else self.reply_text
        return Plan(thinking_pieces, shaped_pieces(reply, fault), None, input_tokens, fault)

    def play(
        self,
        recorded: RecordedRequest,
        model: str | None,
        render: Callable[[Fault], Rendering],
    ) -> ASGIApp:
        """Pop the next fault, render the answer under it and play it, counting it in flight."""
        fault = self.faults.next()
        recorded.fault = fault
        app: ASGIApp
        if fault.kind is FaultKind.STATUS:
            app = self.status_fault_response(fault)
        elif fault.kind is FaultKind.RAW:
            app = RawPlayback(fault, self.stopping)
        else:
            rendering = render(fault)
            payload = self.error_payload(self.midstream_status, fault.message, fault.error_type)
            rendering.error_status = self.midstream_status
            rendering.error_body = json_bytes(payload)
            rendering.error_chunk = self.error_chunk(payload)
            app = Playback(rendering, fault, self.stopping, self.chunk_interval)
        return self.tracked(app, model)
