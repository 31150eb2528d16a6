"""llama-swap's refusals whose status says the request's fault when it is not (providers/llama_swap.py).

Shapes from llama-swap itself, replayed verbatim (``Fault.raw``) by the OpenAI-compatible fake in front of the router:

- a 400 with an empty body to a request in flight when another made llama-swap swap models: "sometimes the response
  to the POST request will be an HTTP 400 with an empty response body … Retrying the same request results in the
  expected successful response" (mostlygeek/llama-swap#635, open). Go's ``WriteHeader(400)`` with nothing written:
  ``content-length: 0``.
- a 400 "could not find suitable inference handler for <model>" in plain text (mostlygeek/llama-swap
  proxy/proxymanager.go at ccfba0df, ``sendErrorResponse``: ``c.String`` unless the request's Accept names
  application/json — modelyard sends ``*/*``) for a model its config does not name.

A 400 that says why (llama-server's ``format_error_response``, ``invalid_request_error``) stays a ``bad_request``: the
next model at once, no retry, nothing cooled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fakes import Fault
from tests.integration.test_fault_shapes import _reset, routed_by, servers  # noqa: F401 - fixtures

from modelyard.ledger import LogWriter
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "How does model swapping work?")])
#: llama-server's own 400, which says why (tools/server: format_error_response)
WORDED_400 = ('{"error": {"code": 400, "message": "\'messages\' must be an array", '
              '"type": "invalid_request_error"}}')


def _attempts(record: Any) -> list[tuple[str, str, str | None]]:
    return [(a.model, a.outcome, a.reason) for a in record.attempts]


async def test_an_empty_400_while_llama_swap_swaps_is_asked_again_and_a_worded_one_is_not(
        servers: dict[str, Any], routed_by: Callable[[str], tuple[Router, LogWriter]]) -> None:  # noqa: F811
    router, _ = routed_by("openai")
    servers["openai"].push(Fault.raw(400, headers={"content-length": "0"}))
    routed = await router.complete("agent", REQ)
    assert _attempts(routed.record) == [("primary", "retry", "server_error"), ("primary", "ok", None)]
    assert "empty" in (routed.record.attempts[0].detail or ""), routed.record.attempts[0].detail
    assert routed.response.text == "Hello from the primary."
    assert servers["backup"].requests == []
    # a 400 that says why is the request's: not asked again, the next model at once
    servers["openai"].push(Fault.raw(400, WORDED_400, headers={"content-type": "application/json"}))
    routed = await router.complete("agent", REQ)
    assert _attempts(routed.record) == [("primary", "fallback", "bad_request"), ("backup", "ok", None)]


async def test_llama_swaps_no_handler_400_is_a_model_not_there(
        servers: dict[str, Any], routed_by: Callable[[str], tuple[Router, LogWriter]]) -> None:  # noqa: F811
    router, _ = routed_by("openai")
    servers["openai"].push(Fault.raw(400, "could not find suitable inference handler for local",
                                     headers={"content-type": "text/plain; charset=utf-8"}))
    routed = await router.complete("agent", REQ)
    assert _attempts(routed.record) == [("primary", "fallback", "model_missing"), ("backup", "ok", None)]
    # a model not there cools at once (errors.PERSISTENT): the next request goes straight to the backup
    again = await router.complete("agent", REQ)
    assert _attempts(again.record) == [("primary", "skipped", "cooling_down"), ("backup", "ok", None)]


def _sse(obj: Any) -> str:
    return "data: " + json.dumps(obj) + "\n\n"


def _loading(text: str) -> str:
    """One of llama-swap's loading-status events, as internal/router/loading.go's ``sendData`` marshals it."""
    return _sse({"choices": [{"delta": {"reasoning_content": text}}]})


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


async def test_llama_swaps_loading_status_is_not_the_models_thinking(
        servers: dict[str, Any], routed_by: Callable[[str], tuple[Router, LogWriter]]) -> None:  # noqa: F811
    """``sendLoadingState: true`` (llama-swap's config.example.yaml turns it on): the loading status streamed in
    ``reasoning_content`` ("━━━━━", "llama-swap loading model: local", dots, "Done! (1.20s)") before the upstream's
    own stream, in the same 200 body. It was read as the model's thinking — passed on, logged, counted; the model's
    own thinking, in a server's full chunk, is still kept."""
    router, _ = routed_by("openai")
    loading = [_loading(t) for t in ("━━━━━", "\n", "llama-swap loading model: local", "\n", ".", ".", "\n",
                                     "Done! (1.20s)", "\n", "━━━━━", "\n", " ", "\n")]
    upstream = [_chunk({"role": "assistant", "reasoning_content": "Thinking it over."}),
                _chunk({"content": "Models swap on demand."}), _chunk({}, "stop"), "data: [DONE]\n\n"]
    servers["openai"].push(Fault.raw(200, *loading, *upstream,
                                     headers={"content-type": "text/event-stream", "cache-control": "no-cache"}))
    routed = await router.complete("agent", REQ)
    assert _attempts(routed.record) == [("primary", "ok", None)]
    assert routed.response.text == "Models swap on demand."
    assert routed.response.thinking == "Thinking it over.", routed.response.thinking
