"""llama.cpp's ``llama-server`` where it differs from the generic OpenAI-compatible fake: fill-in-the-middle.

Shapes from the server's own source and README (ggml-org/llama.cpp tools/server):

- ``POST /v1/completions`` refuses ``suffix`` (and ``best_of``): ``oaicompat_completion_params_parse`` throws
  "Unsupported param: suffix", answered as ``format_error_response(…, ERROR_TYPE_INVALID_REQUEST)`` — a 400
  ``{"error": {"code": 400, "message": "Unsupported param: suffix", "type": "invalid_request_error"}}``
  (Docker Model Runner, built on it, says the same: docker/model-runner#403).
- ``POST /infill`` takes ``input_prefix``, ``input_suffix`` (``input_extra``, ``prompt``) and answers in the server's
  native completion shape: streamed, ``data: {"index": 0, "content": "…", "tokens": […], "stop": false, "id_slot": 0,
  "tokens_predicted": n, "tokens_evaluated": m}`` events and a last one with ``"stop": true``, ``stop_type`` ("eos",
  "word", "limit"), ``tokens_evaluated``/``tokens_predicted`` and ``timings``; no ``[DONE]`` (that is only sent on the
  OpenAI-compatible paths). A model whose GGUF has no FIM tokens is refused: 501 ``not_supported_error`` "Infill is
  not supported by this model: prefix token is missing. suffix token is missing. middle token is missing. ".
- ``input_extra``: other files as context, an array of ``{"filename": string, "text": string}`` (the filename
  optional); anything else is a 400 in its words (server.cpp handle_infill: '"input_extra" must be an array of
  {"filename": string, "text": string}', 'extra_context chunk must contain a "text" field with a string value').
- ``--api-prefix /x`` puts every path under ``/x`` (``/x/v1/completions``, ``/x/infill``).
- ``--ctx-size``: a prompt whose tokens reach a slot's context is refused before anything is evaluated
  (server-context.cpp: ``slot.task->n_tokens() >= slot.n_ctx``, ``ERROR_TYPE_EXCEED_CONTEXT_SIZE``) with a 400
  ``{"error": {"code": 400, "message": "request (8708 tokens) exceeds the available context size (8192 tokens), try
  increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 8708, "n_ctx": 8192}}``
  (arbs-io/github-copilot-llm-gateway#73, a real server's answer); the builds of ggml-org/llama.cpp#15780 answered
  ``"code": 500``, "the request exceeds the available context size. try increasing the context size or enable
  context shift", with the same two fields, under a 500. The fake's tokens are words.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from tests.fakes.chat import count_words
from tests.fakes.openai_compat import OpenAIServer

NO_FIM_TOKENS = ("Infill is not supported by this model: prefix token is missing. suffix token is missing. "
                 "middle token is missing. ")


def llama_error(status: int, message: str, kind: str) -> JSONResponse:
    """llama-server's ``format_error_response``: ``{"error": {"code", "message", "type"}}``."""
    return JSONResponse({"error": {"code": status, "message": message, "type": kind}}, status_code=status)


def _extra_refused(extra: Any) -> str | None:
    """llama-server's checks of ``input_extra`` (server.cpp handle_infill), in its words; None when it takes it."""
    if not isinstance(extra, list):
        return '"input_extra" must be an array of {"filename": string, "text": string}'
    for chunk in extra:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            return 'extra_context chunk must contain a "text" field with a string value'
        if "filename" in chunk and not isinstance(chunk["filename"], str):
            return 'extra_context chunk\'s "filename" field must be a string'
    return None


def infill_text(body: dict[str, Any]) -> str:
    """What the fake model fills the gap with: both sides, so a test sees what reached ``/infill``."""
    return f"<{body.get('input_prefix')}|{body.get('input_suffix')}>"


