"""The chain walk: fallback reasons, retries, timeouts, cooldown and recovery, commit rule, logging once."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.helpers import ScriptedProvider, make_config

from modelyard.router import ChainExhausted, ModelPool, RequestRecord, Routed, Router, StreamInterrupted
from modelyard.router.clock import ManualClock, VirtualTimeLoop, loop_clock
from modelyard.types import ChatRequest, Chunk, Message, Usage

REQ = ChatRequest(messages=[Message("user", "hi")])


def build(primary_script=(), fallback_script=(), *, timeouts=None, retries=0, cooldown=None, max_concurrent=1,
          primary_default="ok", env=None, clock=loop_clock):
    models = {"a": {"provider": "openai", "max_concurrent": max_concurrent},
              "b": {"provider": "openai", "max_concurrent": 4}}
    if env:
        models["a"]["api_key_env"] = env
    defaults = {"timeouts": timeouts or {"queue": 1, "first_token": 1, "idle": 1, "total": 10},
                "retries": {"attempts": retries, "backoff": 0.01, "max_wait": 1},
                "cooldown": cooldown or {"failures": 2, "seconds": 0.2, "max_seconds": 1}}
    config = make_config(models, {"agent": {"primary": "a", "fallbacks": ["b"]}}, defaults=defaults)
    a = ScriptedProvider("a", config.models["a"], list(primary_script), text="from a", default=primary_default)
    b = ScriptedProvider("b", config.models["b"], list(fallback_script), text="from b")
    records: list[RequestRecord] = []
    pool = ModelPool(config, providers={"a": a, "b": b}, clock=clock)
    return Router(config, pool=pool, sink=records.append), a, b, records


async def test_primary_answers() -> None:
    router, a, b, records = build()
    routed = await router.complete("agent", REQ)
    assert routed.response.text == "from a"
    assert routed.record.outcome == "ok" and routed.record.model == "a"
    assert [x.outcome for x in routed.record.attempts] == ["ok"]
    assert records == [routed.record] and b.calls == 0


@pytest.mark.parametrize("reason", ["server_error", "overloaded", "rate_limited", "connect_error",
                                    "malformed_response", "auth_error", "stream_error"])
async def test_errors_fall_back_with_reason(reason: str) -> None:
    router, a, b, records = build([f"error:{reason}"])
    routed = await router.complete("agent", REQ)
    assert routed.response.text == "from b" and routed.record.outcome == "fallback"
    assert [(x.model, x.outcome, x.reason) for x in routed.record.attempts] == [
        ("a", "fallback", reason), ("b", "ok", None)]
    assert len(records) == 1


async def test_transient_error_is_retried_on_the_same_model_first() -> None:
    router, a, b, _ = build(["error:server_error"], retries=1)
    routed = await router.complete("agent", REQ)
    assert routed.record.model == "a" and routed.record.outcome == "ok"
    assert [x.outcome for x in routed.record.attempts] == ["retry", "ok"] and a.calls == 2 and b.calls == 0


def test_hang_before_first_token_falls_back_within_bound() -> None:
    # on virtual time: the wall clock's 0.5 <= elapsed < 2.5 failed when a loaded machine ran the loop 2 s late, and
    # told the bounds apart only by their distance; here the bound that fired is told by its exact time
    router, a, b, _ = build(["hang"], timeouts={"queue": 1, "first_token": 0.5, "idle": 5, "total": 30})
    loop = VirtualTimeLoop(0.0)
    try:
        routed = loop.run_until_complete(router.complete("agent", REQ))
        elapsed = loop.time()
        loop.run_until_complete(router.aclose())
    finally:
        loop.close()
    assert routed.response.text == "from b"
    assert routed.record.attempts[0].reason == "first_token_timeout"
    assert elapsed == pytest.approx(0.5)
    assert a.in_flight == 0  # the hung call was cancelled, not left running


async def test_stall_mid_answer_buffered_falls_back() -> None:
    router, *_ = build(["idle:5"], timeouts={"queue": 1, "first_token": 1, "idle": 0.1, "total": 10})
    routed = await router.complete("agent", REQ)
    assert routed.response.text == "from b" and routed.record.attempts[0].reason == "idle_timeout"


async def test_stall_mid_stream_is_interrupted_never_spliced() -> None:
    router, a, b, records = build(["idle:5"], timeouts={"queue": 1, "first_token": 1, "idle": 0.1, "total": 10})
    seen = ""
    stream = router.stream("agent", REQ)
    with pytest.raises(StreamInterrupted) as info:
        async for chunk in stream:
            seen += chunk.text
    assert seen == "from" and info.value.partial == "from"
    assert b.calls == 0  # no silent switch to another model
    assert records[0].outcome == "interrupted" and records[0].attempts[-1].reason == "idle_timeout"


async def test_failure_before_commit_still_falls_back_when_streaming() -> None:
    router, *_ = build(["error:overloaded"])
    stream = router.stream("agent", REQ)
    text = "".join([c.text async for c in stream if c.kind == "text"])
    assert text == "from b" and stream.record.outcome == "fallback"


async def test_missing_credentials_skipped_with_reason() -> None:
    router, a, b, _ = build(env="MODELYARD_TEST_MISSING_KEY")
    routed = await router.complete("agent", REQ)
    first = routed.record.attempts[0]
    assert (first.outcome, first.reason) == ("skipped", "missing_credentials")
    assert "MODELYARD_TEST_MISSING_KEY" in first.detail and a.calls == 0


async def test_cooldown_skips_then_probe_returns_traffic_to_primary() -> None:
    clock = ManualClock()
    router, a, b, _ = build(["error:server_error", "error:server_error"],
                            cooldown={"failures": 2, "seconds": 0.2, "max_seconds": 1}, clock=clock)
    await router.complete("agent", REQ)
    await router.complete("agent", REQ)
    calls = a.calls
    skipped = await router.complete("agent", REQ)
    assert skipped.record.attempts[0].reason == "cooling_down" and a.calls == calls
    clock.advance(0.25)
    back = await router.complete("agent", REQ)
    assert back.record.model == "a" and back.record.outcome == "ok"
    assert router.pool.local("a").health.state == "available"


async def test_cooldown_skip_is_fast() -> None:
    router, a, *_ = build(["error:server_error", "error:server_error"],
                          cooldown={"failures": 2, "seconds": 60, "max_seconds": 60})
    await router.complete("agent", REQ)
    await router.complete("agent", REQ)
    routed = await router.complete("agent", REQ)
    assert routed.record.attempts[0].reason == "cooling_down"
    assert routed.record.attempts[0].duration_ms is None


async def test_exhausted_chain_lists_every_attempt() -> None:
    router, *_ = build(["error:server_error"], ["error:overloaded"])
    with pytest.raises(ChainExhausted) as info:
        await router.complete("agent", REQ)
    text = str(info.value)
    assert "a: fallback (server_error" in text and "b: fallback (overloaded" in text
    assert info.value.record.outcome == "failed"


def test_queue_timeout_moves_to_fallback() -> None:
    # on virtual time: the wall clock's 0.1 <= waited < 0.4 left a loaded machine 0.3 s for the loop's lateness
    router, a, b, _ = build(["slow:0.5"], timeouts={"queue": 0.1, "first_token": 2, "idle": 2, "total": 10})

    async def both() -> tuple[Routed, Routed, float]:
        first = asyncio.create_task(router.complete("agent", REQ))
        await asyncio.sleep(0.02)
        start = loop.time()
        second = await router.complete("agent", REQ)
        waited = loop.time() - start
        return await first, second, waited

    loop = VirtualTimeLoop(0.0)
    try:
        first, second, waited = loop.run_until_complete(both())
        loop.run_until_complete(router.aclose())
    finally:
        loop.close()
    assert second.record.model == "b" and second.record.attempts[0].reason == "queue_timeout"
    assert waited == pytest.approx(0.1)  # the queue bound, not the 0.48 s the first request still held the slot
    assert first.record.model == "a"
    assert router.pool.local("a").health.state == "available"  # busy is not sick


async def test_unusable_reply_falls_back() -> None:
    router, *_ = build()
    routed = await router.complete("agent", REQ, accept=lambda r: "no tool call" if r.text == "from a" else None)
    assert routed.record.model == "b" and routed.record.attempts[0].reason == "unusable_reply"


async def test_cancelled_stream_frees_slot_and_logs_once() -> None:
    router, a, b, records = build(["idle:5"])
    stream = router.stream("agent", REQ)
    async for _ in stream:
        break
    await stream.aclose()
    assert router.pool.local("a").slots.in_flight == 0 and a.in_flight == 0
    assert len(records) == 1 and records[0].outcome == "cancelled"


async def test_total_deadline_bounds_the_whole_chain() -> None:
    router, *_ = build(["hang"], ["hang"], timeouts={"queue": 1, "first_token": 30, "idle": 30, "total": 1})
    start = time.perf_counter()
    with pytest.raises(ChainExhausted) as info:
        await router.complete("agent", REQ)
    assert time.perf_counter() - start < 5  # the total's 1 s, not a first-token bound (30 s): 5x apart each way
    # a: cut at half the time, kept for b, with nothing come (router/kept.py, Kept.cut_short); b: the total's end
    assert [a.reason for a in info.value.record.attempts] == ["first_token_timeout", "deadline"]


async def test_concurrency_cap_holds_under_load() -> None:
    router, a, b, records = build(primary_default="slow:0.05", max_concurrent=2,
                                  timeouts={"queue": 0.12, "first_token": 2, "idle": 2, "total": 10})
    results = await asyncio.gather(*(router.complete("agent", REQ) for _ in range(20)))
    assert a.max_in_flight <= 2 and router.pool.local("a").slots.peak == 2
    served_by = [r.record.model for r in results]
    assert served_by.count("a") >= 4 and served_by.count("b") >= 1
    assert all(r.record.attempts[0].reason == "queue_timeout" for r in results if r.record.model == "b")
    assert router.pool.local("a").slots.in_flight == 0 and len(records) == 20


async def test_cost_and_tokens_from_prices() -> None:
    models = {"cloud": {"provider": "openai", "price": {"input": 2.0, "output": 10.0}}}
    config = make_config(models, {"agent": {"primary": "cloud"}})
    p = ScriptedProvider("cloud", config.models["cloud"], text="one two three four")
    router = Router(config, providers={"cloud": p})
    routed = await router.complete("agent", REQ)
    assert (routed.record.tokens_in, routed.record.tokens_out) == (3, 4)
    assert routed.record.cost_usd == pytest.approx((3 * 2.0 + 4 * 10.0) / 1e6)


async def test_unknown_agent() -> None:
    router, *_ = build()
    with pytest.raises(KeyError, match="unknown agent 'nope'"):
        await router.complete("nope", REQ)


async def test_a_failed_request_still_carries_the_cost_of_its_attempts() -> None:
    models = {"cloud": {"provider": "openai", "price": {"input": 1.0, "output": 5.0}}}
    config = make_config(models, {"agent": {"primary": "cloud"}})
    p = ScriptedProvider("cloud", config.models["cloud"], text="partial answer")
    router = Router(config, providers={"cloud": p})
    with pytest.raises(ChainExhausted) as info:
        await router.complete("agent", REQ, accept=lambda r: "unusable")
    record = info.value.record
    assert record.outcome == "failed" and record.tokens_out == 2
    assert record.cost_usd == pytest.approx((3 * 1.0 + 2 * 5.0) / 1e6)


class _Paced(ScriptedProvider):
    """Chunks after the given pauses (seconds, the first one is the time to first token)."""

    def __init__(self, name: str, config, pauses: list[float]):
        super().__init__(name, config)
        self.pauses = pauses

    async def stream(self, request: ChatRequest, timeouts):  # type: ignore[override]
        for pause in self.pauses:
            await asyncio.sleep(pause)
            yield Chunk("text", text="x")
        yield Chunk("usage", usage=Usage(3, len(self.pauses)))
        yield Chunk("done", stop_reason="stop")


@pytest.mark.parametrize(("pauses", "reason", "at"), [
    ([0.5, 1.0, 4.0, 2.0], None, 7.5),
    ([20.0, 4.0, 4.0, 4.0], None, 32.0),  # a first token slower than the idle bound is still in time
    ([31.0], "first_token_timeout", 30.0),
    ([1.0, 4.0, 6.0], "idle_timeout", 10.0),
    ([29.0, 5.5], "idle_timeout", 34.0),
])
def test_first_token_and_idle_bounds_with_one_timer_per_stream(pauses, reason, at) -> None:
    """The watchdog's first timer is set no later than the idle bound ahead, so the idle bounds that follow the
    first token need no second timer; the bounds themselves are exact whichever is longer."""
    config = make_config({"a": {"provider": "openai"}, "b": {"provider": "openai"}},
                         {"agent": {"primary": "a", "fallbacks": ["b"]}},
                         defaults={"timeouts": {"queue": 1, "first_token": 30, "idle": 5, "total": 100},
                                   "retries": {"attempts": 0}})
    providers = {"a": _Paced("a", config.models["a"], pauses), "b": _Paced("b", config.models["b"], [0.0])}
    router = Router(config, pool=ModelPool(config, providers=providers))
    timers: list[float] = []

    class Counting(VirtualTimeLoop):
        def call_at(self, when, callback, *args, context=None):  # type: ignore[no-untyped-def, override]
            if type(getattr(callback, "__self__", None)).__module__ == "modelyard.router.watchdog":
                timers.append(when)
            return super().call_at(when, callback, *args, context=context)

    loop = Counting(0.0)
    try:
        routed = loop.run_until_complete(router.complete("agent", REQ))
    finally:
        loop.close()
    first = routed.record.attempts[0]
    assert first.reason == reason
    assert first.duration_ms == pytest.approx(at * 1000)
    if reason is None:
        assert routed.record.model == "a" and first.ttft_ms == pytest.approx(pauses[0] * 1000)
    if pauses[0] == 0.5:  # its first timer at the idle horizon, moved on only when due: never one made at the
        # first-token bound and cancelled at the first token (the old code: 30, then 5.5, ...)
        assert timers == [5.0, 6.5, 10.5]


def test_the_streams_of_one_loop_share_one_timer_and_each_keeps_its_own_bounds() -> None:
    """Every stream's watchdog made a timer of its own (a handle pushed on the loop's heap and cancelled per
    request, issue #15); the watchdogs of a loop share one, so back-to-back requests make one timer per idle
    bound of time, not one each — and concurrent streams still end at their own bounds, a shorter bound that
    comes after a longer one included."""
    config = make_config({"a": {"provider": "openai"}, "b": {"provider": "openai"}, "c": {"provider": "openai"}},
                         # "short": a first-token bound of 2 s, below the shared check the others left at 5 s
                         {"quick": {"primary": "a"}, "stalls": {"primary": "b"},
                          "short": {"primary": "c", "timeouts": {"first_token": 2}}},
                         defaults={"timeouts": {"queue": 1, "first_token": 30, "idle": 5, "total": 100},
                                   "retries": {"attempts": 0}})
    providers = {"a": _Paced("a", config.models["a"], [0.01]), "b": _Paced("b", config.models["b"], [1.0, 7.0]),
                 "c": _Paced("c", config.models["c"], [3.0])}
    router = Router(config, pool=ModelPool(config, providers=providers))
    timers: list[float] = []

    class Counting(VirtualTimeLoop):
        def call_at(self, when, callback, *args, context=None):  # type: ignore[no-untyped-def, override]
            if type(getattr(callback, "__self__", None)).__module__ == "modelyard.router.watchdog":
                timers.append(when)
            return super().call_at(when, callback, *args, context=context)

    async def main():  # type: ignore[no-untyped-def]
        quick = [await router.complete("quick", REQ) for _ in range(20)]  # 0.2 s of back-to-back requests
        stalls, short = await asyncio.gather(router.complete("stalls", REQ), router.complete("short", REQ),
                                             return_exceptions=True)
        return quick, stalls, short

    loop = Counting(0.0)
    try:
        quick, stalls, short = loop.run_until_complete(main())
    finally:
        loop.close()
    assert all(r.record.model == "a" for r in quick)
    assert timers[0] == pytest.approx(5.0) and len(timers) <= 4  # the first request's check served all twenty
    assert isinstance(stalls, ChainExhausted) and isinstance(short, ChainExhausted)
    stalled, late = stalls.record.attempts[0], short.record.attempts[0]
    assert stalled.reason == "idle_timeout" and stalled.duration_ms == pytest.approx(6000)  # 1 s, then 5 s silent
    assert late.reason == "first_token_timeout" and late.duration_ms == pytest.approx(2000)


def test_routed_requests_leave_no_reference_cycles() -> None:
    """Requests that queued out, found their chain exhausted, and slept on the simulated clock are freed by
    reference counting: nothing waits for the garbage collector (a replay routes a million; each cycle held a
    task, its coroutine and its context, and the gateway made them too)."""
    import gc

    from modelyard.router.clock import _Wake, sleep

    router, a, b, _ = build(["slow:1", "slow:1", "slow:1"], ["error:server_error"] * 3,
                            timeouts={"queue": 0.1, "first_token": 5, "idle": 5, "total": 10})

    async def one() -> str:
        await sleep(0.01)
        try:
            return (await router.complete("agent", REQ)).record.outcome
        except ChainExhausted as exc:
            return exc.record.outcome

    async def main() -> list[str]:
        return list(await asyncio.gather(*(one() for _ in range(3))))

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        loop = VirtualTimeLoop(0.0)
        try:
            outcomes = loop.run_until_complete(main())
        finally:
            loop.close()
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, (asyncio.Future, _Wake, ChainExhausted, RequestRecord))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sorted(outcomes) == ["failed", "failed", "ok"]
    assert left == []


async def test_a_stream_cancelled_before_its_usage_report_counts_its_prompt() -> None:
    """A stream the caller left (Ctrl-C, a client gone) after the model had begun to answer never got its usage
    report: its output was counted per piece but its prompt as 0 — a billed model's spend, its spend cap and
    `report` left out a prompt the provider had read whole (it answered) and charged for."""
    models = {"cloud": {"provider": "openai", "price": {"input": 2.0, "output": 10.0}}}
    config = make_config(models, {"agent": {"primary": "cloud"}})
    p = ScriptedProvider("cloud", config.models["cloud"], ["idle:5"], text="one two three four")
    records: list[RequestRecord] = []
    router = Router(config, providers={"cloud": p}, sink=records.append)
    long = ChatRequest(messages=[Message("user", " ".join(["word"] * 400))])
    stream = router.stream("agent", long)
    async for _ in stream:
        break
    await stream.aclose()
    (record,) = records
    assert record.outcome == "cancelled" and record.tokens_out >= 1
    assert record.tokens_in >= 300  # the prompt's estimate (request_tokens), not 0
    assert record.cost_usd >= record.tokens_in * 2.0 / 1e6
