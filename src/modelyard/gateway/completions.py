"""``POST /v1/chat/completions``: an OpenAI request in, routed through an agent's chain, OpenAI out.

Non-streaming requests use :meth:`Router.complete`, which buffers the whole answer and so can
still fall back after a model produced tokens. Streaming requests use :meth:`Router.stream`:
the response starts (status and routing headers) only once a model has committed to the
answer, so a chain that fails before that still gets a proper error status (``exhausted.py``); a
model that breaks off after committing ends the stream with an OpenAI-shaped error event instead of
``[DONE]``. The steps shared with ``/v1/responses`` (key, body, agent, errors) are in ``intake.py``.

Flush-before-report: the routing row of an answered request is committed before the answer
is delivered (before the JSON body, or before the final ``[DONE]``). The log writer commits
whatever is queued in one transaction, and every waiting request is released by that one
commit (group commit), so under load the wait is shared rather than paid per request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.drain import SHUTTING_DOWN
from modelyard.gateway.intake import committed, complete, intake, start_stream
from modelyard.gateway.responses import (
    SSEResponse,
    json_response,
    route_headers,
    until_drained,
)
from modelyard.gateway.stops import StopCutter, cut
from modelyard.gateway.tool_text import accept_for
from modelyard.gateway.wire import (
    DONE,
    ChatCompletionBody,
    ChunkWriter,
    completion,
    error_event,
    finish_reason,
    parse_body,
    to_chat_request,
)
from modelyard.router import RoutedStream, StreamInterrupted
from modelyard.router.records import new_request_id
from modelyard.types import ChatRequest, ChatResponse, Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway

#: how an OpenAI stream (chat or text completions) ends when the server shuts down under it (gateway/drain.py)
SHUTDOWN_EVENT = error_event(SHUTTING_DOWN + " — the partial answer above is incomplete", "server_error",
                              "shutting_down")


def interrupted_event(exc: Exception) -> bytes:
    """How an OpenAI stream (chat or text completions) ends when its model broke off after the answer began: the
    200 is already sent, so the error is the stream's last event."""
    return error_event(f"{exc} — the partial answer above is incomplete", "server_error", "stream_interrupted")


async def chat_completions(request: Request) -> Response:
    return await answer_chat(request)


def answer_chat(request: Request) -> Awaitable[Response]:
    """The request's answer, to await: what the app's dispatch of hot routes calls, one coroutine (its frame, and
    a layer each resumption of the request passes through) fewer than :func:`chat_completions` (issue #15)."""
    gw: Gateway = request.scope["app"].gateway
    return until_drained(gw.drain, _answer(gw, request))


async def _answer(gw: Gateway, request: Request, parse: Callable[[bytes], ChatCompletionBody] = parse_body,
                  key_header: str = "") -> Response:
    """``parse`` and ``key_header``: Azure OpenAI's path's (gateway/azure.py), the deployment its model."""
    request_id = new_request_id()
    taken = await intake(gw, request, parse, to_chat_request, request_id, key_header=key_header)
    if isinstance(taken, Response):
        return taken
    body, agent, chat = taken
    created = int(time.time())
    accept = accept_for(gw.config, chat)
    fields = body.__dict__  # where pydantic keeps them: a plain dict read, not BaseModel's attribute hook (issue #15)
    stream, stop = fields["stream"], fields["stop"]
    if stream and accept is None:
        stops = StopCutter(body.stop_sequences) if stop else None
        return await _streamed(gw, request, agent, chat, request_id, created, _include_usage(fields), stops)
    # with tools offered, the whole answer is checked before any of it is sent (the tool-calling trap:
    # a call written as plain text must fall back, not reach the client as text), so it is buffered
    routed = await complete(gw, request, agent, chat, request_id, accept)
    if isinstance(routed, Response):
        return routed
    record = routed.record
    response = routed.response
    if stop and not response.tool_calls:  # the client's stop sequences, cut here (stops.py)
        response.text, matched = cut(response.text, body.stop_sequences)
        if matched is not None:
            response.stop_reason = "stop"
    # the answer is rendered while the writer commits its row (issue #15); it leaves only after the commit
    headers = route_headers(record, truncated=finish_reason(response) == "length")
    if stream:
        writer = ChunkWriter(request_id, created, record.model or "")
        answer: Response = SSEResponse(_replay(response, writer, _include_usage(fields)), headers,
                                           drain=gw.drain, final=SHUTDOWN_EVENT)
    else:
        answer = json_response(completion(record.id, created, record.model or "", response), headers=headers)
    await committed(gw)
    return answer


def _include_usage(fields: dict[str, Any]) -> bool:
    """``body.include_usage`` (wire.StopsAndUsage) from the body's fields: that property is a Python call and two
    reads through pydantic's attribute hook (issue #15); a ``stream_options`` given is read once."""
    options = fields["stream_options"]
    return options is not None and bool(options.__dict__["include_usage"])


async def _replay(response: ChatResponse, writer: ChunkWriter, include_usage: bool) -> AsyncGenerator[bytes, None]:
    """A buffered answer as the same SSE events a live stream would have produced."""
    yield writer.role()
    if response.thinking:
        yield writer.thinking(response.thinking)
    if response.text:
        yield writer.text(response.text)
    for call in response.tool_calls:
        yield writer.tool_call(call)
    yield writer.finish(finish_reason(response))
    if include_usage:
        yield writer.usage(response.usage)
    yield DONE


async def _streamed(gw: Gateway, request: Request, agent: str, chat: ChatRequest, request_id: str, created: int,
                    include_usage: bool, stops: StopCutter | None) -> Response:
    started = await start_stream(gw, request, agent, chat, request_id)
    if isinstance(started, Response):
        return started
    stream, first = started
    record = stream.record
    writer = ChunkWriter(request_id, created, record.model or "")
    return SSEResponse(_events(gw, stream, first, writer, include_usage, stops), route_headers(record),
                       drain=gw.drain, final=SHUTDOWN_EVENT)


async def _events(gw: Gateway, stream: RoutedStream, first: Chunk | None, writer: ChunkWriter,
                  include_usage: bool, stops: StopCutter | None = None) -> AsyncGenerator[bytes, None]:
    """``stops``: the text up to the client's first stop sequence (the router then closes the model's stream, unread:
    router/stop_watch.py)."""
    try:
        yield writer.role()
        chunk = first
        try:
            while chunk is not None:
                kind = chunk.kind
                if kind == "text":
                    if stops is None:
                        yield writer.text(chunk.text)
                    elif text := stops.feed(chunk.text):
                        yield writer.text(text)
                elif kind == "thinking":
                    yield writer.thinking(chunk.text)
                elif kind == "tool_call" and chunk.tool_call is not None:
                    yield writer.tool_call(chunk.tool_call)
                chunk = await anext(stream, None)
        except StreamInterrupted as exc:
            await committed(gw)
            yield interrupted_event(exc)
            return
        response = stream.response
        if first is None and response.thinking:  # the answer had no visible part: send what it had
            yield writer.thinking(response.thinking)
        if stops is not None and (held := stops.flush()):
            yield writer.text(held)
        yield writer.finish("stop" if stops is not None and stops.matched is not None else finish_reason(response))
        await committed(gw)
        if include_usage:
            yield writer.usage(response.usage)
        yield DONE
    finally:
        await stream.aclose()