class LlamaServer(OpenAIServer):
    """llama-server: OpenAI-compatible paths as the generic fake, ``suffix`` refused there, ``/infill`` served.
    ``fim_tokens``: the model's vocabulary has FIM tokens (else ``/infill`` is a 501). ``api_prefix``: the server's
    ``--api-prefix``."""

    def __init__(self, *args: Any, fim_tokens: bool = True, api_prefix: str = "", n_ctx: int | None = None,
                 context_status: int = 400, chat_template: str = "", total_slots: int = 1, **kwargs: Any) -> None:
        """``n_ctx``: the server's ``--ctx-size`` (None: any prompt fits); ``context_status``: 400, or the 500 of the
        builds of llama.cpp#15780. ``chat_template``: what ``GET /props`` says of the model's template
        (tools/server/README.md: ``default_generation_settings``, ``total_slots``, ``model_path``, ``chat_template`` —
        "the model's original Jinja2 prompt template"); ``total_slots``: its ``--parallel`` (the README: "the total
        number of slots for process requests (defined by `--parallel` option)"; its example answers ``1``)."""
        self.chat_template = chat_template
        self.total_slots = total_slots
        super().__init__(*args, **kwargs)
        self.fim_tokens = fim_tokens
        self.api_prefix = api_prefix
        self.n_ctx = n_ctx
        self.context_status = context_status

    def routes(self) -> list[BaseRoute]:
        routes = [Route(self.api_prefix + "/infill", self._infill, methods=["POST"]),
                  Route(self.api_prefix + "/props", self._props, methods=["GET"])]
        for route in super().routes():
            assert isinstance(route, Route)
            endpoint = {"/v1/completions": self._refusing_suffix, "/v1/chat/completions": self._chat}.get(
                route.path, route.endpoint)
            routes.append(Route(self.api_prefix + route.path, endpoint, methods=route.methods))
        return routes

    async def _props(self, request: Request) -> JSONResponse:
        await self.record(request)
        return JSONResponse({"default_generation_settings": {"n_ctx": self.n_ctx or 4096},
                             "total_slots": self.total_slots, "model_path": "/models/model.gguf",
                             "chat_template": self.chat_template})

    def _past_context(self, body: Any) -> JSONResponse | None:
        """The refusal of a prompt whose tokens reach the slot's context, or None."""
        if self.n_ctx is None or not isinstance(body, dict):
            return None
        n = count_words(body.get("messages")) + count_words(body.get("prompt"))
        if n < self.n_ctx:
            return None
        message = (f"request ({n} tokens) exceeds the available context size ({self.n_ctx} tokens), try increasing it"
                   if self.context_status == 400 else "the request exceeds the available context size. try "
                   "increasing the context size or enable context shift")
        return JSONResponse({"error": {"code": self.context_status, "message": message,
                                       "type": "exceed_context_size_error", "n_prompt_tokens": n,
                                       "n_ctx": self.n_ctx}}, status_code=self.context_status)

    async def _chat(self, request: Request) -> ASGIApp:
        if (refused := self._past_context(await request.json())) is not None:
            await self.record(request)
            return refused
        return await self._completions(request)

    async def _refusing_suffix(self, request: Request) -> ASGIApp:
        body = await request.json()
        for param in ("best_of", "suffix"):
            if isinstance(body, dict) and param in body:
                await self.record(request)
                return llama_error(400, f"Unsupported param: {param}", "invalid_request_error")
        if (refused := self._past_context(body)) is not None:
            await self.record(request)
            return refused
        return await self._text_completions(request)

    async def _infill(self, request: Request) -> ASGIApp:
        recorded = await self.record(request)
        if not self.fim_tokens:
            return llama_error(501, NO_FIM_TOKENS, "not_supported_error")
        body = recorded.json
        if not isinstance(body, dict) or "input_prefix" not in body or "input_suffix" not in body:
            return llama_error(400, '"input_prefix" is required', "invalid_request_error")
        if (refused := _extra_refused(body.get("input_extra", []))) is not None:
            return llama_error(400, refused, "invalid_request_error")
        text = infill_text(body)
        limit = body.get("n_predict")
        pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
        cut = isinstance(limit, int) and 0 <= limit < len(pieces)
        pieces = pieces[:limit] if cut else pieces
        evaluated = len(str(body["input_prefix"]).split()) + len(str(body["input_suffix"]).split()) + 3
        last = {"index": 0, "content": "", "tokens": [], "stop": True, "id_slot": 0, "model": "fim.gguf",
                "tokens_predicted": len(pieces), "tokens_evaluated": evaluated, "stop_type": "limit" if cut else "eos",
                "stopping_word": "", "tokens_cached": 0, "has_new_line": False, "truncated": False,
                "timings": {"prompt_n": evaluated, "predicted_n": len(pieces)}}
        if not body.get("stream"):
            return JSONResponse({**last, "content": "".join(pieces)})

        async def events() -> AsyncIterator[bytes]:
            for n, piece in enumerate(pieces, 1):
                event = {"index": 0, "content": piece, "tokens": [n], "stop": False, "id_slot": 0,
                         "tokens_predicted": n, "tokens_evaluated": evaluated}
                yield b"data: " + json.dumps(event).encode() + b"\n\n"
            yield b"data: " + json.dumps(last).encode() + b"\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
