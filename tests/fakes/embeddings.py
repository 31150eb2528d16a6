"""Embeddings endpoints of the fakes, in the shapes the real servers send.

- llama-server's ``POST /v1/embeddings`` (tools/server/server.cpp, ``format_embeddings_response_oaicompat``):
  ``{"model", "object": "list", "usage": {"prompt_tokens", "total_tokens"}, "data": [{"embedding": [...], "index": i,
  "object": "embedding"}]}``; started without ``--embeddings`` it answers 501 ``{"error": {"code": 501, "message":
  "This server does not support embeddings. Start it with `--embeddings`", "type": "not_supported_error"}}``
  (ggml-org/llama.cpp#14223).
- Ollama's ``POST /api/embed`` (docs/api.md, "Generate Embeddings"): ``{"model", "embeddings": [[...]],
  "total_duration", "load_duration", "prompt_eval_count"}``; a model that does not embed: ``{"error": "this model
  does not support embeddings"}`` with a 500 (ollama/ollama#9742, the runner's words).

Every call pops one fault of the server's script, as a chat call does: ``status`` (the protocol's error body),
``raw`` (bytes played verbatim: garbage, an HTML page, a cut-off body), ``hang_before_headers``, ``delay``.
A vector is made from its text (the same text, the same vector), ``dims`` long.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.chat import ChatServer, count_words
from tests.fakes.faults import FaultKind
from tests.fakes.playback import RawPlayback

LLAMA_NO_EMBEDDINGS = {"error": {"code": 501, "message": "This server does not support embeddings. Start it with "
                                 "`--embeddings`", "type": "not_supported_error"}}
OLLAMA_NO_EMBEDDINGS = "this model does not support embeddings"


def fake_vector(text: str, dims: int) -> list[float]:
    """A unit vector made from the text's hash: the same text, the same vector."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 + i * 1e-3 for i in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(v) is int for v in value)


def texts_of(value: Any, *, tokens: bool = False) -> list[str] | None:
    """The inputs, each as text (token ids written out as ``"[1, 2]"``, so the same ids make the same vector); None
    for what the server refuses: Ollama's "invalid input type" for anything but strings (ollama/ollama#5907).
    ``tokens``: token ids are taken as llama-server takes them (server-common.cpp tokenize_input_prompts: a list of
    integers is one prompt; a list may hold strings and lists of integers)."""
    if isinstance(value, str):
        return [value]
    if tokens and _ids(value):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, str) or (tokens and _ids(v)) for v in value):
        return [v if isinstance(v, str) else str(v) for v in value]
    return None


async def embed_call(server: ChatServer, request: Request, *, answer: Callable[[dict[str, Any], list[str]], Any],
                     refuse: Callable[[dict[str, Any]], Response | None], tokens: bool = False) -> Any:
    """One embeddings call: recorded, validated (``refuse``), then the next fault or ``answer``'s JSON."""
    recorded = await server.record(request)
    body = recorded.json
    if not isinstance(body, dict) or "model" not in body:
        return server.error_response(400, "missing model")
    if (refused := refuse(body)) is not None:
        return refused
    texts = texts_of(body.get("input"), tokens=tokens)
    if texts is None:
        return server.error_response(400, "invalid input type")
    fault = server.faults.next()
    recorded.fault = fault
    if fault.kind is FaultKind.STATUS:
        return server.status_fault_response(fault)
    if fault.kind is FaultKind.RAW:
        return server.tracked(RawPlayback(fault, server.stopping), str(body["model"]))
    if fault.kind is FaultKind.HANG_BEFORE_HEADERS:
        await server.stopping.wait()
        return Response(status_code=503)
    if fault.kind is FaultKind.DELAY:
        await asyncio.sleep(fault.seconds)
    return JSONResponse(answer(body, texts))


def llama_server_answer(dims: int) -> Callable[[dict[str, Any], list[str]], Any]:
    def answer(body: dict[str, Any], texts: list[str]) -> Any:
        # llama-server reads no `dimensions`: every vector is the model's length, whatever was asked
        tokens = sum(max(count_words(t), 1) for t in texts)
        return {"model": body["model"], "object": "list", "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": [{"embedding": fake_vector(t, dims), "index": i,
                          "object": "embedding"} for i, t in enumerate(texts)]}
    return answer


def ollama_answer(dims: int) -> Callable[[dict[str, Any], list[str]], Any]:
    def answer(body: dict[str, Any], texts: list[str]) -> Any:
        size = body.get("dimensions") or dims  # Ollama's `dimensions`: the vectors cut to it
        return {"model": body["model"], "embeddings": [fake_vector(t, dims)[:size] for t in texts],
                "total_duration": 14_143_917, "load_duration": 1_019_500,
                "prompt_eval_count": sum(max(count_words(t), 1) for t in texts)}
    return answer
