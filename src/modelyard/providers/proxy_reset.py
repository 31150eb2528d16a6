"""Envoy's own 503s, read for what they say happened (Istio, KServe, Knative and Envoy Gateway put it in front of
vLLM and TGI): its local reply when it could not get an answer's head from the backend names why, and a 503 read as
``overloaded`` said a model was busy where the server behind the proxy was down or had dropped the connection.

"upstream connect error or disconnect/reset before headers. reset reason: connection termination" (istio/istio#27513,
#49909, #52456 — a backend that closed a kept-alive connection as Envoy reused it, or restarted), "… reset reason:
connection failure" (istio/istio#22651, kserve/website#236: nothing listening), "… reset reason: remote reset"
(istio/istio#37739), newer Envoy's "retried and the latest reset reason: remote connection failure, transport failure
reason: delayed connect error: 111", and "no healthy upstream" (envoyproxy/envoy#2990 and the Istio sidecar's
every-endpoint-down reply). "overflow" is Envoy's own circuit breaker: busy indeed, ``overloaded`` as before.
"""

from __future__ import annotations

import re

from modelyard.errors import Reason

_RESET = re.compile(r"upstream connect error or disconnect/reset before headers\.\s*(?:retried and the latest )?"
                    r"reset reason: ([a-z ]+)")
#: Envoy's reset reasons (``Http::StreamResetReason``'s words in its local reply), by what they say of the backend
_BY_WORDS = (("connection timeout", Reason.CONNECT_TIMEOUT), ("connection failure", Reason.CONNECT_ERROR),
             ("overflow", Reason.OVERLOADED), ("connection termination", Reason.CONNECTION_DROPPED),
             ("reset", Reason.CONNECTION_DROPPED), ("protocol error", Reason.CONNECTION_DROPPED))


def proxy_reset(message: str) -> Reason | None:
    """The reason Envoy's 503 body ``message`` states, or None when it is not one of Envoy's local replies."""
    if message.strip() == "no healthy upstream":
        return Reason.CONNECT_ERROR
    found = _RESET.search(message)
    if found is None:
        return None
    said = found.group(1)
    return next((reason for words, reason in _BY_WORDS if words in said), Reason.CONNECTION_DROPPED)
