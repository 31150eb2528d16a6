"""OpenAI Responses API wire format (``POST /v1/responses``): a request body in, a provider-neutral
:class:`ChatRequest` out; an answer out as a ``response`` object or as its documented SSE events.

More and more clients default to this API (openai-agents does), so it is served on the same router
path as chat completions. What it maps, and what it refuses with a 400 naming the field:

- ``input``: a string (one user message) or a list of items — messages (``user``, ``system``,
  ``developer``, ``assistant``; content a string or text parts), ``function_call`` and
  ``function_call_output`` items; ``reasoning`` items are skipped (modelyard never returns thinking
  here: it stays in the routing log). Images, files, item references and hosted tools are refused.
- ``instructions`` (a system message first), ``max_output_tokens``, ``temperature``, ``tools``
  (function tools only), ``tool_choice`` (``none`` withholds the tools; a named function is the only one offered,
  ``required`` or a name not given a 400), ``text.format`` (JSON
  output; a ``json_schema`` format's schema is passed on, constrained where the provider can),
  ``reasoning.effort`` (thinking on/off).
- ``previous_response_id`` / ``conversation`` are refused: the gateway stores no responses, so the
  client sends the whole conversation (as openai-agents does by default); so is a stored ``prompt`` template.
  Log probabilities (``top_logprobs``, ``include`` of ``message.output_text.logprobs``) are refused, as on
  chat completions.

An answer cut at its token limit is ``status: "incomplete"`` with ``incomplete_details.reason:
"max_output_tokens"`` (and the stream ends with ``response.incomplete``).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from modelyard.gateway.wire import (
    MAX_MESSAGES,
    MAX_TOOLS,
    BadRequest,
    bad_body,
    chosen_tools,
    client_call,
    effort_thinking,
    no_logprobs,
)
from modelyard.types import ChatRequest, ChatResponse, Message, ToolCall, ToolDefinition, Usage

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
#: content part types that carry text, in input messages and function outputs
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})


# What the items accept, for /openapi.json: they are checked by hand below (for errors that name the field)
_TEXT = {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["type", "text"],
    "properties": {"type": {"enum": ["input_text", "output_text"]}, "text": {"type": "string"}}}}]}
_ITEMS = {"anyOf": [
    {"type": "object", "required": ["role", "content"], "properties": {
        "type": {"const": "message"}, "role": {"enum": ["user", "system", "developer", "assistant"]},
        "content": _TEXT}},
    {"type": "object", "required": ["type", "call_id", "name", "arguments"], "properties": {
        "type": {"const": "function_call"}, "call_id": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "arguments": {"type": "string", "contentMediaType": "application/json",
                      "contentSchema": {"type": "object"}, "description": "a JSON object, as a string"}}},
    {"type": "object", "required": ["type", "call_id", "output"], "properties": {
        "type": {"const": "function_call_output"}, "call_id": {"type": "string", "minLength": 1},
        "output": _TEXT}},
]}
_INPUT = {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": _ITEMS}]}
_TOOLS = {"type": "array", "items": {"type": "object", "required": ["type", "name"], "properties": {
    "type": {"const": "function"}, "name": {"type": "string", "pattern": _NAME.pattern},
    "description": {"type": "string"}, "parameters": {"type": "object"}, "strict": {"type": ["boolean", "null"]}}}}
_STATELESS = {"type": "null", "description": "not supported: this gateway stores no responses"}
#: what ``include`` names to ask for log probabilities (the API reference's "include" list)
LOGPROBS = "message.output_text.logprobs"
_NO_LOGPROBS = {"type": ["integer", "null"], "minimum": 0, "maximum": 0, "description": "log probabilities: not given"}
_INCLUDE = {"type": ["array", "null"], "items": {"type": "string", "not": {"const": LOGPROBS}}}


class ResponsesBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    input: Annotated[str | list[Any], WithJsonSchema(_INPUT)]
    instructions: str | None = None
    stream: bool | None = False  # null: the default
    tools: Annotated[list[dict[str, Any]] | None, WithJsonSchema(_TOOLS), Field(max_length=MAX_TOOLS)] = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None  # false: at most one function call in the output
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)  # passed on where the backend takes it (ChatRequest.top_p)
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    previous_response_id: Annotated[str | None, WithJsonSchema(_STATELESS)] = None
    conversation: Annotated[str | dict[str, Any] | None, WithJsonSchema(_STATELESS)] = None
    #: a prompt template stored on OpenAI's platform (``{"id": "pmpt_…", "variables": …}``; openai-agents'
    #: ``Agent(prompt=…)``): its instructions are there, not here
    prompt: Annotated[dict[str, Any] | str | None, WithJsonSchema(_STATELESS)] = None
    #: log probabilities are asked for by either (refused below, as chat completions refuses ``logprobs``)
    top_logprobs: Annotated[int | None, WithJsonSchema(_NO_LOGPROBS)] = None
    include: Annotated[list[Any] | None, WithJsonSchema(_INCLUDE)] = None


def parse_responses_body(raw: bytes) -> ResponsesBody:
    try:
        body = ResponsesBody.model_validate_json(raw)
    except ValidationError as exc:
        raise bad_body(exc) from None
    if isinstance(body.input, list) and len(body.input) > MAX_MESSAGES:  # what a messages list is held to (wire.py)
        raise BadRequest(f"input: at most {MAX_MESSAGES:,} items, not {len(body.input):,}", "input")
    for stateful in ("previous_response_id", "conversation"):
        if getattr(body, stateful):
            raise BadRequest(f"{stateful}: this gateway stores no responses; send the whole conversation in "
                             "'input' instead", stateful)
    if body.prompt:  # was ignored: the answer came without the stored prompt's instructions
        raise BadRequest("prompt: this gateway stores no prompt templates; send their text as 'instructions' (and "
                         "the conversation in 'input')", "prompt")
    if body.top_logprobs or LOGPROBS in (body.include or ()):  # was ignored: no logprobs in the answer, no word why
        raise no_logprobs("top_logprobs" if body.top_logprobs else "include", f"top_logprobs and '{LOGPROBS}'")
    return body


def _text_of(content: Any, where: str) -> str:
    """A message's or a function output's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise BadRequest(f"{where}: expected a string or a non-empty list of content parts", where)
    out = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in _TEXT_PARTS:  # a list or an object as the type was a 500
            raise BadRequest(f"{where}[{j}].type: only text content parts are supported (got {kind!r})",
                             f"{where}[{j}].type")
        text = part.get("text", part.get("refusal"))
        if not isinstance(text, str):
            raise BadRequest(f"{where}[{j}].text: expected a string", f"{where}[{j}].text")
        out.append(text)
    return "".join(out)


