"""Envoy's 503 local reply (the proxy in front of vLLM under Istio, KServe, Knative) says why it got no answer from
the server behind it; the row says that, not ``overloaded`` (tests/fakes/envoy.py for the bodies and where users
quote them). Before, each was ``overloaded`` — "the model is busy" — where the backend was down
(``connection failure``, ``no healthy upstream``: ``connect_error``) or had dropped the connection (``connection
termination``, ``remote reset``: ``connection_dropped``); Envoy's own circuit breaker (``overflow``) is busy indeed.
Asked again once either way (retries: 1), then the next model; failed on the old code for all but overflow.
"""

from __future__ import annotations

import pytest
from tests.fakes.envoy import BODIES, envoy_503
from tests.fakes.fixed_reply import routed_once

SAYS = {"connection termination": "connection_dropped", "connection failure": "connect_error",
        "no healthy upstream": "connect_error", "remote reset": "connection_dropped", "overflow": "overloaded"}


@pytest.mark.parametrize("reset", list(BODIES))
async def test_envoys_503_says_what_happened_behind_it(reset: str) -> None:
    routed = await routed_once(envoy_503(BODIES[reset]), {"retries": {"attempts": 1, "backoff": 0.01, "max_wait": 1}})
    reason = SAYS[reset]
    assert [(a.model, a.outcome, a.reason) for a in routed.record.attempts] == [
        ("primary", "retry", reason), ("primary", "fallback", reason), ("backup", "ok", None)]
    assert BODIES[reset][:60] in routed.record.attempts[0].detail
    assert routed.response.text == "backup answer"
