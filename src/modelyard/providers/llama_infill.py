"""llama.cpp server's own fill-in-the-middle, ``POST /infill``: where a FIM request (a prompt and a ``suffix``) goes
when the server's OpenAI-compatible ``/v1/completions`` refuses ``suffix``.

llama-server refuses it there — 400 "Unsupported param: suffix" (tools/server utils, ``unsupported_params {"best_of",
"suffix"}``; Docker Model Runner, built on it, likewise: docker/model-runner#403) — and serves FIM on ``/infill``
instead, which takes the text before and after the gap as ``input_prefix`` and ``input_suffix`` and puts them in the
model's own FIM tokens from the GGUF vocabulary (tools/server/README.md, "POST /infill"; the endpoint llama.vscode
and minuet-ai.nvim#129 use). A model without those tokens is refused there, 501 ``not_supported_error`` "Infill is not
supported by this model: prefix token is missing. ". vLLM refuses ``suffix`` too (400 "suffix is not currently
supported", serving_completion.py) and has no ``/infill``.

Before, the 400 was a bad_request: a chain ending on a llama-server told Continue's autocomplete, on every keystroke,
that its own request was wrong. Now the provider asks ``/infill`` once the server has refused ``suffix`` (and from then
on at once); a server with no ``/infill``, or a model with no FIM tokens, refuses the attempt as the request's (the
chain moves on; the model stays in service).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from modelyard.config.schema import Timeouts
from modelyard.errors import ProviderError, Reason
from modelyard.providers.error_words import error_words
from modelyard.providers.http import HttpClient, error_field, loads
from modelyard.providers.sampling import put_native
from modelyard.tokens import request_tokens
from modelyard.types import ChatRequest, Chunk, Usage

#: the servers' words for a ``suffix`` they do not take on ``/v1/completions``: llama-server's, vLLM's
SUFFIX_REFUSALS = ("Unsupported param: suffix", "suffix is not currently supported")

#: llama-server's ``stop_type`` on its last chunk, as the OpenAI shape names it ("none": the stream was cut)
_STOPS = {"eos": "stop", "word": "stop", "limit": "length"}


def refuses_suffix(error: ProviderError) -> bool:
    """The server refused the request's ``suffix``, and nothing else of it."""
    return error.reason is Reason.BAD_REQUEST and any(words in error.message for words in SUFFIX_REFUSALS)


def server_root(endpoint: str) -> str:
    """Where llama-server's own endpoints are: the endpoint without its ``/v1`` (``/infill`` sits beside ``/v1``, under
    an ``--api-prefix`` if the server has one). The query stays, as on every call (providers/http.py ``joined``)."""
    url = urlsplit(endpoint)
    path = url.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urlunsplit((url.scheme, url.netloc, path, url.query, ""))


def infill_body(request: ChatRequest) -> dict[str, Any]:
    """``/infill``'s body: the gap's two sides, streamed, with the request's budget and temperature (``n_predict``
    is llama-server's ``max_tokens``)."""
    prompt = request.prompt
    assert prompt is not None
    body: dict[str, Any] = {"input_prefix": prompt.text, "input_suffix": prompt.suffix, "stream": True}
    if prompt.extra:  # other files as context: llama-server puts them before the prefix (its input_extra)
        body["input_extra"] = [{"filename": name, "text": text} for name, text in prompt.extra]
    if request.max_tokens:
        body["n_predict"] = request.max_tokens
    put_native(request, body)
    if request.logit_bias is not None:  # /infill takes /completion's options, logit_bias among them
        body["logit_bias"] = request.logit_bias
    return body


def _extract(data: Any) -> tuple[str, str]:
    """(type, message) of llama-server's error object, ``{"error": {"code", "message", "type"}}``."""
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("type") or ""), error_words(err)
    return "", str(err)


async def infill(client: HttpClient, request: ChatRequest, timeouts: Timeouts, limit: int
                 ) -> AsyncGenerator[Chunk, None]:
    """The answer from ``/infill``: llama-server's native stream (``data: {"content", "stop": false}`` events, a last
    one with ``"stop": true``, ``stop_type``, ``tokens_evaluated`` and ``tokens_predicted``; no ``[DONE]``), or its
    whole JSON object. A server without ``/infill`` (404, 405) or a model without FIM tokens (501) refuses the
    attempt as the request's: bad_request, so the next model in the chain is asked and this one is not counted
    against."""
    usage: Usage | None = None
    finish, finished, pieces = "", False, 0
    try:
        async with client.stream("/infill", infill_body(request), timeouts, _extract, limit=limit) as resp:
            batches = resp.whole_json() if resp.is_json else resp.sse_batches("an event stream")
            async for events in batches:
                for field, payload in events:
                    if field != "data" or payload.strip() == "[DONE]":
                        continue
                    data = loads(payload, "SSE data")
                    if not isinstance(data, dict):
                        raise ProviderError(Reason.MALFORMED_RESPONSE, "an /infill event is not an object")
                    if data.get("error"):
                        raise error_field(payload)
                    text = data.get("content")
                    if text is not None and type(text) is not str:
                        raise ProviderError(Reason.MALFORMED_RESPONSE, "an /infill event's content is not a string")
                    if text:
                        pieces += 1
                        yield Chunk("text", text)
                    if data.get("stop") is True:
                        finished = resp.answered = True
                        finish = _STOPS.get(str(data.get("stop_type") or "eos"), "stop")
                        usage = _usage(data)
                if finished:
                    break
    except ProviderError as exc:
        if exc.status in (404, 405, 501):
            raise ProviderError(Reason.BAD_REQUEST, _refused(exc), status=exc.status) from exc
        raise
    if not finished:
        raise ProviderError(Reason.CONNECTION_DROPPED, "the /infill stream ended before its last event")
    yield Chunk("usage", "", None, usage or Usage(request_tokens(request), pieces))
    yield Chunk("done", "", None, None, finish)


def _usage(data: dict[str, Any]) -> Usage | None:
    evaluated, predicted = data.get("tokens_evaluated"), data.get("tokens_predicted")
    if type(evaluated) is int and type(predicted) is int and evaluated >= 0 and predicted >= 0:
        return Usage(evaluated, predicted)
    return None


def _refused(exc: ProviderError) -> str:
    if exc.status == 501:
        return f"{exc.message} (the model has no fill-in-the-middle tokens; another model may fill the gap)"
    return ("the server takes no suffix on /v1/completions and serves no /infill: it cannot fill in the middle; "
            "another model may")
