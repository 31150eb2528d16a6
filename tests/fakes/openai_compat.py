"""Fake OpenAI-compatible server (/v1/chat/completions, /v1/completions, /v1/models).

Mirrors what llama.cpp / vLLM / LM Studio / Ollama's /v1 emit: `chat.completion`
objects, SSE `chat.completion.chunk` streams ending in `data: [DONE]`, tool-call
arguments as string fragments, and `{"error": {...}}` error bodies.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from tests.fakes.chat import ChatServer, Plan, ReplyText, content_value, count_words, new_id, usage_values
from tests.fakes.embeddings import LLAMA_NO_EMBEDDINGS, embed_call, llama_server_answer
from tests.fakes.faults import Fault, FaultKind
from tests.fakes.playback import Rendering, json_bytes

SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"

# status -> (type, code, default message)
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}


class OpenAIServer(ChatServer):
    """OpenAI-compatible chat completions with optional bearer-key check."""

    tool_call_prefix = "call_"

    def __init__(
        self,
        models: Iterable[str] | None = None,
        *,
        api_key: str | None = None,
        reply_text: ReplyText = "Hello from the fake server.",
        thinking_text: str = "Let me think about this briefly.",
        emit_reasoning: bool = False,
        tool_arguments: dict[str, Any] | None = None,
        answer_tools: bool = True,
        tool_preamble: str = "",
        chunk_interval: float = 0.0,
        honour_max_tokens: bool = False,
        max_output: int | None = None,
        reasoning_field: str = "reasoning_content",
        ping: bool = False,
        refusal: str | None = None,
        embeddings: bool = True,
        embedding_dims: int = 8,
        max_client_batch: int | None = None,
    ) -> None:
        """``honour_max_tokens``: cut the answer at the request's ``max_tokens`` (one piece = one token)
        with finish reason ``length``, as a real server does; off by default, since most tests script
        answers without thinking about the agent's budget. ``max_output``: the model's completion limit;
        a larger ``max_tokens`` is refused with OpenAI's words. ``reasoning_field``: the delta field the thinking
        comes in — ``reasoning_content`` (llama-server, DeepSeek, vLLM before 0.10) or ``reasoning`` (Ollama's /v1:
        openai/openai.go ``Message.Reasoning``, ``json:"reasoning,omitempty"``; vLLM since its rename; OpenRouter).
        ``ping``: a keep-alive comment between events, as sse-starlette's EventSourceResponse writes it (``: ping -
        <time>`` ended by CRLF CRLF, its default ``ping_message_factory``), which llama_cpp.server streams through.
        ``refusal``: the model declines in these words, as Structured Outputs' refusals come (the API reference's
        ``message.refusal`` / ``delta.refusal``, ``content`` null, finish reason ``stop``). ``embeddings``: serves
        ``/v1/embeddings`` as llama-server started with ``--embeddings`` does (vectors ``embedding_dims`` long), else
        refuses it as one started without (tests/fakes/embeddings.py). ``max_client_batch``: the most inputs one
        call may carry, as Hugging Face's text-embeddings-inference bounds it (``--max-client-batch-size``, 32 by
        default): more is its 422 ``{"error": "batch size 64 > maximum allowed batch size 32", "error_type":
        "Validation"}`` (its router: ``format!("batch size {batch_size} > maximum allowed batch size {}")``,
        ``ErrorType::Validation``; huggingface/text-embeddings-inference#378)."""
        self.max_client_batch = max_client_batch
        self.refusal = refusal
        self.embeddings = embeddings
        self.embedding_dims = embedding_dims
        self.honour_max_tokens = honour_max_tokens
        self.max_output = max_output
        self.reasoning_field = reasoning_field
        self.ping = ping
        super().__init__(
            reply_text=reply_text,
            thinking_text=thinking_text,
            tool_arguments=tool_arguments,
            answer_tools=answer_tools,
            tool_preamble=tool_preamble,
            chunk_interval=chunk_interval,
        )
        self.models: list[str] | None = None if models is None else list(models)
        #: the listing's ``owned_by``: "vllm" is what vLLM's /v1/models says of each model (vllm/entrypoints/openai/
        #: protocol.py ``ModelCard.owned_by = "vllm"``), and vLLM, like this fake given ``models``, answers only those
        self.owned_by = "fake"
        self.api_key = api_key
        self.emit_reasoning = emit_reasoning
        #: the part of each prompt read from OpenAI's prompt cache: ``usage.prompt_tokens_details.cached_tokens``
        #: (part of ``prompt_tokens``, as the API reference and its prompt-caching guide count it; xAI's docs show the
        #: same shape: docs.x.ai …/prompt-caching/usage-and-pricing). 0: no details object, as llama.cpp's server
        self.cached_tokens = 0

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/chat/completions", self._completions, methods=["POST"]),
            Route("/v1/completions", self._text_completions, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
        ]

    async def _embeddings(self, request: Request) -> ASGIApp:
        def refuse(body: dict[str, Any]) -> JSONResponse | None:
            if not self.embeddings:
                return JSONResponse(LLAMA_NO_EMBEDDINGS, status_code=501)
            if self.models is not None and str(body["model"]) not in self.models:
                return self.error_response(404, f"The model `{body['model']}` does not exist.")
            given = body.get("input")
            if self.max_client_batch is not None and isinstance(given, list) and len(given) > self.max_client_batch:
                return JSONResponse({"error": f"batch size {len(given)} > maximum allowed batch size "
                                              f"{self.max_client_batch}", "error_type": "Validation"}, status_code=422)
            return None

        if (denied := self._auth_error(request)) is not None:
            await self.record(request)
            return denied
        return await embed_call(self, request, answer=llama_server_answer(self.embedding_dims), refuse=refuse,
                                tokens=True)

    def error_payload(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        default_type, code, default_message = _ERRORS.get(status, ("server_error", None, "Internal error."))
        return {
            "error": {
                "message": message or default_message,
                "type": error_type or default_type,
                "param": None,
                "code": code,
            }
        }

    def _auth_error(self, request: Request) -> JSONResponse | None:
        if self.api_key is None:
            return None
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.api_key}":
            shown = header.removeprefix("Bearer ")[-4:] or "none"
            return self.error_response(401, f"Incorrect API key provided: ...{shown}.")
        return None

    async def _models(self, request: Request) -> JSONResponse:
        await self.record(request)
        if (denied := self._auth_error(request)) is not None:
            return denied
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": self.owned_by}
            for m in self.models or []
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _completions(self, request: Request) -> ASGIApp:
        recorded = await self.record(request)
        if (denied := self._auth_error(request)) is not None:
            return denied
        body = recorded.json
        if not isinstance(body, dict):
            return self.error_response(400, "We could not parse the JSON body of your request.")
        for required in ("model", "messages"):
            if required not in body:
                return self.error_response(400, f"Missing required parameter: '{required}'.")
        model = str(body["model"])
        if self.models is not None and model not in self.models:
            return self.error_response(
                404, f"The model `{model}` does not exist or you do not have access to it."
            )
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        if self.max_output is not None and isinstance(asked, int) and asked > self.max_output:
            field = "max_completion_tokens" if body.get("max_completion_tokens") else "max_tokens"
            return JSONResponse({"error": {
                "message": f"{field} is too large: {asked}. This model supports at most {self.max_output} completion "
                           f"tokens, whereas you provided {asked}.",
                "type": "invalid_request_error", "param": field, "code": "invalid_value"}}, status_code=400)
        messages = body["messages"] or []
        if not _tool_results_answer_calls(messages):
            return self.error_response(400, "Invalid parameter: messages with role 'tool' must be a response to a "
                                            "preceeding message with 'tool_calls'.")
        tools = [
            t.get("function", {}).get("name", "") for t in body.get("tools") or [] if isinstance(t, dict)
        ]
        last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def render(fault: Fault) -> Rendering:
            plan = self.plan(
                body,
                fault,
                tools=[t for t in tools if t],
                last_is_tool_result=last_role == "tool",
                thinking=self.emit_reasoning,
                input_tokens=max(count_words(messages), 1),
            )
            if self.honour_max_tokens:
                plan.limit(body.get("max_completion_tokens") or body.get("max_tokens"))
            if stream:
                return self._render_stream(model, plan, include_usage)
            return self._render_body(model, plan)

        return self.play(recorded, model, render)

    async def _text_completions(self, request: Request) -> ASGIApp:
        """OpenAI's legacy ``POST /v1/completions`` as vLLM and llama.cpp's server answer it (the API reference's
        "Create completion": ``text_completion`` objects, ``choices[].text``, SSE ending ``data: [DONE]``, the usage
        chunk with ``stream_options.include_usage``). The prompt is taken as it is, no chat template."""
        recorded = await self.record(request)
        if (denied := self._auth_error(request)) is not None:
            return denied
        body = recorded.json
        if not isinstance(body, dict) or "model" not in body or "prompt" not in body:
            return self.error_response(400, "Missing required parameter: 'prompt'.")
        model = str(body["model"])
        if self.models is not None and model not in self.models:
            return self.error_response(404, f"The model `{model}` does not exist or you do not have access to it.")
        prompt = body["prompt"]
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def render(fault: Fault) -> Rendering:
            plan = self.plan(body, fault, tools=[], last_is_tool_result=False, thinking=False,
                             input_tokens=max(count_words(prompt) + count_words(body.get("suffix") or ""), 1))
            if self.honour_max_tokens:
                plan.limit(body.get("max_tokens"))
            finish = "length" if plan.cut else "stop"
            completion_id, created = new_id("cmpl-"), int(time.time())

            def obj(text: str, finish_reason: str | None) -> dict[str, Any]:
                return {"id": completion_id, "object": "text_completion", "created": created, "model": model,
                        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]}

            if not stream:
                return self._errors(Rendering(stream=False, media_type=JSON, token_count=plan.output_tokens,
                                              body=json_bytes({**obj(plan.full_text, finish),
                                                               "usage": self._usage(plan)})))
            objects = [obj(piece, None) for piece in plan.text] + [obj("", finish)]
            if include_usage:
                objects.append({**obj("", None), "choices": [], "usage": self._usage(plan)})
            chunks = [b"data: " + json_bytes(o) + b"\n\n" for o in objects] + [b"data: [DONE]\n\n"]
            return self._errors(Rendering(stream=True, media_type=SSE, chunks=chunks, first_token_index=0,
                                          token_count=plan.output_tokens))

        return self.play(recorded, model, render)

    # ----- rendering -------------------------------------------------------------------

    def _usage(self, plan: Plan) -> dict[str, Any]:
        prompt, completion = usage_values(plan.fault, plan.input_tokens, plan.output_tokens)
        total = plan.input_tokens + plan.output_tokens if prompt is not None else None
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": min(self.cached_tokens, plan.input_tokens),
                                              "audio_tokens": 0}
        return usage

    def error_chunk(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + json_bytes(payload) + b"\n\n"

    def _errors(self, rendering: Rendering) -> Rendering:
        rendering.invalid_chunk = b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk","choi\n\n'
        return rendering

    def _render_body(self, model: str, plan: Plan) -> Rendering:
        content = content_value(plan.full_text, plan.fault, True) if plan.full_text else None
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if plan.thinking:
            message[self.reasoning_field] = plan.full_thinking
        if plan.tool_call:
            call = plan.tool_call
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
            ]
        elif self.refusal is not None:
            message.update(content=None, refusal=self.refusal)
        elif message["content"] is None:
            message["content"] = ""
        choices = [{"index": 0, "message": message, "logprobs": None,
                    "finish_reason": "tool_calls" if plan.tool_call else "length" if plan.cut else "stop"}]
        if plan.fault.kind is FaultKind.NO_CHOICES:
            choices = []
        payload = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
            "usage": self._usage(plan),
        }
        if plan.fault.kind is FaultKind.NO_CHOICES and plan.fault.variant == "missing":
            del payload["choices"]
        rendering = Rendering(
            stream=False, media_type=JSON, body=json_bytes(payload), token_count=plan.output_tokens
        )
        return self._errors(rendering)

    def _render_stream(self, model: str, plan: Plan, include_usage: bool) -> Rendering:
        completion_id, created = new_id("chatcmpl-"), int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                obj["usage"] = None
            return obj

        objects: list[dict[str, Any]] = []
        call = plan.tool_call
        header: dict[str, Any] = {}
        if call:
            function = {"name": call.name, "arguments": ""}
            header = {"index": 0, "id": call.id, "type": "function", "function": function}
        if call and not plan.text and not plan.thinking:
            objects.append(chunk({"role": "assistant", "content": None, "tool_calls": [header]}))
            header_sent = True
        else:
            objects.append(chunk({"role": "assistant", "content": ""}))
            header_sent = False
        objects += [chunk({self.reasoning_field: piece}) for piece in plan.thinking]
        if self.refusal is not None:  # the refusal's pieces in place of content, which stays null
            objects[0]["choices"][0]["delta"] = {"role": "assistant", "content": None, "refusal": ""}
            words = self.refusal.split(" ")
            objects += [chunk({"refusal": word + (" " if i < len(words) - 1 else "")}) for i, word in enumerate(words)]
        else:
            objects += [chunk({"content": content_value(piece, plan.fault, i == 0)})
                        for i, piece in enumerate(plan.text)]
        if call:
            if not header_sent:
                objects.append(chunk({"tool_calls": [header]}))
            objects += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in plan.tool_fragments
            ]
        objects.append(chunk({}, "tool_calls" if call else "length" if plan.cut else "stop"))
        kind = plan.fault.kind
        if kind is FaultKind.NO_CHOICES:  # the same stream with every choice taken out, no finish reason
            for o in objects:
                if plan.fault.variant == "missing":
                    del o["choices"]
                else:
                    o["choices"] = []
        if include_usage or kind is FaultKind.ODD_USAGE:
            usage_chunk = chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage(plan)
            objects.append(usage_chunk)
        if kind is FaultKind.UNKNOWN_EVENTS:  # fields and SSE lines a client must ignore
            for o in objects:
                o["provider"] = "FakeProvider"
                for c in o.get("choices") or []:
                    c["native_finish_reason"] = c["finish_reason"]
        chunks = [b"data: " + json_bytes(o) + b"\n\n" for o in objects]
        if kind is FaultKind.UNKNOWN_EVENTS:
            chunks = [b"retry: 3000\n\n", *(b"id: %d\n" % i + c for i, c in enumerate(chunks))]
        chunks.append(b"data: [DONE]\n\n")
        if self.ping:
            beat = b": ping - " + time.strftime("%Y-%m-%d %H:%M:%S").encode() + b".000000+00:00\r\n\r\n"
            chunks = [piece for c in chunks for piece in (beat, c)]
        rendering = Rendering(
            stream=True, media_type=SSE, chunks=chunks, first_token_index=3 if self.ping else 1,
            token_count=plan.output_tokens
        )
        return self._errors(rendering)


def _tool_results_answer_calls(messages: Any) -> bool:
    """OpenAI's check (with its wording above): each ``tool`` message names, as ``tool_call_id``, a call of the
    assistant message with ``tool_calls`` before it."""
    if not isinstance(messages, list):
        return True
    calls: set[str] = set()
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant" and isinstance(message.get("tool_calls"), list):
            calls = {str(c.get("id")) for c in message["tool_calls"] if isinstance(c, dict)}
        elif message.get("role") == "tool" and str(message.get("tool_call_id")) not in calls:
            return False
    return True
