"""Azure OpenAI's deployment paths: ``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` (and
``/completions``, ``/embeddings``), the key in an ``api-key`` header — what openai-python's ``AzureOpenAI`` client sends
(it builds the path from ``azure_endpoint`` and the ``model`` of each call), and LangChain's ``AzureChatOpenAI``, n8n's
and Open WebUI's Azure connections on it.

Azure's REST reference (learn.microsoft.com, azure/ai-services/openai/reference, "Chat completions": ``POST
{endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=2024-10-21``; "Authentication": an
``api-key`` header, or ``Authorization: Bearer`` with a Microsoft Entra token) names the model by the deployment in the
path; the body is OpenAI's, its ``model`` optional and not read. So here: the deployment is the agent or model asked
for (whatever the body's ``model`` says), the key is read from ``api-key`` as from a bearer token, and the answer is
the OpenAI endpoint's own. ``api-version`` is not read: the shapes served are the same under every version. They were
a 404 that told the client how to set itself up as an OpenAI connection instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.gateway import completions, embeddings_route, text_completions_route
from modelyard.gateway.embeddings_wire import parse_embeddings_body
from modelyard.gateway.responses import until_drained
from modelyard.gateway.text_completions_wire import parse_completion_body
from modelyard.gateway.wire import parse_body

if TYPE_CHECKING:
    from modelyard.gateway.app import Gateway

#: where Azure's clients send the key (its REST reference's ``api-key``)
KEY_HEADER = "api-key"
#: the paths served, below ``/openai/deployments/{deployment}/``
SERVED = ("chat/completions", "completions", "embeddings")

B = TypeVar("B")


def named(raw: bytes, deployment: str) -> bytes:
    """The body with ``model`` set to the deployment: written last, the value a JSON object's repeated key takes in
    the gateway's parser (pydantic's), so it wins over the body's own ``model`` without the body parsed twice — and a
    number in it past 64 bits (a client's 10**30 ``max_tokens``) is left as written, where a JSON round trip would
    make it a float. A body that is no JSON object is left as it came, for its parser's 400."""
    body = raw.rstrip()
    if not body.endswith(b"}"):
        return raw
    inner = body[:-1].rstrip()
    return inner + (b"" if inner.endswith(b"{") else b",") + b'"model":' + orjson.dumps(deployment) + b"}"


def _parse(parse: Callable[[bytes], B], deployment: str) -> Callable[[bytes], B]:
    def parse_named(raw: bytes) -> B:
        return parse(named(raw, deployment))
    return parse_named


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def azure_chat(request: Request) -> Response:
    gw = _gateway(request)
    deployment = request.path_params["deployment"]
    return await until_drained(gw.drain, completions._answer(gw, request, _parse(parse_body, deployment), KEY_HEADER))


async def azure_completions(request: Request) -> Response:
    gw = _gateway(request)
    deployment = request.path_params["deployment"]
    return await until_drained(gw.drain, text_completions_route._answer(
        gw, request, fim=False, parse=_parse(parse_completion_body, deployment), key_header=KEY_HEADER))


async def azure_embeddings(request: Request) -> Response:
    gw = _gateway(request)
    deployment = request.path_params["deployment"]
    parse = _parse(parse_embeddings_body, deployment)
    return await until_drained(gw.drain, embeddings_route._openai(gw, request, parse, KEY_HEADER))