def _call(name: str, raw: Any, call_id: str, where: str) -> ToolCall:
    if not isinstance(raw, str):
        raise BadRequest(f"{where}: expected a JSON string", where)
    return client_call(name, raw, call_id, where)


def _messages(items: str | list[Any]) -> list[Message]:
    if isinstance(items, str):
        return [Message("user", items)]
    if not items:
        raise BadRequest("input: expected a string or at least one item", "input")
    messages: list[Message] = []
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: expected an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise BadRequest(f"{where}.role: expected user, system, developer or assistant (got {role!r})",
                                 f"{where}.role")
            if "content" not in item or item["content"] is None:
                raise BadRequest(f"{where}.content: a '{role}' message needs content", f"{where}.content")
            messages.append(Message("system" if role == "developer" else role,
                                    _text_of(item["content"], f"{where}.content")))
        elif kind == "function_call":
            name, call_id = item.get("name"), item.get("call_id")
            if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{where}: a function_call needs 'name' and 'call_id'", where)
            call = _call(name, item.get("arguments", ""), call_id, f"{where}.arguments")
            names[call_id] = name
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":  # parallel calls: one assistant turn
                last.tool_calls.append(call)
            else:
                messages.append(Message("assistant", "", [call]))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise BadRequest(f"{where}.call_id: required for a function_call_output", f"{where}.call_id")
            if "output" not in item:
                raise BadRequest(f"{where}.output: required for a function_call_output", f"{where}.output")
            messages.append(Message("tool", _text_of(item["output"], f"{where}.output"), tool_call_id=call_id,
                                    name=names.get(call_id, "")))
        elif kind == "reasoning":
            continue  # another model's thinking: never passed on (see the module docstring)
        else:
            raise BadRequest(f"{where}.type: {kind!r} items are not supported (message, function_call, "
                             "function_call_output)", f"{where}.type")
    return messages


