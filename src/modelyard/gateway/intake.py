"""The steps every model endpoint (chat completions, responses) shares before and around routing:
key check, bounded body, validation, agent resolution — each refusal an OpenAI-shaped error — and a
buffered answer that a client hang-up cancels and an exhausted chain turns into its status.

One place, so ``/v1/chat/completions`` and ``/v1/responses`` cannot drift apart on who is let in,
which statuses they answer, or when the routing row is committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from modelyard.gateway.body import BodiesFull, BodyTooLarge, read_body
from modelyard.gateway.disconnect import LATE_BODY, ClientGone, until_disconnect
from modelyard.gateway.exhausted import exhausted_response
from modelyard.gateway.responses import error_response
from modelyard.gateway.routing import PICKED_BY_ORCHESTRATOR
from modelyard.gateway.tool_text import promote_text_calls
from modelyard.gateway.wire import BadRequest
from modelyard.router import ChainExhausted, RoutedStream
from modelyard.router.router import Accept, Routed
from modelyard.types import ChatRequest, Chunk

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway

#: nginx's "client closed request": logged by uvicorn, never seen by the (gone) client
CLIENT_CLOSED = 499
#: longest wait for the routing row's commit before answering anyway (only a stuck disk gets near it)
LOG_WAIT = 5.0
#: how long a request alone in flight waits for that commit blocking, on the loop's thread (ledger/writer.py)
SOLE_WAIT = 0.002


def committed(gw: Gateway) -> Awaitable[bool]:
    """Wait for the routing rows submitted so far to commit (flush-before-report).

    A request alone in flight waits blocking for up to ``SOLE_WAIT`` first (issue #15): the writer wakes
    the loop's thread directly instead of through the selector, its self-pipe and a loop iteration,
    ~0.1 ms less per answer at concurrency 1. The trade-off: for that bound nothing else on the loop
    runs — a request arriving meanwhile, a hang-up, the dashboard — which is why it is only taken
    when no other request is in flight, and never while the writer is stuck (a stalled disk stops the
    loop for at most one bound, then every wait is asynchronous until the writer catches up).
    """
    return gw.log.wait_written(LOG_WAIT, block=SOLE_WAIT if gw.drain.alone() else 0.0)


class Named(Protocol):
    model: str


B = TypeVar("B", bound=Named)


async def intake(gw: Gateway, request: Request, parse: Callable[[bytes], B],
                 translate: Callable[[B], ChatRequest], request_id: str, *, route: bool = True,
                 key_header: str = "") -> tuple[B, str, ChatRequest] | Response:
    """(body, agent, provider-neutral request), or the error response that refuses the request.
    ``model: auto``: the orchestrator's decision, logged under ``request_id`` (unless not ``route``).
    The key comes as a bearer token; with ``key_header`` also in that header — ``x-api-key`` on Anthropic's API,
    ``api-key`` on Azure OpenAI's paths (gateway/azure.py) — only there: each API takes the credential header its own
    clients send."""
    if gw.keys.required:  # no header is looked up on a gateway without keys (loopback)
        headers = request.headers
        presented = headers.get("authorization") or (_bearer(headers.get(key_header)) if key_header else None)
        if not gw.keys.allows(presented):
            return gw.unauthorized(header=key_header, sent_x_api_key="x-api-key" in headers)
    try:
        body = parse(await read_body(request, gw.request_limit, gw.bodies))
        agent = gw.resolve(body.model)
        if agent is None and body.model.endswith(":latest"):  # Ollama's tag, pasted: its endpoints ignore it too
            agent = gw.resolve(body.model.removesuffix(":latest"))
        if agent is None:
            return error_response(404, f"The model '{_shown(body.model)}' does not exist{gw.known_names(body.model)}",
                                  param="model", code="model_not_found")
        chat = translate(body)
    except BadRequest as exc:
        # every API's parser comes here: a client that sent no model (a script, a UI's empty model box) was told
        # only "model: Field required", not what to put there
        said = f"{exc.message} — put an agent's name there{gw.known_names('')}" if (
            exc.missing and exc.param == "model") else exc.message
        return error_response(400, said, param=exc.param, code="invalid_request")
    except BodyTooLarge as exc:
        return error_response(413, str(exc), code="request_too_large")
    except BodiesFull as exc:
        return error_response(503, str(exc), code="server_busy", headers=_TRY_AGAIN)
    except ClientDisconnect:  # gone before its body was whole, or its body too slow (gateway/transport.py)
        late = request.scope.get(LATE_BODY)
        if late is not None:  # still there: told why (it waited for good on a trickle, or was closed unanswered)
            late.answer()
            return error_response(408, late.why, code="request_timeout")
        return Response(status_code=CLIENT_CLOSED)  # was a traceback in the server's log ("Exception in ASGI")
    if agent == PICKED_BY_ORCHESTRATOR and route:
        try:  # the orchestrator's model, asked below its threshold, is cancelled as any model call is
            agent = await until_disconnect(request.receive, gw.routed_agent(chat, request_id), request.scope)
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
    return body, agent, chat


#: how soon a body refused for the bodies already coming may be sent again (they are read in about a second)
_TRY_AGAIN = {"retry-after": "1"}


#: the longest model name a 404 repeats whole (Ollama's longest tags, hf.co/…/…:quant, are ~150 characters)
_NAME_SHOWN = 200


def _shown(name: str) -> str:
    """A name the client sent, to repeat in an error: a megabyte of it was sent back whole, in every 404."""
    return name if len(name) <= _NAME_SHOWN else f"{name[:_NAME_SHOWN]}… ({len(name):,} characters)"


def _bearer(key: str | None) -> str | None:
    return f"Bearer {key}" if key else None


async def exhausted(gw: Gateway, exc: ChainExhausted) -> Response:
    await committed(gw)  # an error reaching the client is a response too: its row comes first
    return exhausted_response(exc, gw.router.pool)


async def complete(gw: Gateway, request: Request, agent: str, chat: ChatRequest, request_id: str,
                   accept: Accept | None) -> Routed | Response:
    """The whole answer, buffered (with tools offered it is checked before any of it is sent: the
    tool-calling trap, and a call the model was allowed to write as text is made a real one), or the
    response that ends the request: client gone, or no model could answer."""
    try:
        routed = await until_disconnect(request.receive, gw.router.complete(agent, chat, request_id=request_id,
                                                                             accept=accept), request.scope)
        if accept is not None:  # tools were offered
            routed.response = answer = promote_text_calls(chat, routed.response)
            if chat.single_tool_call and len(answer.tool_calls) > 1:  # the client takes one: the first, as asked
                answer.tool_calls = answer.tool_calls[:1]
        return routed
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    except ChainExhausted as exc:
        return await exhausted(gw, exc)


async def first_chunk(stream: RoutedStream) -> Chunk | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def start_stream(gw: Gateway, request: Request, agent: str, chat: ChatRequest,
                       request_id: str) -> tuple[RoutedStream, Chunk | None] | Response:
    """A stream that a model has committed to (and its first chunk), or the response that ends the request.

    The response's status and headers wait for that commit, so a chain that fails before it still
    gets a proper error status instead of a 200 that breaks off."""
    stream = gw.router.stream(agent, chat, request_id=request_id)
    try:
        return stream, await until_disconnect(request.receive, first_chunk(stream), request.scope)
    except ClientGone:
        await stream.aclose()
        return Response(status_code=CLIENT_CLOSED)
    except ChainExhausted as exc:
        await stream.aclose()
        return await exhausted(gw, exc)
