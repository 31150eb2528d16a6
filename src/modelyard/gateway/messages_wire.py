"""Anthropic Messages API wire format (``POST /v1/messages``): a request body in, a provider-neutral
:class:`ChatRequest` out; an answer out as a ``message`` object or as its documented SSE events.

So that clients built on Anthropic's API — its SDKs, Claude Code (``ANTHROPIC_BASE_URL``), agent
frameworks — can use modelyard's chains, slots and log without changing their code: ``model`` names
an agent, a configured model or ``auto``, exactly as on ``/v1/chat/completions``. What it maps, and
what it refuses with a 400 naming the field:

- ``system`` (a string or text blocks), ``messages`` (``user``, ``assistant``, and ``system`` mid-conversation,
  as Claude Code sends them) whose content is a string or blocks: ``text``,
  ``tool_use`` (assistant), ``tool_result`` (user; its content a string or text blocks), plain-text ``document``
  blocks (user; read as their text); ``thinking`` and ``redacted_thinking`` blocks are skipped (another model's
  reasoning is never passed on); images, PDF/URL/file documents and other blocks are refused.
- ``max_tokens`` (required, as by Anthropic), ``temperature`` (older clients), ``top_p`` and ``top_k`` (passed on
  where the backend takes them), ``output_config.format``
  (a JSON schema the answer must follow, constrained where the provider can; ``output_format``, its beta name,
  too), custom ``tools`` (``input_schema``),
  ``tool_choice`` (``none`` withholds the tools; ``tool`` offers only the named one, 400 if not given;
  ``any`` with no tools is a 400; a call is not forced — a local model cannot be), ``thinking``
  (enabled/disabled, ``budget_tokens``).
  ``stop_sequences``: the text is cut at the first of them here (``stops.py``; ``stop_reason:
  "stop_sequence"`` and ``stop_sequence``, the one met); no provider is sent them (a local server that stopped at one
  does not say which), and the router closes the model's stream as soon as the text reaches one
  (ChatRequest.cut_at, router/stop_watch.py). Server tools (``web_search_…``) and the MCP connector
  (``mcp_servers``) are refused.

Thinking is not returned (it stays in the routing log), as on the other endpoints. Errors have
Anthropic's shape (``{"type": "error", "error": {"type", "message"}}``) with modelyard's extras.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from modelyard.gateway.responses import error_extras, json_response, reshaped_error
from modelyard.gateway.wire import (
    MAX_MESSAGES,
    MAX_TOOLS,
    BadRequest,
    StopList,
    bad_body,
    chosen_tools,
    thinking_budget,
)
from modelyard.types import (
    MAX_ARGUMENT_DEPTH,
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    ToolDefinition,
    Usage,
    nesting_depth,
)

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
#: whose turn carries each block: the model's calls, the client's results
_TURN_OF = {"tool_use": "assistant", "tool_result": "user"}
#: Anthropic's error type for each status this gateway answers with; a request the client must mend (a method not
#: served, a body too slow, a head too large) is its ``invalid_request_error``, not the server's ``api_error``
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 408: "invalid_request_error",
                413: "request_too_large", 415: "invalid_request_error", 422: "invalid_request_error",
                429: "rate_limit_error", 431: "invalid_request_error", 503: "overloaded_error", 529: "overloaded_error"}


class MessagesBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_MESSAGES)
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = False  # null: the default
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)  # passed on where the backend takes it (ChatRequest.top_p)
    #: "Only sample from the top K options for each subsequent token" (the Messages API reference): passed on where
    #: the backend takes it (ChatRequest.top_k); was ignored, the model sampled from all of them
    top_k: int | None = Field(None, ge=0, le=2**63 - 1)  # past int64: a 400 naming it
    tools: list[dict[str, Any]] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    stop_sequences: StopList = None
    output_config: dict[str, Any] | None = None
    #: the same format under its beta name (``anthropic-beta: structured-outputs-2025-11-13``, before it became
    #: ``output_config.format``): code written against the beta sends it, and was answered unconstrained
    output_format: dict[str, Any] | None = None
    #: Anthropic's MCP connector (``mcp_servers``, beta mcp-client-2025-04-04): remote tool servers its API calls
    #: itself — refused by name (to_chat_request); ignored, the model answered without those tools
    mcp_servers: list[Any] | None = None


class CountTokensBody(BaseModel):
    """``POST /v1/messages/count_tokens``: the same fields but no ``max_tokens``."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_MESSAGES)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    stop_sequences: StopList = None
    max_tokens: int = 1
    temperature: float | None = None
    stream: bool | None = False  # null: the default


