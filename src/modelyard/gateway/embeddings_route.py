"""``POST /v1/embeddings`` (OpenAI's: the ``openai`` SDK's ``embeddings.create``, LangChain's ``OpenAIEmbeddings``,
Continue's and Open WebUI's OpenAI embedders) and Ollama's ``POST /api/embed`` and legacy ``/api/embeddings``
(``ollama.embed``, Open WebUI's and LangChain's Ollama embedders), on the router path every model endpoint takes.

Same rules as chat (``intake.py``): the key, the bounded body, the agent or model from ``model``, the chain with its
slots, queue, time bounds and cooldowns, a routing row per request (its kind ``embeddings``) committed before the
answer, a client that goes away cancels the upstream call, and the statuses of an exhausted chain — a model that
cannot embed refuses its attempt (``bad_request``), so a chain of none answers 400. ``auto`` is refused: the
orchestrator picks an agent for a conversation, and an index's vectors must all come from one model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.embeddings_wire import (
    EmbeddingsBody,
    OllamaLegacyBody,
    ollama_embed,
    openai_embeddings,
    parse_embeddings_body,
    parse_ollama_embed_body,
    parse_ollama_legacy_body,
    to_embed_request,
    to_legacy_request,
)
from modelyard.gateway.intake import committed, complete, intake
from modelyard.gateway.ollama_route import ollama_error
from modelyard.gateway.responses import error_response, json_response, route_headers, until_drained
from modelyard.gateway.routing import PICKED_BY_ORCHESTRATOR
from modelyard.router.records import new_request_id
from modelyard.router.router import Routed
from modelyard.types import ChatRequest

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway

_AUTO = ("model 'auto' lets the orchestrator pick an agent for a conversation; vectors must all come from the "
         "model that made the index: name that model (or an agent whose chain embeds)")


async def create_embeddings(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return await until_drained(gw.drain, _openai(gw, request))


async def ollama_embed_route(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return ollama_error(await until_drained(gw.drain, _ollama(gw, request, legacy=False)))


async def ollama_embeddings_route(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return ollama_error(await until_drained(gw.drain, _ollama(gw, request, legacy=True)))


async def _routed(gw: Gateway, request: Request, parse: Callable[[bytes], Any], translate: Callable[[Any], ChatRequest],
                  key_header: str = "") -> tuple[Any, Routed | None] | Response:
    """(body, the routed vectors — None for no texts: Ollama's load), or the response that ends the request."""
    request_id = new_request_id()
    taken = await intake(gw, request, parse, translate, request_id, route=False, key_header=key_header)
    if isinstance(taken, Response):
        return taken
    body, agent, chat = taken
    if agent == PICKED_BY_ORCHESTRATOR:
        return error_response(400, _AUTO, param="model", code="invalid_request")
    assert chat.embed is not None
    if not chat.embed.texts:
        return body, None
    routed = await complete(gw, request, agent, chat, request_id, None)
    return routed if isinstance(routed, Response) else (body, routed)


async def _openai(gw: Gateway, request: Request, parse: Callable[[bytes], EmbeddingsBody] = parse_embeddings_body,
                  key_header: str = "") -> Response:
    """``parse`` and ``key_header``: Azure OpenAI's path's (gateway/azure.py), the deployment its model."""
    taken = await _routed(gw, request, parse, to_embed_request, key_header)
    if isinstance(taken, Response):
        return taken
    body, routed = taken
    assert isinstance(body, EmbeddingsBody) and routed is not None  # OpenAI's input is never empty
    record, response = routed.record, routed.response
    answer = json_response(openai_embeddings(response.vectors or [], record.model or "", response.usage,
                                             body.encoding_format), headers=route_headers(record))
    await committed(gw)
    return answer


async def _ollama(gw: Gateway, request: Request, *, legacy: bool) -> Response:
    started = time.perf_counter_ns()
    taken = await (_routed(gw, request, parse_ollama_legacy_body, to_legacy_request) if legacy else
                   _routed(gw, request, parse_ollama_embed_body, to_embed_request))
    if isinstance(taken, Response):
        return taken
    body, routed = taken
    if routed is None:  # no text: Ollama loads the model and answers no vectors
        return json_response({"embedding": []} if legacy else {"model": body.asked, "embeddings": []})
    vectors = routed.response.vectors or []
    if isinstance(body, OllamaLegacyBody):
        answer = json_response({"embedding": vectors[0]}, headers=route_headers(routed.record))
    else:
        answer = json_response(ollama_embed(vectors, body.asked, routed.response.usage,
                                            time.perf_counter_ns() - started), headers=route_headers(routed.record))
    await committed(gw)
    return answer
