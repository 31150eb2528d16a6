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
- ``--api-prefix /x`` puts every path under ``/x`` (``/x/v1/completions``, ``/x/infill``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from tests.fakes.openai_compat import OpenAIServer

NO_FIM_TOKENS = ("Infill is not supported by this model: prefix token is missing. suffix token is missing. "
                 "middle token is missing. ")


def llama_error(status: int, message: str, kind: str) -> JSONResponse:
    """llama-server's ``format_error_response``: ``{"error": {"code", "message", "type"}}``."""
    return JSONResponse({"error": {"code": status, "message": message, "type": kind}}, status_code=status)


def infill_text(body: dict[str, Any]) -> str:
    """What the fake model fills the gap with: both sides, so a test sees what reached ``/infill``."""
    return f"<{body.get('input_prefix')}|{body.get('input_suffix')}>"


class LlamaServer(OpenAIServer):
    """llama-server: OpenAI-compatible paths as the generic fake, ``suffix`` refused there, ``/infill`` served.
    ``fim_tokens``: the model's vocabulary has FIM tokens (else ``/infill`` is a 501). ``api_prefix``: the server's
    ``--api-prefix``."""

    def __init__(self, *args: Any, fim_tokens: bool = True, api_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fim_tokens = fim_tokens
        self.api_prefix = api_prefix

    def routes(self) -> list[BaseRoute]:
        routes = [Route(self.api_prefix + "/infill", self._infill, methods=["POST"])]
        for route in super().routes():
            assert isinstance(route, Route)
            endpoint = self._refusing_suffix if route.path == "/v1/completions" else route.endpoint
            routes.append(Route(self.api_prefix + route.path, endpoint, methods=route.methods))
        return routes

    async def _refusing_suffix(self, request: Request) -> ASGIApp:
        body = await request.json()
        for param in ("best_of", "suffix"):
            if isinstance(body, dict) and param in body:
                await self.record(request)
                return llama_error(400, f"Unsupported param: {param}", "invalid_request_error")
        return await self._text_completions(request)

    async def _infill(self, request: Request) -> ASGIApp:
        recorded = await self.record(request)
        if not self.fim_tokens:
            return llama_error(501, NO_FIM_TOKENS, "not_supported_error")
        body = recorded.json
        if not isinstance(body, dict) or "input_prefix" not in body or "input_suffix" not in body:
            return llama_error(400, '"input_prefix" is required', "invalid_request_error")
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