def parse_messages_body(raw: bytes) -> MessagesBody:
    try:
        body = MessagesBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    return body


def parse_count_body(raw: bytes) -> MessagesBody:
    try:
        counted = CountTokensBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    # counting needs no answer budget: whatever max_tokens said (Claude Code sends none), one is enough here
    return MessagesBody.model_validate({**counted.model_dump(), "max_tokens": 1, "temperature": None})


# -- requests --------------------------------------------------------------------------------


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise BadRequest(f"{where}: expected a string or a non-empty list of content blocks", where)
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise BadRequest(f"{where}[{j}]: expected a content block with a 'type'", f"{where}[{j}]")
    return content


def _text(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise BadRequest(f"{where}.text: expected a string", f"{where}.text")
    return text


def _unsupported(kind: str, where: str) -> BadRequest:
    return BadRequest(f"{where}.type: {kind!r} blocks are not supported here (text, tool_use, tool_result)",
                      f"{where}.type")


def _tool_result_text(block: dict[str, Any], where: str) -> str:
    """A tool result's text. Its ``content`` is optional and may be an empty list (anthropic-sdk-python
    ``types/tool_result_block_param.py``: not ``Required``, ``Union[str, Iterable[Content]]``): a tool that printed
    nothing — both are an empty result, as a missing one was already."""
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    if content == []:  # was "expected a string or a non-empty list of content blocks"
        return ""
    parts = []
    for j, part in enumerate(_blocks(content, f"{where}.content")):
        if part["type"] != "text":
            raise _unsupported(part["type"], f"{where}.content[{j}]")
        parts.append(_text(part, f"{where}.content[{j}]"))
    return "".join(parts)


def _document_text(block: dict[str, Any], where: str) -> str:
    """A plain-text document as the text it carries, its title and context first. The AI SDK's Anthropic provider
    sends a text/plain file so (vercel/ai packages/anthropic/src/convert-to-anthropic-messages-prompt.ts: ``source:
    {type: "text", media_type: "text/plain", data}``, ``title``: the file's name); a ``content`` source holds text
    blocks. PDFs, URLs and uploaded files are refused: nothing here reads them."""
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        body = source["data"]
    elif kind == "content" and isinstance(source, dict):
        content = source.get("content")
        body = content if isinstance(content, str) else "".join(
            _text(b, f"{where}.source.content[{j}]") for j, b in enumerate(_blocks(content, f"{where}.source.content")))
    else:
        raise BadRequest(f"{where}.source: only plain-text documents are read here (source type 'text' or 'content', "
                         f"got {kind!r}): a PDF, a URL or an uploaded file is not supported", f"{where}.source")
    heading = [part for part in (block.get("title"), block.get("context")) if isinstance(part, str) and part]
    return "\n\n".join([*heading, body])


def _tool_input(block: dict[str, Any], where: str) -> dict[str, Any]:
    value = block.get("input", {})
    if not isinstance(value, dict):
        raise BadRequest(f"{where}.input: expected an object", f"{where}.input")
    if nesting_depth(value) > MAX_ARGUMENT_DEPTH:
        raise BadRequest(f"{where}.input nests deeper than {MAX_ARGUMENT_DEPTH} levels", f"{where}.input")
    return value


def _system_text(block: dict[str, Any], where: str) -> str:
    """A ``system`` block's text: the API takes text blocks only there (MessageCreateParams.system: ``str |
    Iterable[TextBlockParam]``); an image block was told "system[0].text: expected a string"."""
    if block["type"] != "text":
        raise BadRequest(f"{where}.type: the system prompt takes text blocks only (got {block['type']!r:.60})",
                         f"{where}.type")
    return _text(block, where)


def _messages(body: MessagesBody) -> list[Message]:
    out: list[Message] = []
    if body.system:
        system = body.system if isinstance(body.system, str) else "".join(
            _system_text(b, f"system[{j}]") for j, b in enumerate(_blocks(body.system, "system")))
        out.append(Message("system", system))
    names: dict[str, str] = {}
    answerable: set[str] = set()  # the tool_use ids of the message before: the only ones a tool_result may answer
    for i, item in enumerate(body.messages):
        where = f"messages[{i}]"
        role = item.get("role")
        if role not in ("user", "assistant", "system"):
            raise BadRequest(f"{where}.role: expected 'user', 'assistant' or 'system' (got {role!r})", f"{where}.role")
        if "content" not in item:
            raise BadRequest(f"{where}.content: required", f"{where}.content")
        if role == "system":  # a system message mid-conversation (Claude Code sends them, a 2026 beta)
            out.append(Message("system", "".join(_system_text(b, f"{where}.content[{j}]")  # an image: refused, not lost
                                                 for j, b in enumerate(_blocks(item["content"], f"{where}.content")))))
            continue
        text: list[str] = []
        calls: list[ToolCall] = []
        prior = ""
        for j, block in enumerate(_blocks(item["content"], f"{where}.content")):
            at, kind = f"{where}.content[{j}]", block["type"]
            apart = "\n\n" if text and "document" in (kind, prior) else ""  # a document apart from the text around
            prior = kind
            if kind == "text":
                text.append(apart + _text(block, at))
            elif kind == "document" and role == "user":  # was "'document' blocks are not supported here"
                text.append(apart + _document_text(block, at))
            elif kind == "tool_use" and role == "assistant":
                name, call_id = block.get("name"), block.get("id")
                if not isinstance(name, str) or not isinstance(call_id, str) or not call_id:
                    raise BadRequest(f"{at}: a tool_use block needs 'id' and 'name'", at)
                calls.append(ToolCall(name, _tool_input(block, at), call_id))
                names[call_id] = name
            elif kind == "tool_result" and role == "user":
                call_id = block.get("tool_use_id")
                if not isinstance(call_id, str) or not call_id:
                    raise BadRequest(f"{at}.tool_use_id: required", f"{at}.tool_use_id")
                if call_id not in answerable:
                    # Anthropic's 400 (invalid_request_error: "unexpected `tool_use_id` found in `tool_result`
                    # blocks"). Was passed on: a result of no call the model made, which an OpenAI-compatible backend
                    # refuses in words of its own or a model reads as a call it never made
                    raise BadRequest(f"{at}.tool_use_id: unexpected tool_use_id {call_id!r:.80} in a tool_result "
                                     "block: each tool_result must answer a tool_use block of the previous message",
                                     f"{at}.tool_use_id")
                result = _tool_result_text(block, at)
                if block.get("is_error"):
                    result = f"Error: {result}"
                out.append(Message("tool", result, tool_call_id=call_id, name=names.get(call_id, "")))
            elif kind in _SKIPPED_BLOCKS:
                continue
            elif kind in _TURN_OF:  # was "'tool_use' blocks are not supported here (text, tool_use, tool_result)"
                raise BadRequest(f"{at}.type: a {kind} block belongs in an '{_TURN_OF[kind]}' message, "
                                 f"not a '{role}' one", f"{at}.type")
            else:
                raise _unsupported(kind, at)
        if text or calls or role == "assistant":
            out.append(Message(role, "".join(text), calls))
        answerable = {call.id for call in calls if call.id}
    return out


#: the ``tool_choice`` and ``thinking`` types the Messages API takes (the anthropic SDK's ToolChoiceParam and
#: ThinkingConfigParam unions, anthropic-python 2.15.0: types/tool_choice_param.py, types/thinking_config_param.py)
TOOL_CHOICES = ("auto", "any", "tool", "none")
THINKING_TYPES = ("enabled", "disabled", "adaptive", "between_tools")


def _checked_choice(choice: dict[str, Any] | None) -> None:
    """A ``tool_choice`` of another type, or ``tool`` without the tool's ``name``, is a 400 naming the field, as
    Anthropic's API answers it: it was read as ``auto`` — or, ``tool`` without a name, as a demand for any tool."""
    if choice is None:
        return
    kind = choice.get("type")
    if kind not in TOOL_CHOICES:
        raise BadRequest(f"tool_choice.type: one of {', '.join(map(repr, TOOL_CHOICES))} (got {kind!r:.60})",
                         "tool_choice.type")
    if kind == "tool" and not isinstance(choice.get("name"), str):
        raise BadRequest("tool_choice.name: required with type 'tool' (the name of the tool to call)",
                         "tool_choice.name")


def _tools(body: MessagesBody) -> list[ToolDefinition]:
    _checked_choice(body.tool_choice)
    if (body.tool_choice or {}).get("type") == "none":
        return []
    out = []
    for i, tool in enumerate(body.tools or []):
        where = f"tools[{i}]"
        if tool.get("type", "custom") != "custom":
            raise BadRequest(f"{where}.type: only custom tools are supported (got {tool.get('type')!r})",
                             f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise BadRequest(f"{where}.name: 1-128 letters, digits, '_' or '-'", f"{where}.name")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"{where}.input_schema: required, a JSON schema object", f"{where}.input_schema")
        description = tool.get("description") or ""
        out.append(ToolDefinition(name, description if isinstance(description, str) else "", schema))
    if (body.tool_choice or {}).get("type") in ("any", "tool"):
        return chosen_tools(out, body.tool_choice or {}, "tool_choice")
    return out


def _thinking(body: MessagesBody) -> tuple[bool | None, int | None]:
    if body.thinking is None:
        return None, None
    kind = body.thinking.get("type")
    if kind not in THINKING_TYPES:  # was read as thinking on, whatever it said
        raise BadRequest(f"thinking.type: one of {', '.join(map(repr, THINKING_TYPES))} (got {kind!r:.60})",
                         "thinking.type")
    if kind == "disabled":
        return False, None
    return True, thinking_budget(body.thinking)


def _json_schema(body: MessagesBody) -> dict[str, Any] | None:
    fmt, param = (body.output_config or {}).get("format"), "output_config.format"
    if fmt is None:
        fmt, param = body.output_format, "output_format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise BadRequest(f"{param}: expected {{'type': 'json_schema', 'schema': {{...}}}}", param)
    return fmt["schema"]


def to_chat_request(body: MessagesBody) -> ChatRequest:
    if body.mcp_servers:
        raise BadRequest("mcp_servers: the MCP connector (tool servers the API calls itself) is not supported here; "
                         "connect the MCP servers in the client and send their tools as custom tools", "mcp_servers")
    thinking, budget = _thinking(body)
    schema = _json_schema(body)
    return ChatRequest(messages=_messages(body), tools=_tools(body), thinking=thinking, thinking_budget=budget,
                       max_tokens=body.max_tokens, temperature=body.temperature, json_output=schema is not None,
                       json_schema=schema, single_tool_call=(body.tool_choice or {}).get("disable_parallel_tool_use")
                       is True, top_p=body.top_p, top_k=body.top_k, cut_at=body.stop_sequences or None)


# -- answers ---------------------------------------------------------------------------------


def stop_reason(response: ChatResponse, stop_sequence: str | None = None) -> str:
    if response.tool_calls:
        return "tool_use"
    if stop_sequence is not None:  # the text was cut there (stops.py), whatever the model did after
        return "stop_sequence"
    if response.truncated:
        return "max_tokens"
    if response.stop_reason in ("refusal", "content_filter"):
        return "refusal"
    return "end_turn"


def _usage(usage: Usage) -> dict[str, Any]:
    """As the API counts: ``input_tokens`` is the part of the prompt that was not read from or written to a cache;
    the writes split by lifetime (``cache_creation``) where a one-hour cache was written."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    out: dict[str, Any] = {"input_tokens": max(0, usage.input_tokens - cached), "output_tokens": usage.output_tokens,
                           "cache_creation_input_tokens": usage.cache_write_tokens,
                           "cache_read_input_tokens": usage.cache_read_tokens}
    if hour := min(usage.cache_write_1h_tokens, usage.cache_write_tokens):
        out["cache_creation"] = {"ephemeral_5m_input_tokens": usage.cache_write_tokens - hour,
                                 "ephemeral_1h_input_tokens": hour}
    return out


def _call_id(call: ToolCall, request_id: str, index: int) -> str:
    return call.id if call.id.startswith("toolu_") else f"toolu_{request_id}_{index}"


class MessageWriter:
    """Renders one answer: the whole ``message`` object, or its SSE events in the documented order
    (message_start, ping, per block: content_block_start / _delta / _stop, message_delta, message_stop)."""

    def __init__(self, request_id: str, model: str):
        self.request_id = request_id
        self.id = f"msg_{request_id}"
        self.model = model
        self.block = 0  # index of the next content block
        self.text_open = False
        self.stop_sequence: str | None = None  # the client's stop sequence the text was cut at

    def content(self, response: ChatResponse) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if response.text or not response.tool_calls:
            blocks.append({"type": "text", "text": response.text})
        blocks += [{"type": "tool_use", "id": _call_id(c, self.request_id, i), "name": c.name,
                    "input": c.arguments_object()} for i, c in enumerate(response.tool_calls)]
        return blocks

    def whole(self, response: ChatResponse) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": self.content(response), "stop_reason": stop_reason(response, self.stop_sequence),
                "stop_sequence": self.stop_sequence,
                "usage": _usage(response.usage)}

    # -- events ----------------------------------------------------------------------------

    @staticmethod
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"

    def opening(self, input_tokens: int = 0) -> list[bytes]:
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": _usage(Usage(input_tokens, 0))}
        return [self.event("message_start", {"message": message}), self.event("ping", {})]

    def text_delta(self, text: str) -> list[bytes]:
        out = []
        if not self.text_open:
            self.text_open = True
            out.append(self.event("content_block_start",
                                  {"index": self.block, "content_block": {"type": "text", "text": ""}}))
        out.append(self.event("content_block_delta", {"index": self.block,
                                                      "delta": {"type": "text_delta", "text": text}}))
        return out

    def _close_text(self) -> list[bytes]:
        if not self.text_open:
            return []
        self.text_open = False
        self.block += 1
        return [self.event("content_block_stop", {"index": self.block - 1})]

    def tool_call(self, call: ToolCall, number: int) -> list[bytes]:
        out = self._close_text()
        index = self.block
        self.block += 1
        start = {"type": "tool_use", "id": _call_id(call, self.request_id, number), "name": call.name, "input": {}}
        return [*out, self.event("content_block_start", {"index": index, "content_block": start}),
                self.event("content_block_delta", {"index": index, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(call.arguments_object())}}),
                self.event("content_block_stop", {"index": index})]

    def closing(self, response: ChatResponse) -> list[bytes]:
        out = []
        if self.block == 0 and not self.text_open:  # nothing was said: an empty text block, as Anthropic sends
            out += self.text_delta("")
        out += self._close_text()
        out.append(self.event("message_delta", {
            "delta": {"stop_reason": stop_reason(response, self.stop_sequence), "stop_sequence": self.stop_sequence},
            "usage": _usage(response.usage)}))
        out.append(self.event("message_stop", {}))
        return out

    def replay(self, response: ChatResponse) -> list[bytes]:
        """A buffered answer as the events a live stream would have produced."""
        out = self.opening(response.usage.input_tokens)
        if response.text:
            out += self.text_delta(response.text)
        for i, call in enumerate(response.tool_calls):
            out += self.tool_call(call, i)
        return out + self.closing(response)


def error_event(message: str, kind: str = "api_error") -> bytes:
    return MessageWriter.event("error", {"error": {"type": kind, "message": message}})


def anthropic_error(response: Response) -> Response:
    """An error from the shared steps in Anthropic's shape, with modelyard's extras (attempts, retryable)."""
    return reshaped_error(response, lambda status, error: {"type": "error", "error": {
        "type": _ERROR_TYPES.get(status, "api_error"), "message": error.get("message", ""), **error_extras(error)}})


def error_response(status: int, message: str) -> Response:
    return json_response({"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"),
                                                     "message": message}}, status)
