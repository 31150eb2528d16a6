"""``POST /v1/messages`` (and ``/v1/messages/count_tokens``): Anthropic's Messages API on the same
router path as chat completions and responses.

Same rules as the other model endpoints (``intake.py``): the agent's chain, the tool-calling trap
(requests with tools are buffered and checked before anything is sent), the same statuses when no
model could answer (in Anthropic's error shape), the routing row committed before the answer's last
event, and a client that goes away cancels the upstream call. Only the wire format differs
(``messages_wire.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.drain import SHUTTING_DOWN
from modelyard.gateway.intake import committed, complete, intake, start_stream
from modelyard.gateway.messages_wire import (
    MessageWriter,
    anthropic_error,
    error_event,
    parse_count_body,
    parse_messages_body,
    to_chat_request,
)
from modelyard.gateway.responses import SSEResponse, json_response, replayed, route_headers, until_drained
from modelyard.gateway.stops import StopCutter, cut
from modelyard.gateway.tool_text import accept_for
from modelyard.router import RoutedStream, StreamInterrupted
from modelyard.router.records import new_request_id
from modelyard.tokens import request_tokens
from modelyard.types import Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway

_SHUTDOWN_EVENT = error_event(SHUTTING_DOWN + " — the partial answer above is incomplete", "overloaded_error")


async def create_message(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return anthropic_error(await until_drained(gw.drain, _answer(gw, request)))


async def count_tokens(request: Request) -> Response:
    """An estimate (modelyard's own: the models behind an agent have different tokenizers), so that a
    client that budgets its context (Claude Code does) gets a number instead of a 404."""
    gw: Gateway = request.app.state.gateway
    taken = await intake(gw, request, parse_count_body, to_chat_request, new_request_id(), route=False,
                         key_header="x-api-key")
    if isinstance(taken, Response):
        return anthropic_error(taken)
    return json_response({"input_tokens": request_tokens(taken[2])})


async def _answer(gw: Gateway, request: Request) -> Response:
    request_id = new_request_id()
    taken = await intake(gw, request, parse_messages_body, to_chat_request, request_id, key_header="x-api-key")
    if isinstance(taken, Response):
        return taken
    body, agent, chat = taken
    accept = accept_for(gw.config, chat)
    if body.stream and accept is None:
        started = await start_stream(gw, request, agent, chat, request_id)
        if isinstance(started, Response):
            return started
        stream, first = started
        writer = MessageWriter(request_id, stream.record.model or body.model)
        stops = StopCutter(body.stop_sequences or ())
        return SSEResponse(_events(gw, stream, first, writer, request_tokens(chat), stops),
                           route_headers(stream.record), drain=gw.drain, final=_SHUTDOWN_EVENT)
    routed = await complete(gw, request, agent, chat, request_id, accept)
    if isinstance(routed, Response):
        return routed
    response = routed.response
    writer = MessageWriter(request_id, routed.record.model or body.model)
    if body.stop_sequences and not response.tool_calls:
        response.text, writer.stop_sequence = cut(response.text, body.stop_sequences)
    headers = route_headers(routed.record, truncated=not response.tool_calls and response.truncated
                            and writer.stop_sequence is None)
    answer: Response
    if body.stream:
        answer = SSEResponse(replayed(writer.replay(response)), headers, drain=gw.drain, final=_SHUTDOWN_EVENT)
    else:
        answer = json_response(writer.whole(response), headers=headers)
    await committed(gw)
    return answer


async def _events(gw: Gateway, stream: RoutedStream, first: Chunk | None, writer: MessageWriter,
                  input_tokens: int, stops: StopCutter) -> AsyncGenerator[bytes, None]:
    """Text as it comes (requests without tools only: tool calls are never streamed live), up to the
    client's first stop sequence (the router then closes the model's stream: router/stop_watch.py)."""
    try:
        for event in writer.opening(input_tokens):
            yield event
        chunk = first
        try:
            while chunk is not None:
                if chunk.kind == "text" and chunk.text and (text := stops.feed(chunk.text)):
                    for event in writer.text_delta(text):
                        yield event
                chunk = await anext(stream, None)
        except StreamInterrupted as exc:
            await committed(gw)
            yield error_event(f"{exc} — the partial answer above is incomplete")
            return
        if held := stops.flush():
            for event in writer.text_delta(held):
                yield event
        writer.stop_sequence = stops.matched
        closing = writer.closing(stream.response)
        await committed(gw)
        for event in closing:
            yield event
    finally:
        await stream.aclose()
