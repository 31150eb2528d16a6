"""Envoy's local reply when it gets no answer's head from the backend behind it (Istio's sidecar and gateways, KServe,
Knative): a 503 in plain text naming the reset, as Envoy writes it (``server: envoy``). The bodies are the ones users
quote: "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
(istio/istio#27513, #49909), "… reset reason: connection failure" (istio/istio#22651, kserve/website#236), newer Envoy's
"… retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error:
111", "no healthy upstream" (envoyproxy/envoy#2990) and its circuit breaker's "… reset reason: overflow"."""

from __future__ import annotations

from tests.fakes.fixed_reply import FixedReply

RESET = "upstream connect error or disconnect/reset before headers. "
BODIES = {
    "connection termination": RESET + "reset reason: connection termination",
    "connection failure": RESET + "retried and the latest reset reason: remote connection failure, transport failure "
                                  "reason: delayed connect error: 111",
    "no healthy upstream": "no healthy upstream",
    "remote reset": RESET + "reset reason: remote reset",
    "overflow": RESET + "reset reason: overflow",
}


def envoy_503(body: str) -> FixedReply:
    """A server answering every request with Envoy's 503 local reply ``body``, with Envoy's headers."""
    data = body.encode()
    return FixedReply(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: %d\r\ncontent-type: text/plain\r\n"
                      b"date: Wed, 02 Dec 2026 12:00:00 GMT\r\nserver: envoy\r\n\r\n" % len(data) + data)
