"""The status of "no model could answer" follows the attempts' reasons (gateway/exhausted.py, issue 14.7).

The row order of the README's table is the order of these checks: one transient attempt makes the
failure worth retrying; a spent deadline never is; unusable answers and refused requests are not;
a setup that cannot serve is 424. A cooldown opened by a revoked key or a missing model counts as
that failure, not as a transient one.
"""

from __future__ import annotations

import pytest
from tests.helpers import ScriptedProvider, make_config

from modelyard.errors import Reason
from modelyard.gateway.exhausted import verdict
from modelyard.outcomes import AttemptOutcome
from modelyard.router.clock import ManualClock
from modelyard.router.pool import ModelPool
from modelyard.router.records import Attempt, RequestRecord

SKIPPED = {Reason.MISSING_CREDENTIALS, Reason.UNAVAILABLE, Reason.COOLING_DOWN, Reason.DEADLINE, Reason.SPEND_CAP}


def pool_of() -> tuple[ModelPool, ManualClock]:
    clock = ManualClock()
    config = make_config({"a": {"provider": "openai"}, "b": {"provider": "openai"}}, {"x": {"primary": "a"}},
                         defaults={"cooldown": {"failures": 1, "seconds": 12, "max_seconds": 300}})
    providers = {n: ScriptedProvider(n, config.models[n]) for n in ("a", "b")}
    return ModelPool(config, providers=providers, clock=clock), clock


def record(*attempts: tuple[str, Reason]) -> RequestRecord:
    r = RequestRecord(id="r", agent="x")
    r.attempts = [Attempt(m, "openai", AttemptOutcome.SKIPPED if why in SKIPPED else AttemptOutcome.FALLBACK, why)
                  for m, why in attempts]
    return r


@pytest.mark.parametrize(("attempts", "status", "code"), [
    ([("a", Reason.MISSING_CREDENTIALS)], 424, "no_model_available"),
    ([("a", Reason.AUTH_ERROR), ("b", Reason.MODEL_MISSING)], 424, "no_model_available"),
    ([("a", Reason.SPEND_CAP), ("b", Reason.MISSING_CREDENTIALS)], 424, "no_model_available"),
    ([("a", Reason.MISSING_CREDENTIALS), ("b", Reason.BAD_REQUEST)], 400, "rejected_by_models"),
    ([("a", Reason.MALFORMED_RESPONSE), ("b", Reason.AUTH_ERROR)], 502, "unusable_answer"),
    ([("a", Reason.MISSING_CREDENTIALS), ("b", Reason.SERVER_ERROR)], 503, "chain_exhausted"),
    ([("a", Reason.QUEUE_TIMEOUT), ("b", Reason.UNUSABLE_REPLY)], 503, "chain_exhausted"),
    ([("a", Reason.FIRST_TOKEN_TIMEOUT), ("b", Reason.DEADLINE)], 504, "deadline_exceeded"),
])
def test_the_first_matching_row_wins(attempts, status, code):
    pool, _ = pool_of()
    v = verdict(record(*attempts), pool)
    assert (v.status, v.code) == (status, code)
    assert v.retryable == (status == 503)
    assert v.headers()["x-should-retry"] == ("true" if status == 503 else "false")


def test_retry_after_is_the_soonest_cooldown_end():
    pool, clock = pool_of()
    pool.local("a").health.failure(Reason.SERVER_ERROR)  # opens for 12 s
    clock.advance(2.5)
    v = verdict(record(("a", Reason.COOLING_DOWN), ("b", Reason.QUEUE_TIMEOUT)), pool)
    assert v.status == 503 and v.retry_after == 1  # b is merely busy: a slot is about a second away
    v = verdict(record(("a", Reason.COOLING_DOWN), ("b", Reason.MISSING_CREDENTIALS)), pool)
    assert v.status == 503 and v.retry_after == 10  # ceil(9.5): when a's probe may go


def test_a_cooldown_after_a_revoked_key_is_not_worth_a_retry():
    pool, _ = pool_of()
    pool.local("a").health.failure(Reason.AUTH_ERROR)  # opens for max_seconds
    v = verdict(record(("a", Reason.COOLING_DOWN)), pool)
    assert (v.status, v.retry_after) == (424, None)
