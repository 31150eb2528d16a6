"""What a client is told when no model could answer: a status that says whether retrying helps.

The official OpenAI and Anthropic SDKs retry 408, 409, 429 and every 5xx on their own (twice by
default), unless the response carries ``x-should-retry: false``. A blanket 503 therefore turned
one call to a model whose key is missing into three failed rows, and a 300 s deadline into 338 s
for the caller. So the status follows the reasons of the attempts (:func:`verdict`; the first
matching row wins):

=======  ======================  ===========================================================
status   code                    when
=======  ======================  ===========================================================
504      deadline_exceeded       the agent's ``timeouts.total`` ran out: a retry would overrun it
503      chain_exhausted         something transient stopped a model (busy, cooling down after
                                 errors, connect error, timeout, 429/5xx): ``Retry-After`` says
                                 when the soonest model is expected back
502      unusable_answer         the models answered, but nothing usable (malformed, too large,
                                 a tool call written as text): the same answer would come again
400      rejected_by_models      the models that were asked refused this request (4xx, e.g. the
                                 prompt is too long), the others cannot serve: it must change
424      no_model_available      no model can serve at all: key missing or refused, model not
                                 installed, cannot run here — someone must fix the setup
=======  ======================  ===========================================================

Every status but 503 carries ``x-should-retry: false`` (the SDKs obey it, 5xx included); 503
carries ``x-should-retry: true`` and ``Retry-After``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.responses import Response

from modelyard.errors import PERSISTENT, Reason
from modelyard.gateway.responses import attempts_out, error_response, route_headers
from modelyard.router.pool import ModelPool
from modelyard.router.records import ChainExhausted, RequestRecord

#: a property of the setup, not of the moment: retrying the same request cannot help
_SETUP = frozenset({Reason.MISSING_CREDENTIALS, Reason.UNAVAILABLE, Reason.AUTH_ERROR, Reason.MODEL_MISSING,
                    Reason.SPEND_CAP})
#: the model answered, but with nothing usable; the router does not retry these either
_UNUSABLE = frozenset({Reason.MALFORMED_RESPONSE, Reason.RESPONSE_TOO_LARGE, Reason.UNUSABLE_REPLY})
#: a model busy with other requests frees a slot within about this long (Retry-After's floor)
_BUSY_RETRY_S = 1


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int
    code: str
    #: seconds for ``Retry-After``; None when a retry cannot help
    retry_after: int | None

    @property
    def retryable(self) -> bool:
        return self.retry_after is not None

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {"x-should-retry": "false"}
        return {"x-should-retry": "true", "retry-after": str(self.retry_after)}


def _permanent(reason: Reason | None, pool: ModelPool, model: str) -> bool | None:
    """True: this attempt failed for a reason a retry cannot fix; False: it could; None: says nothing."""
    if reason is None:
        return None
    if reason in _SETUP or reason is Reason.BAD_REQUEST or reason in _UNUSABLE:
        return True
    if reason is Reason.COOLING_DOWN:
        # skipped: a cooldown opened by a revoked key or a missing model lasts max_seconds and ends
        # in the same failure; any other cooldown ends in a probe that may well succeed
        return pool[model].cooling()[1] in PERSISTENT if model in pool.states else False
    return False  # busy, cooling down after errors, connect errors, timeouts, 429/5xx: a retry may find it well


def _retry_after(record: RequestRecord, pool: ModelPool) -> int:
    """The soonest a model that failed transiently may serve again: its cooldown's end, or a freed slot."""
    soonest: float | None = None
    for model in dict.fromkeys(a.model for a in record.attempts if _permanent(a.reason, pool, a.model) is False):
        left = pool[model].cooling()[0] if model in pool.states else 0.0
        wait = left if left > 0 else _BUSY_RETRY_S
        soonest = wait if soonest is None else min(soonest, wait)
    return max(1, math.ceil(soonest if soonest is not None else _BUSY_RETRY_S))


def verdict(record: RequestRecord, pool: ModelPool) -> Verdict:
    """The status, error code and retry advice for a request whose whole chain failed."""
    reasons = [a.reason for a in record.attempts if a.reason is not None]
    if Reason.DEADLINE in reasons:
        return Verdict(504, "deadline_exceeded", None)
    if any(_permanent(a.reason, pool, a.model) is False for a in record.attempts):
        return Verdict(503, "chain_exhausted", _retry_after(record, pool))
    if any(r in _UNUSABLE for r in reasons):
        return Verdict(502, "unusable_answer", None)
    if Reason.BAD_REQUEST in reasons:  # the models that could serve refused it (the others cannot serve at all)
        return Verdict(400, "rejected_by_models", None)
    return Verdict(424, "no_model_available", None)


def exhausted_response(exc: ChainExhausted, pool: ModelPool) -> Response:
    """The OpenAI-shaped error for ``exc``, with the attempts, the routing headers and the retry advice."""
    v = verdict(exc.record, pool)
    return error_response(v.status, str(exc), code=v.code, headers={**route_headers(exc.record), **v.headers()},
                          attempts=attempts_out(exc.record), retryable=v.retryable)
