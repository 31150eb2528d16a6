"""Fake Anthropic Messages API (/v1/messages), streamed and not.

Validates the headers and fields the real API insists on, and streams the documented
SSE event order: message_start, ping, content blocks (text / thinking / tool_use with
their delta types), message_delta, message_stop; errors as `{"type": "error", ...}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from tests.fakes.chat import ChatServer, Plan, ReplyText, content_value, count_words, new_id, usage_values
from tests.fakes.faults import Fault, FaultKind
from tests.fakes.playback import Rendering, json_bytes

SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"

# status -> (error.type, default message)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

#: Claude Opus 4.7 and later take adaptive thinking only, and no sampling parameters: the API's 400s, word for word
#: (earendil-works/pi#3297, hermes-agent#11145, opencode#23007; inspect_ai#3721, Roo-Code#12162)
ADAPTIVE_ONLY = ('"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
                 '"output_config.effort" to control thinking behavior.')
TEMPERATURE_DEPRECATED = "`temperature` is deprecated for this model."
#: ... and top_p and top_k alike, probed live (mnfst/modelparams.dev#238; router-for-me/CLIProxyAPI#4383,
#: vellum-ai/vellum-assistant#35820)
DEPRECATED = "`{field}` is deprecated for this model."
#: Claude Sonnet 4.5, Haiku 4.5, Opus 4.1 and later take temperature or top_p, not both: the API's 400, word for word
#: (di-sukharev/opencommit#520: claude-haiku-4-5; chatboxai/chatbox#2670: Sonnet 4.5 and Opus 4.1;
#: BerriAI/litellm#15097: claude-sonnet-4-5-20250929)
NOT_BOTH = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
#: the body's fields the Messages API reference documents (and anthropic-sdk-python 2.14's ``Messages.create`` sends,
#: which no longer names temperature, top_p or top_k: older SDKs and other clients still send them); any other is
#: refused as pydantic refuses it, "<field>: Extra inputs are not permitted" (amrit110/oli#7: response_format;
#: Aider-AI/aider#3367: extra_body; anthropics/claude-code#14135: context_management before it was taken)
FIELDS = frozenset({"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
                    "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
                    "context_management", "output_config", "output_format", "inference_geo", "cache_control",
                    "diagnostics", "speed", "user_profile_id", "workspace_id"})
#: adaptive thinking with a budget (the-llm-council v0.7.11: "budget_tokens is not permitted with adaptive")
ADAPTIVE_BUDGET = "thinking.adaptive.budget_tokens: Extra inputs are not permitted"
#: an account the API will not serve, under a 400 invalid_request_error (claude-code#4684, #66314; #54311, #72457)
LOW_CREDIT = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
              "purchase credits.")
ORG_DISABLED = "This organization has been disabled."
#: thinking on in a tool loop whose last assistant turn carries no thinking block (its signed blocks not sent back):
#: the API's 400 (OpenRouterTeam/ai-sdk-provider#162, n8n#22550, opencode#3077)
THINKING_FIRST = ("messages.{n}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When "
                  "`thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the "
                  "lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from "
                  "previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at "
                  "https://docs.claude.com/en/docs/build-with-claude/extended-thinking")


def sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + json_bytes(payload) + b"\n\n"


class AnthropicServer(ChatServer):
    """Anthropic Messages API with key/version/max_tokens validation."""

    tool_call_prefix = "toolu_"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        models: Iterable[str] | None = None,
        reply_text: ReplyText = "Hello from the fake server.",
        thinking_text: str = "Let me think about this briefly.",
        tool_arguments: dict[str, Any] | None = None,
        answer_tools: bool = True,
        tool_preamble: str = "",
        chunk_interval: float = 0.0,
        inject_unknown_event: bool = False,
        max_output: int | None = None,
        adaptive_only: bool = False,
        redacted_thinking: bool = False,
        one_of_temperature_top_p: bool = False,
    ) -> None:
        """``max_output``: the model's output limit; a larger ``max_tokens`` is refused with the API's words.
        ``adaptive_only``: the model is as Claude Opus 4.7 and later (docs' "what's new in Claude 4.7"): it refuses
        ``thinking.type: enabled`` and ``temperature`` with the API's words, and without ``display: "summarized"``
        its thinking blocks come empty (the default display there is "omitted": claude-code#49268); it refuses
        ``top_p`` and ``top_k`` as it refuses ``temperature``.
        ``one_of_temperature_top_p``: the model is as Claude Sonnet 4.5 or Haiku 4.5: ``temperature`` beside
        ``top_p`` is refused with the API's words (:data:`NOT_BOTH`), each alone is taken.
        ``redacted_thinking``: a thinking answer also carries a ``redacted_thinking`` block (encrypted ``data``, no
        text), as the API sends when its safety systems flag part of the reasoning (extended-thinking docs, "thinking
        redaction"). Every thinking block sent back is checked as the API checks it: its signature must be one this
        server issued for exactly that text, else the API's 400 "messages.N.content.M: Invalid `signature` in
        `thinking` block" (claude-code#10627, anthropic-sdk-python#1598)."""
        super().__init__(
            reply_text=reply_text,
            thinking_text=thinking_text,
            tool_arguments=tool_arguments,
            answer_tools=answer_tools,
            tool_preamble=tool_preamble,
            chunk_interval=chunk_interval,
        )
        self.api_key = api_key
        self.models: list[str] | None = None if models is None else list(models)
        self.inject_unknown_event = inject_unknown_event
        self.max_output = max_output
        self.adaptive_only = adaptive_only
        self.redacted_thinking = redacted_thinking
        self.one_of_temperature_top_p = one_of_temperature_top_p
        #: signatures issued, each for its thinking text; redacted blocks' data issued
        self.signed: dict[str, str] = {}
        self.redacted: set[str] = set()

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/messages", self._messages, methods=["POST"])]

    def error_payload(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        default_type, default_message = _ERRORS.get(status, ("api_error", "Internal server error"))
        return {
            "type": "error",
            "error": {"type": error_type or default_type, "message": message or default_message},
            "request_id": new_id("req_"),
        }

    def error_headers(self) -> dict[str, str]:
        return {"request-id": new_id("req_")}

    midstream_status = 529

    def error_chunk(self, payload: dict[str, Any]) -> bytes:
        return sse("error", {"type": "error", "error": payload["error"]})

    def _validate(self, request: Request, body: Any) -> JSONResponse | None:
        # the real API takes the key as x-api-key or as a bearer token (OAuth-style tokens, and the
        # official SDK since 2.x sends its api_key as "Authorization: Bearer ...")
        key = request.headers.get("x-api-key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not key and scheme.lower() == "bearer":
            key = token.strip()
        if not key:
            return self.error_response(401, "x-api-key or authorization header is required")
        if key != self.api_key:
            return self.error_response(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error_response(400, "anthropic-version: header is required")
        if not isinstance(body, dict):
            return self.error_response(400, "There was an issue with the JSON body of your request.")
        for required in ("model", "messages", "max_tokens"):
            if required not in body:
                return self.error_response(400, f"{required}: Field required")
        if extra := sorted(set(body) - FIELDS):
            return self.error_response(400, f"{extra[0]}: Extra inputs are not permitted")
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return self.error_response(400, "max_tokens: Input should be a valid integer greater than 0")
        if self.models is not None and body["model"] not in self.models:
            return self.error_response(404, f"model: {body['model']}")
        budget = (body.get("thinking") or {}).get("budget_tokens")
        if isinstance(budget, int) and budget >= body["max_tokens"]:
            return self.error_response(400, "`max_tokens` must be greater than `thinking.budget_tokens`. Please "
                                            "consult our documentation at https://docs.claude.com/en/docs/build-with-"
                                            "claude/extended-thinking#max-tokens-and-context-window-size")
        if self.max_output is not None and body["max_tokens"] > self.max_output:
            return self.error_response(400, f"max_tokens: {body['max_tokens']} > {self.max_output}, which is the "
                                            f"maximum allowed number of output tokens for {body['model']}")
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "adaptive" and "budget_tokens" in thinking:
            return self.error_response(400, ADAPTIVE_BUDGET)
        if self.adaptive_only and isinstance(thinking, dict) and thinking.get("type") == "enabled":
            return self.error_response(400, ADAPTIVE_ONLY)
        if self.adaptive_only and (field := next((f for f in ("temperature", "top_p", "top_k") if f in body), None)):
            return self.error_response(400, DEPRECATED.format(field=field))
        if self.one_of_temperature_top_p and "temperature" in body and "top_p" in body:
            return self.error_response(400, NOT_BOTH)
        thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        if (problem := self._signature_problem(body["messages"])) is not None:
            return self.error_response(400, problem)
        if thinking_on and (problem := _thinking_first_problem(body["messages"])) is not None:
            return self.error_response(400, problem)
        if body["messages"] == []:
            return self.error_response(400, "messages: at least one message is required")
        if (problem := _tool_id_problem(body["messages"]) or _empty_content_problem(body["messages"])) is not None:
            return self.error_response(400, problem)
        return None

    async def _messages(self, request: Request) -> ASGIApp:
        recorded = await self.record(request)
        body = recorded.json
        if (invalid := self._validate(request, body)) is not None:
            return invalid
        model = str(body["model"])
        messages = body["messages"] or []
        tools = [t.get("name", "") for t in body.get("tools") or [] if isinstance(t, dict)]
        thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        max_tokens: int = body["max_tokens"]

        def render(fault: Fault) -> Rendering:
            plan = self.plan(
                body,
                fault,
                tools=[t for t in tools if t],
                last_is_tool_result=_ends_with_tool_result(messages),
                thinking=thinking,
                input_tokens=max(count_words(messages) + count_words(body.get("system") or ""), 1),
            )
            stop_reason = "tool_use" if plan.tool_call else "end_turn"
            if not plan.tool_call and len(plan.text) > max_tokens:
                plan.text, stop_reason = plan.text[:max_tokens], "max_tokens"
            if self.adaptive_only and (body.get("thinking") or {}).get("display") != "summarized":
                plan.thinking = [""]  # display "omitted": the block comes, its text does not
            rendering = self._render(model, plan, stop_reason, bool(body.get("stream")))
            rendering.headers["request-id"] = new_id("req_")
            return rendering

        return self.play(recorded, model, render)

    def _signature_problem(self, messages: Any) -> str | None:
        """The API's refusal of a thinking block it did not sign as sent (edited, re-serialised, another model's), or
        of a redacted_thinking block whose data it never gave."""
        if not isinstance(messages, list):
            return None
        for n, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            for m, block in enumerate(content if isinstance(content, list) else []):
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "thinking" and self.signed.get(str(block.get("signature"))) != block.get(
                        "thinking"):
                    return f"messages.{n}.content.{m}: Invalid `signature` in `thinking` block"
                if block.get("type") == "redacted_thinking" and block.get("data") not in self.redacted:
                    return f"messages.{n}.content.{m}: Invalid `data` in `redacted_thinking` block"
        return None

    # ----- rendering -------------------------------------------------------------------

    def _signature(self, thinking: str = "") -> str:
        signature = "EqQBCkYIBxgCKkB" + new_id("", 32)
        self.signed[signature] = thinking
        return signature

    def _redacted_data(self) -> str:
        data = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP" + new_id("", 16)
        self.redacted.add(data)
        return data

    def _blocks(self, plan: Plan) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if plan.thinking:
            blocks.append(
                {"type": "thinking", "thinking": plan.full_thinking, "signature": self._signature(plan.full_thinking)}
            )
            if self.redacted_thinking:
                blocks.append({"type": "redacted_thinking", "data": self._redacted_data()})
        if plan.text:
            blocks.append({"type": "text", "text": plan.full_text})
        if plan.tool_call:
            call = plan.tool_call
            blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
        return blocks

    def _render(self, model: str, plan: Plan, stop_reason: str, stream: bool) -> Rendering:
        message_id = new_id("msg_")
        broken = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"ty\n\n'
        input_tokens, output_tokens = usage_values(plan.fault, plan.input_tokens, plan.output_tokens)
        usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }
        if not stream:
            payload = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": self._blocks(plan),
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
            return Rendering(
                stream=False,
                media_type=JSON,
                body=json_bytes(payload),
                token_count=plan.output_tokens,
            )

        start_message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events = [sse("message_start", {"type": "message_start", "message": start_message})]
        events.append(sse("ping", {"type": "ping"}))
        unknown = plan.fault.kind is FaultKind.UNKNOWN_EVENTS
        if self.inject_unknown_event or unknown:
            events.append(
                sse("fake_unknown_event", {"type": "fake_unknown_event", "note": "clients must ignore"})
            )
        if plan.fault.kind is FaultKind.NO_CHOICES:  # opened and closed, nothing in between, no stop reason
            events.append(sse("message_stop", {"type": "message_stop"}))
            return Rendering(stream=True, media_type=SSE, chunks=events, first_token_index=len(events) - 1,
                             token_count=0, invalid_chunk=broken)
        first_token_index: int | None = None
        index = 0

        def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index, first_token_index
            opening = {"type": "content_block_start", "index": index, "content_block": start}
            events.append(sse("content_block_start", opening))
            for delta in deltas:
                if first_token_index is None:
                    first_token_index = len(events)
                piece = {"type": "content_block_delta", "index": index, "delta": delta}
                events.append(sse("content_block_delta", piece))
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if plan.thinking:
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in plan.thinking]
            deltas.append({"type": "signature_delta", "signature": self._signature(plan.full_thinking)})
            block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
            if self.redacted_thinking:  # its encrypted data whole in content_block_start, no delta
                block({"type": "redacted_thinking", "data": self._redacted_data()}, [])
        if unknown:  # a server tool Anthropic runs itself (web search), its result, and a citation
            block({"type": "server_tool_use", "id": new_id("srvtoolu_"), "name": "web_search", "input": {}},
                  [{"type": "input_json_delta", "partial_json": '{"query": "fake"}'}])
            block({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_x", "content": []}, [])
        if plan.text:
            deltas = [{"type": "text_delta", "text": content_value(piece, plan.fault, i == 0)}
                      for i, piece in enumerate(plan.text)]
            if unknown:
                deltas.insert(1, {"type": "citations_delta", "citation": {
                    "type": "web_search_result_location", "url": "https://example.com", "title": "Example",
                    "encrypted_index": "Eo8B", "cited_text": "fake"}})
            block({"type": "text", "text": ""}, deltas)
        if plan.tool_call:
            call = plan.tool_call
            block(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
                [{"type": "input_json_delta", "partial_json": piece} for piece in plan.tool_fragments],
            )
        delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        events.append(sse("message_delta", {**delta, "usage": {"output_tokens": plan.output_tokens}}))
        events.append(sse("message_stop", {"type": "message_stop"}))
        return Rendering(
            stream=True,
            media_type=SSE,
            chunks=events,
            first_token_index=first_token_index if first_token_index is not None else len(events) - 2,
            token_count=plan.output_tokens,
            invalid_chunk=broken,
        )


def _ends_with_tool_result(messages: list[Any]) -> bool:
    if not messages or not isinstance(messages[-1], dict):
        return False
    last = messages[-1]
    content = last.get("content")
    return (
        last.get("role") == "user"
        and isinstance(content, list)
        and any(isinstance(part, dict) and part.get("type") == "tool_result" for part in content)
    )


_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _empty_content_problem(messages: Any) -> str | None:
    """The API's refusal of a turn with nothing in it (a text turn of "" or blanks, an empty text block), with its
    wording; only a final assistant turn (a prefill) may be empty."""
    if not isinstance(messages, list):
        return None
    for n, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        final_assistant = n == len(messages) - 1 and isinstance(message, dict) and message.get("role") == "assistant"
        if isinstance(content, str) and not content.strip() and not final_assistant:
            return (f"messages.{n}: all messages must have non-empty content except for the optional final "
                    "assistant message")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "text"
                                             and not str(b.get("text", "")).strip() for b in content):
            return "messages: text content blocks must be non-empty"
    return None


def _thinking_first_problem(messages: Any) -> str | None:
    """With thinking on, the assistant turn before the last tool results must open with a thinking block."""
    if not isinstance(messages, list) or not _ends_with_tool_result(messages) or len(messages) < 2:
        return None
    n = len(messages) - 2
    content = messages[n].get("content") if isinstance(messages[n], dict) else None
    first = content[0] if isinstance(content, list) and content and isinstance(content[0], dict) else {"type": "text"}
    if messages[n].get("role") != "assistant" or first.get("type") in ("thinking", "redacted_thinking"):
        return None
    return THINKING_FIRST.format(n=n, found=first.get("type"))


def _tool_id_problem(messages: Any) -> str | None:
    """The API's checks of tool ids in the history, with its wording: a tool_use id matches ``^[a-zA-Z0-9_-]+$``, and
    each tool_result answers a tool_use of the message just before it."""
    if not isinstance(messages, list):
        return None
    previous: set[str] = set()
    for n, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        for m, block in enumerate(blocks):
            if block.get("type") == "tool_use" and not _TOOL_ID.match(str(block.get("id", ""))):
                return f"messages.{n}.content.{m}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous:
                return (f"messages.{n}.content.{m}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                        "block in the previous message.")
        previous = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
    return None
