"""Ollama's native API on the gateway: ``POST /api/chat`` and ``/api/generate`` on the same router path
as chat completions, and ``/api/tags``, ``/api/ps``, ``/api/show``, ``/api/version`` so Ollama's clients
find the agents and models.

Same rules as the other model endpoints (``intake.py``): the agent's chain, the tool-calling trap
(requests with tools are buffered and checked before anything is sent), the same statuses when no
model could answer (as Ollama's ``{"error": …}``, with the attempts), the routing row committed before
the answer's last line, and a client that goes away cancels the upstream call. Only the wire format
differs (``ollama_wire.py``): NDJSON lines, ``stream`` on unless the client turns it off, and an error
after the first line is a ``{"error": …}`` line under status 200, as Ollama does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.drain import SHUTTING_DOWN
from modelyard.gateway.intake import committed, complete, intake, start_stream
from modelyard.gateway.ollama_wire import (
    API_VERSION,
    LATEST,
    OllamaWriter,
    answering,
    error_line,
    line,
    model_entry,
    parse_ollama_body,
    show,
    stop_sequences,
    to_chat_request,
)
from modelyard.gateway.responses import (
    SSEResponse,
    error_extras,
    json_response,
    replayed,
    reshaped_error,
    route_headers,
    until_drained,
)
from modelyard.gateway.routing import PICKED_BY_ORCHESTRATOR, listed_names
from modelyard.gateway.stops import StopCutter, cut
from modelyard.gateway.tool_text import accept_for
from modelyard.router import RoutedStream, StreamInterrupted
from modelyard.router.records import new_request_id
from modelyard.types import Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway

NDJSON = "application/x-ndjson"
NEVER = "2318-01-01T00:00:00Z"  # an expiry Ollama's clients parse as a date; nothing here is unloaded
_SHUTDOWN_LINE = error_line(SHUTTING_DOWN + " — the partial answer above is incomplete")


async def chat(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return ollama_error(await until_drained(gw.drain, _answer(gw, request, chat=True)))


async def generate(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return ollama_error(await until_drained(gw.drain, _answer(gw, request, chat=False)))


async def version(request: Request) -> Response:
    return json_response({"version": API_VERSION})


async def tags(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    if not gw.keys.allows(request.headers.get("authorization")):
        return ollama_error(gw.unauthorized())
    return json_response({"models": [model_entry(name, kind, chain, gw.started_at)
                                     for name, kind, chain in listed_names(gw.runtime.config)]})


async def running(request: Request) -> Response:
    """``/api/ps``: what is loaded. Every agent and model here answers without a load step (``serve`` keeps
    its local models warm), so all of them, as ``/api/tags`` lists them, never expiring."""
    gw: Gateway = request.app.state.gateway
    if not gw.keys.allows(request.headers.get("authorization")):
        return ollama_error(gw.unauthorized())
    return json_response({"models": [{**model_entry(name, kind, chain, gw.started_at), "expires_at": NEVER,
                                      "size_vram": 0} for name, kind, chain in listed_names(gw.runtime.config)]})


async def show_model(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    if not gw.keys.allows(request.headers.get("authorization")):
        return ollama_error(gw.unauthorized())
    try:
        asked = orjson.loads(await request.body())
        name = str(asked.get("model") or asked.get("name") or "").removesuffix(LATEST)
    except (orjson.JSONDecodeError, AttributeError):
        return json_response({"error": "the request body is not a JSON object"}, 400)
    models = gw.runtime.config.models
    for entry_name, kind, chain in listed_names(gw.runtime.config):
        if entry_name == name:
            contexts = [models[m].context for m in chain if m in models]
            return json_response(show(name, kind, chain, min((c for c in contexts if c), default=None),
                                      gw.started_at))
    return json_response({"error": f"model '{name}' not found"}, 404)


def ollama_error(response: Response) -> Response:
    """An error from the shared steps as Ollama's ``{"error": "…"}``, modelyard's extras beside it."""
    return reshaped_error(response, lambda status, error: {"error": error.get("message", ""), **error_extras(error)})


async def _answer(gw: Gateway, request: Request, *, chat: bool) -> Response:
    started = time.time_ns()
    request_id = new_request_id()
    taken = await intake(gw, request, parse_ollama_body, to_chat_request, request_id, route=False)
    if isinstance(taken, Response):
        return taken
    body, agent, request_chat = taken
    writer = OllamaWriter(body.asked or body.model, chat=chat, thinking=bool(body.think), started_ns=started)
    if body.loads_only:
        done = writer.loaded(body.unloads)
        return json_response(done) if not body.stream else _lines([line(done)], {})
    if agent == PICKED_BY_ORCHESTRATOR:  # ``auto``, decided after the load-only check (which needs no agent)
        agent = await gw.routed_agent(request_chat, request_id)
    accept = accept_for(gw.config, request_chat)
    if body.stream and accept is None:
        opened = await start_stream(gw, request, agent, request_chat, request_id)
        if isinstance(opened, Response):
            return opened
        stream, first = opened
        stops = StopCutter(stop_sequences(body))
        return SSEResponse(_events(gw, stream, first, writer, stops), route_headers(stream.record), drain=gw.drain,
                           final=_SHUTDOWN_LINE, content_type=NDJSON)
    routed = await complete(gw, request, agent, request_chat, request_id, accept)
    if isinstance(routed, Response):
        return routed
    response = routed.response
    if (sequences := stop_sequences(body)) and not response.tool_calls:
        response.text, matched = cut(response.text, sequences)
        writer.stopped = matched is not None
    headers = route_headers(routed.record, truncated=not response.tool_calls and response.truncated
                            and not writer.stopped)
    measured = answering(routed.record)
    answer = _lines(writer.replay(response, measured), headers, gw) if body.stream else \
        json_response(writer.final(response, whole=True, measured=measured), headers=headers)
    await committed(gw)
    return answer


def _lines(lines: list[bytes], headers: dict[str, str], gw: Gateway | None = None) -> Response:
    return SSEResponse(replayed(lines), headers, drain=gw.drain if gw else None, final=_SHUTDOWN_LINE,
                       content_type=NDJSON)


async def _events(gw: Gateway, stream: RoutedStream, first: Chunk | None, writer: OllamaWriter,
                  stops: StopCutter) -> AsyncGenerator[bytes, None]:
    """Text (and thinking, when asked for) as it comes, up to the client's first stop sequence (the router then
    closes the model's stream: router/stop_watch.py); requests with tools are never streamed live."""
    try:
        chunk = first
        try:
            while chunk is not None:
                if chunk.kind == "text" and chunk.text and (text := stops.feed(chunk.text)):
                    yield writer.delta(text)
                elif chunk.kind == "thinking" and chunk.text and writer.thinking:
                    yield writer.delta(thinking=chunk.text)
                chunk = await anext(stream, None)
        except StreamInterrupted as exc:
            await committed(gw)
            yield error_line(f"{exc} — the partial answer above is incomplete")
            return
        if held := stops.flush():
            yield writer.delta(held)
        writer.stopped = stops.matched is not None
        last = line(writer.final(stream.response, measured=answering(stream.record)))
        await committed(gw)
        yield last
    finally:
        await stream.aclose()