def _tools(body: ResponsesBody) -> list[ToolDefinition]:
    if body.tool_choice == "none":
        return []
    out = []
    for i, tool in enumerate(body.tools or []):
        where = f"tools[{i}]"
        if tool.get("type") != "function":
            raise BadRequest(f"{where}.type: only function tools are supported (got {tool.get('type')!r})",
                             f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise BadRequest(f"{where}.name: 1-64 letters, digits, '_', '.' or '-'", f"{where}.name")
        parameters = tool.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise BadRequest(f"{where}.parameters: expected a JSON schema object", f"{where}.parameters")
        description = tool.get("description") or ""
        out.append(ToolDefinition(name, description if isinstance(description, str) else "", parameters))
    if body.tool_choice is not None and body.tool_choice != "auto":
        return chosen_tools(out, body.tool_choice, "tool_choice")
    return out


def to_chat_request(body: ResponsesBody) -> ChatRequest:
    messages = _messages(body.input)
    if body.instructions:
        messages.insert(0, Message("system", body.instructions))
    effort = (body.reasoning or {}).get("effort")
    fmt_spec = (body.text or {}).get("format") or {}
    if not isinstance(fmt_spec, dict):
        raise BadRequest("text.format: expected an object ({'type': 'text' | 'json_object' | 'json_schema', …})",
                         "text.format")
    fmt = fmt_spec.get("type", "text")
    schema = fmt_spec.get("schema") if fmt == "json_schema" else None
    return ChatRequest(
        messages=messages,
        tools=_tools(body),
        thinking=None if effort is None else effort_thinking(effort, "reasoning.effort"),
        max_tokens=body.max_output_tokens,
        temperature=body.temperature,
        json_output=fmt in ("json_object", "json_schema"),
        json_schema=schema if isinstance(schema, dict) and schema else None,
        # text.format.strict as the client said it (false unless set, as on chat completions)
        json_strict=fmt_spec.get("strict") is True if isinstance(schema, dict) and schema else None,
        single_tool_call=body.parallel_tool_calls is False,
        top_p=body.top_p,
    )


# -- answers ---------------------------------------------------------------------------------


def truncated(response: ChatResponse) -> bool:
    return not response.tool_calls and response.truncated


def usage_out(usage: Usage) -> dict[str, Any]:
    """The Responses API's ``ResponseUsage``: ``input_tokens_details`` requires ``cached_tokens`` and
    ``cache_write_tokens`` (openai/openai-openapi@f85dbe22 openapi.yaml; the openai SDK's InputTokensDetails, 3.57):
    without the second a client that validates the answer (the SDK's own ``Response.model_validate``) refused it."""
    return {"input_tokens": usage.input_tokens, "input_tokens_details": {
                "cached_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens},
            "output_tokens": usage.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.input_tokens + usage.output_tokens}


class ResponseWriter:
    """Renders one response: its items, the whole ``response`` object, and its SSE events (numbered)."""

    def __init__(self, request_id: str, created: int, body: ResponsesBody):
        self.request_id = request_id
        self.id = f"resp_{request_id}"
        self.message_id = f"msg_{request_id}"
        self.created = created
        self.body = body
        self.model = body.model
        self.sequence = 0
        self._streamed: list[str] = []

    # -- items -----------------------------------------------------------------------------

    def message_item(self, text: str, status: str) -> dict[str, Any]:
        content = [] if status == "in_progress" else [{"type": "output_text", "text": text, "annotations": [],
                                                       "logprobs": []}]
        return {"id": self.message_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def call_item(self, call: ToolCall, index: int, status: str = "completed") -> dict[str, Any]:
        return {"id": f"fc_{self.request_id}_{index}", "type": "function_call", "status": status,
                "call_id": call.id or f"call_{self.request_id}_{index}", "name": call.name,
                "arguments": call.arguments_text()}

    def output(self, response: ChatResponse) -> list[dict[str, Any]]:
        items = []
        if response.text or not response.tool_calls:
            items.append(self.message_item(response.text, "incomplete" if truncated(response) else "completed"))
        items += [self.call_item(c, i) for i, c in enumerate(response.tool_calls)]
        return items

    def response(self, status: str, output: list[dict[str, Any]], usage: Usage | None = None,
                 error: dict[str, str] | None = None) -> dict[str, Any]:
        b = self.body
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": b.instructions, "max_output_tokens": b.max_output_tokens, "model": self.model,
            "output": output, "parallel_tool_calls": b.parallel_tool_calls is not False, "previous_response_id": None,
            "reasoning": {"effort": (b.reasoning or {}).get("effort"), "summary": None}, "store": False,
            "temperature": b.temperature, "text": b.text or {"format": {"type": "text"}},
            "tool_choice": b.tool_choice or "auto", "tools": b.tools or [], "top_p": None, "truncation": "disabled",
            "usage": None if usage is None else usage_out(usage), "metadata": {},
        }

    def whole(self, response: ChatResponse) -> dict[str, Any]:
        status = "incomplete" if truncated(response) else "completed"
        return self.response(status, self.output(response), response.usage)

    # -- events ----------------------------------------------------------------------------

    def event(self, kind: str, **payload: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **payload}
        self.sequence += 1
        return f"event: {kind}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"

    def opening(self) -> list[bytes]:
        start = self.response("in_progress", [])
        return [self.event("response.created", response=start), self.event("response.in_progress", response=start)]

    def text_opening(self, index: int = 0) -> list[bytes]:
        return [self.event("response.output_item.added", output_index=index,
                           item=self.message_item("", "in_progress")),
                self.event("response.content_part.added", item_id=self.message_id, output_index=index,
                           content_index=0, part={"type": "output_text", "text": "", "annotations": []})]

    @property
    def streamed(self) -> str:
        """The text sent so far as deltas (what a failed stream's partial message holds)."""
        return "".join(self._streamed)

    def text_delta(self, text: str, index: int = 0) -> bytes:
        self._streamed.append(text)
        return self.event("response.output_text.delta", item_id=self.message_id, output_index=index, content_index=0,
                          delta=text, logprobs=[])

    def text_closing(self, text: str, status: str, index: int = 0) -> list[bytes]:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return [self.event("response.output_text.done", item_id=self.message_id, output_index=index,
                           content_index=0, text=text, logprobs=[]),
                self.event("response.content_part.done", item_id=self.message_id, output_index=index,
                           content_index=0, part=part),
                self.event("response.output_item.done", output_index=index, item=self.message_item(text, status))]

    def call_events(self, call: ToolCall, call_index: int, index: int) -> list[bytes]:
        item = self.call_item(call, call_index)
        return [self.event("response.output_item.added", output_index=index,
                           item={**item, "arguments": "", "status": "in_progress"}),
                self.event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                           delta=item["arguments"]),
                self.event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                           name=call.name, arguments=item["arguments"]),
                self.event("response.output_item.done", output_index=index, item=item)]

    def closing(self, response: ChatResponse) -> bytes:
        whole = self.whole(response)
        kind = "response.incomplete" if whole["status"] == "incomplete" else "response.completed"
        return self.event(kind, response=whole)

    def failed(self, message: str) -> bytes:
        partial = self.streamed
        output = [self.message_item(partial, "incomplete")] if partial else []
        return self.event("response.failed", response=self.response(
            "failed", output, error={"code": "server_error", "message": message}))

    def replay(self, response: ChatResponse) -> list[bytes]:
        """A buffered answer as the events a live stream would have produced (opening excluded)."""
        out: list[bytes] = []
        index = 0
        if response.text or not response.tool_calls:
            out += self.text_opening(index)
            if response.text:
                out.append(self.text_delta(response.text, index))
            out += self.text_closing(response.text, "incomplete" if truncated(response) else "completed", index)
            index += 1
        for i, call in enumerate(response.tool_calls):
            out += self.call_events(call, i, index + i)
        out.append(self.closing(response))
        return out
