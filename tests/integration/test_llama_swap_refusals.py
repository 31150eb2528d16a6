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
