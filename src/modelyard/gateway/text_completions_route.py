"""``POST /v1/completions``: OpenAI's legacy text completions (the ``openai`` SDK's ``completions.create``,
LangChain's ``OpenAI`` LLM, code-completion clients sending ``prompt`` + ``suffix``), and ``POST /v1/fim/completions``
(Mistral's FIM API, Continue's ``openai`` provider), on the router path every other model endpoint takes.

Same rules as chat completions (``intake.py``): the key, the bounded body, the agent (or ``auto``) from
``model``, OpenAI-shaped errors with the attempts when no model could answer, the routing headers, the
routing row committed before the answer's last event, and a client that goes away cancels the upstream
call. A stream starts only once a model has committed to the answer; one that breaks off after that ends
with an OpenAI error event instead of ``[DONE]``. Only the wire format differs (``text_completions_wire.py``).
A list of prompts is answered by one routed request each (each its own row), side by side within the first
model's slots (``prompt_batch.py``), a choice each, in order; streamed, choice by choice, the later ones read ahead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway.completions import SHUTDOWN_EVENT, interrupted_event
from modelyard.gateway.disconnect import ClientGone, until_disconnect
from modelyard.gateway.intake import CLIENT_CLOSED, committed, exhausted, intake, start_stream
from modelyard.gateway.prompt_batch import ReadAhead, answered, batch_width
from modelyard.gateway.responses import SSEResponse, json_response, route_headers, until_drained
from modelyard.gateway.stops import StopCutter, cut
from modelyard.gateway.text_completions_wire import (
    LENGTH,
    Answer,
    CompletionBody,
    FimChunkWriter,
    TextChunkWriter,
    completion_finish,
    fim_completion,
    parse_completion_body,
    parse_fim_body,
    prompt_request,
    text_completion,
    to_chat_request,
)
from modelyard.gateway.wire import DONE, error_event
from modelyard.router import ChainExhausted, RoutedStream, StreamInterrupted
from modelyard.router.records import new_request_id
from modelyard.types import Chunk, Usage

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway


async def text_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return await until_drained(gw.drain, _answer(gw, request, fim=False))


async def fim_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return await until_drained(gw.drain, _answer(gw, request, fim=True))


async def _answer(gw: Gateway, request: Request, *, fim: bool,
                  parse: Callable[[bytes], CompletionBody] | None = None, key_header: str = "") -> Response:
    """``parse`` and ``key_header``: Azure OpenAI's path's (gateway/azure.py), the deployment its model."""
    request_id = new_request_id()
    taken = await intake(gw, request, parse or (parse_fim_body if fim else parse_completion_body), to_chat_request,
                         request_id, key_header=key_header)
    if isinstance(taken, Response):
        return taken
    body, agent, chat = taken
    created = int(time.time())
    if body.stream:  # no tools here: always streamed live
        # the prompts after the first asked at once beside it, within the first model's slots (prompt_batch.py)
        gate = asyncio.Semaphore(batch_width(gw, agent, len(body.texts)))
        await gate.acquire()  # the first prompt's place, given back once its answer is sent
        failed: list[Exception] = []
        ahead = [ReadAhead(gw, agent, prompt_request(body, text), new_request_id(), gate, failed)
                 for text in body.texts[1:]]
        opened = await start_stream(gw, request, agent, chat, request_id)
        if isinstance(opened, Response):
            await _close(ahead)
            return opened
        stream, first = opened
        writer = (FimChunkWriter if fim else TextChunkWriter)(request_id, created, stream.record.model or "")
        return SSEResponse(_events(gw, stream, first, writer, body, ahead, gate), route_headers(stream.record),
                           drain=gw.drain, final=SHUTDOWN_EVENT)
    asks = [(chat if i == 0 else prompt_request(body, text), request_id if i == 0 else new_request_id())
            for i, text in enumerate(body.texts)]  # one routed request each, side by side (prompt_batch.py)
    try:
        routeds = await until_disconnect(request.receive, answered(gw, agent, asks, batch_width(gw, agent, len(asks))),
                                         request.scope)
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    except ChainExhausted as exc:
        return await exhausted(gw, exc)
    answers: list[Answer] = []
    usage = Usage()
    record = routeds[0].record
    for text, routed in zip(body.texts, routeds, strict=True):
        response = routed.response
        cut_text, matched = cut(response.text, body.stop_sequences)
        answers.append((_echoed(body, text) + cut_text, completion_finish(response, stopped=matched is not None)))
        usage += response.usage
    shaped = fim_completion(request_id, created, record.model or "", answers, usage) if fim else \
        text_completion(request_id, created, record.model or "", answers, usage)
    answer = json_response(shaped, headers=route_headers(record, truncated=any(f == LENGTH for _, f in answers)))
    await committed(gw)
    return answer


def _echoed(body: CompletionBody, text: str) -> str:
    """``echo``: the prompt comes back before the answer."""
    return text if body.echo else ""


async def _close(ahead: list[ReadAhead]) -> None:
    """The prompts read ahead and not sent (the client went away, or a prompt failed): cancelled."""
    for later in ahead:
        await later.aclose()


async def _events(gw: Gateway, stream: RoutedStream, first: Chunk | None, writer: TextChunkWriter,
                  body: CompletionBody, ahead: list[ReadAhead], gate: asyncio.Semaphore
                  ) -> AsyncGenerator[bytes, None]:
    """Each prompt's text as it comes, up to the client's first stop sequence (the router then closes the model's
    stream: router/stop_watch.py); thinking is no part of a text completion. The prompts after the first are asked
    at once and read ahead (prompt_batch.py), sent in order; one that no model could answer ends the stream with an
    error event, and the ones after it are cancelled."""
    try:
        async for event in _choices(gw, stream, first, writer, body, ahead, gate):
            yield event
    finally:
        await _close(ahead)


async def _choices(gw: Gateway, stream: RoutedStream | ReadAhead, first: Chunk | None, writer: TextChunkWriter,
                   body: CompletionBody, ahead: list[ReadAhead], gate: asyncio.Semaphore
                   ) -> AsyncGenerator[bytes, None]:
    """The events of each prompt's choice in turn: the first's live, each later one from where its read-ahead is."""
    usage = Usage()
    for index, text in enumerate(body.texts):
        writer.index = index
        if index:
            try:
                stream = ahead[index - 1]
                first = await anext(stream, None)
            except ChainExhausted as exc:
                await stream.aclose()
                await committed(gw)
                yield error_event(f"prompt {index}: {exc} — the answers above are incomplete", "server_error",
                                  "chain_exhausted")
                return
        stops = StopCutter(body.stop_sequences)
        try:
            if echoed := _echoed(body, text):
                yield writer.text(echoed)
            chunk = first
            try:
                while chunk is not None:
                    if chunk.kind == "text" and chunk.text and (piece := stops.feed(chunk.text)):
                        yield writer.text(piece)
                    chunk = await anext(stream, None)
            except StreamInterrupted as exc:
                await committed(gw)
                yield interrupted_event(exc)
                return
            if held := stops.flush():
                yield writer.text(held)
            usage += stream.response.usage
            last = index == len(body.texts) - 1
            yield writer.finish(completion_finish(stream.response, stopped=stops.matched is not None),
                                usage if last else None)
        finally:
            await stream.aclose()
            if not index:
                gate.release()  # the first prompt's place: the next prompt read ahead may go
    await committed(gw)
    if body.include_usage and (event := writer.usage(usage)) is not None:
        yield event
    yield DONE
