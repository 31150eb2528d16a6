"""``POST /v1/completions``: OpenAI's legacy text completions (the ``openai`` SDK's ``completions.create``,
LangChain's ``OpenAI`` LLM, code-completion clients sending ``prompt`` + ``suffix``) on the router path every
other model endpoint takes.

Same rules as chat completions (``intake.py``): the key, the bounded body, the agent (or ``auto``) from
``model``, OpenAI-shaped errors with the attempts when no model could answer, the routing headers, the
routing row committed before the answer's last event, and a client that goes away cancels the upstream
call. A stream starts only once a model has committed to the answer; one that breaks off after that ends
with an OpenAI error event instead of ``[DONE]``. Only the wire format differs (``text_completions_wire.py``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.completions import SHUTDOWN_EVENT
from modelyard.gateway.intake import committed, complete, intake, start_stream
from modelyard.gateway.responses import SSEResponse, json_response, route_headers, until_drained
from modelyard.gateway.stops import StopCutter, cut
from modelyard.gateway.text_completions_wire import (
    LENGTH,
    CompletionBody,
    TextChunkWriter,
    completion_finish,
    parse_completion_body,
    text_completion,
    to_chat_request,
)
from modelyard.gateway.wire import DONE, error_event
from modelyard.router import RoutedStream, StreamInterrupted
from modelyard.router.records import new_request_id
from modelyard.types import Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway


async def text_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return await until_drained(gw.drain, _answer(gw, request))


async def _answer(gw: Gateway, request: Request) -> Response:
    request_id = new_request_id()
    taken = await intake(gw, request, parse_completion_body, to_chat_request, request_id)
    if isinstance(taken, Response):
        return taken
    body, agent, chat = taken
    created = int(time.time())
    if body.stream:  # no tools here: always streamed live
        opened = await start_stream(gw, request, agent, chat, request_id)
        if isinstance(opened, Response):
            return opened
        stream, first = opened
        writer = TextChunkWriter(request_id, created, stream.record.model or "")
        return SSEResponse(_events(gw, stream, first, writer, body), route_headers(stream.record), drain=gw.drain,
                           final=SHUTDOWN_EVENT)
    routed = await complete(gw, request, agent, chat, request_id, None)
    if isinstance(routed, Response):
        return routed
    response = routed.response
    text, matched = cut(response.text, body.stop_sequences)
    finish = completion_finish(response, stopped=matched is not None)
    answer = json_response(
        text_completion(request_id, created, routed.record.model or "", _echoed(body) + text, finish, response.usage),
        headers=route_headers(routed.record, truncated=finish == LENGTH))
    await committed(gw)
    return answer


def _echoed(body: CompletionBody) -> str:
    """``echo``: the prompt comes back before the answer."""
    return body.text if body.echo else ""


async def _events(gw: Gateway, stream: RoutedStream, first: Chunk | None, writer: TextChunkWriter,
                  body: CompletionBody) -> AsyncGenerator[bytes, None]:
    """The text as it comes, up to the client's first stop sequence (the rest is read, for its row, not sent);
    thinking is no part of a text completion."""
    stops = StopCutter(body.stop_sequences)
    try:
        if echoed := _echoed(body):
            yield writer.text(echoed)
        chunk = first
        try:
            while chunk is not None:
                if chunk.kind == "text" and chunk.text and (text := stops.feed(chunk.text)):
                    yield writer.text(text)
                chunk = await anext(stream, None)
        except StreamInterrupted as exc:
            await committed(gw)
            yield error_event(f"{exc} — the partial answer above is incomplete", "server_error", "stream_interrupted")
            return
        if held := stops.flush():
            yield writer.text(held)
        yield writer.finish(completion_finish(stream.response, stopped=stops.matched is not None))
        await committed(gw)
        if body.include_usage:
            yield writer.usage(stream.response.usage)
        yield DONE
    finally:
        await stream.aclose()
