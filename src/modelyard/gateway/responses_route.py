"""``POST /v1/responses``: the Responses API on the same router path as chat completions.

Same rules as ``/v1/chat/completions`` (``completions.py``): the agent's chain, the tool-calling
trap (requests with tools are buffered and checked before anything is sent), the same statuses
when no model could answer, the routing row committed before the answer's last event, and a
client that goes away cancels the upstream call. Only the wire format differs (``responses_wire.py``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.drain import SHUTTING_DOWN
from modelyard.gateway.intake import committed, complete, intake, start_stream
from modelyard.gateway.responses import SSEResponse, json_response, route_headers, until_drained
from modelyard.gateway.responses_wire import ResponseWriter, parse_responses_body, to_chat_request, truncated
from modelyard.gateway.tool_text import accept_for
from modelyard.router import RoutedStream, StreamInterrupted
from modelyard.router.records import new_request_id
from modelyard.types import ChatResponse, Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway


async def create_response(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return await until_drained(gw.drain, _answer(gw, request))


async def _answer(gw: Gateway, request: Request) -> Response:
    request_id = new_request_id()
    taken = await intake(gw, request, parse_responses_body, to_chat_request, request_id)
    if isinstance(taken, Response):
        return taken
    body, agent, chat = taken
    writer = ResponseWriter(request_id, int(time.time()), body)
    accept = accept_for(gw.config, chat)
    if body.stream and accept is None:
        started = await start_stream(gw, request, agent, chat, writer.request_id)
        if isinstance(started, Response):
            return started
        stream, first = started
        writer.model = stream.record.model or writer.model
        # on shutdown (drain.py) the stream ends with response.failed, numbered after what was sent
        return SSEResponse(_events(gw, stream, first, writer), route_headers(stream.record), drain=gw.drain,
                           final=lambda: writer.failed(SHUTTING_DOWN + " — the partial answer is incomplete"))
    routed = await complete(gw, request, agent, chat, writer.request_id, accept)
    if isinstance(routed, Response):
        return routed
    response = routed.response
    writer.model = routed.record.model or body.model
    await committed(gw)
    headers = route_headers(routed.record, truncated=truncated(response))
    if body.stream:
        return SSEResponse(_replay(writer, response), headers, drain=gw.drain,
                           final=lambda: writer.failed(SHUTTING_DOWN))
    return json_response(writer.whole(response), headers=headers)


async def _replay(writer: ResponseWriter, response: ChatResponse) -> AsyncGenerator[bytes, None]:
    for event in [*writer.opening(), *writer.replay(response)]:
        yield event


async def _events(gw: Gateway, stream: RoutedStream, first: Chunk | None,
                  writer: ResponseWriter) -> AsyncGenerator[bytes, None]:
    """Text as it comes (requests without tools only: tool calls are never streamed live)."""
    try:
        for event in [*writer.opening(), *writer.text_opening()]:
            yield event
        chunk = first
        try:
            while chunk is not None:
                if chunk.kind == "text" and chunk.text:
                    yield writer.text_delta(chunk.text)
                chunk = await anext(stream, None)
        except StreamInterrupted as exc:
            await committed(gw)
            yield writer.failed(f"{exc} — the partial answer is incomplete")
            return
        response = stream.response
        for event in writer.text_closing(writer.streamed, "incomplete" if truncated(response) else "completed"):
            yield event
        await committed(gw)
        yield writer.closing(response)
    finally:
        await stream.aclose()
