"""The simulated clock: the router's real rules over simulated time, exact and instant."""

from __future__ import annotations

import asyncio
import time

from tests.helpers import ScriptedProvider, make_config

from modelyard.errors import Reason
from modelyard.router import ModelPool, Router
from modelyard.router.clock import ManualClock, VirtualTimeLoop, loop_clock, run_simulated
from modelyard.types import ChatRequest, Message


def test_an_hour_of_timers_runs_in_milliseconds() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        try:
            async with asyncio.timeout(5):
                await asyncio.sleep(100)
        except TimeoutError:
            pass
        await asyncio.gather(*(asyncio.sleep(i) for i in range(100)))
        return loop.time() - start

    wall = time.perf_counter()
    assert run_simulated(main(), start=0.0) == 3600 + 5 + 99
    assert time.perf_counter() - wall < 2


def test_loop_clock_is_the_running_loops_time() -> None:
    loop = VirtualTimeLoop(start=500.0)
    try:
        assert loop.run_until_complete(asyncio.sleep(0, result=None)) is None
        assert loop.run_until_complete(_now()) == 500.0
    finally:
        loop.close()


async def _now() -> float:
    return loop_clock()


def test_cooldown_and_queue_bound_in_simulated_time() -> None:
    """Fallback on a queue bound, cooldown, half-open probe and recovery, timed exactly."""
    config = make_config(
        {"a": {"provider": "openai", "max_concurrent": 1}, "b": {"provider": "openai", "max_concurrent": 8}},
        {"agent": {"primary": "a", "fallbacks": ["b"]}},
        defaults={"timeouts": {"queue": 2, "first_token": 30, "idle": 30, "total": 300},
                  "retries": {"attempts": 0}, "cooldown": {"failures": 1, "seconds": 60, "max_seconds": 600}})
    a = ScriptedProvider("a", config.models["a"], ["slow:10", "error:server_error"], text="from a")
    b = ScriptedProvider("b", config.models["b"], text="from b")
    req = ChatRequest(messages=[Message("user", "x")])

    async def main() -> list[tuple[float, str | None, str]]:
        loop = asyncio.get_running_loop()
        router = Router(config, providers={"a": a, "b": b})
        seen = []

        async def at(t: float) -> None:
            await asyncio.sleep(t - loop.time())
            routed = await router.complete("agent", req)
            seen.append((round(loop.time(), 3), routed.record.model, routed.record.attempts[0].reason or ""))

        await asyncio.gather(at(0), at(1))       # a busy for 10 s: the second waits its 2 s bound, then b
        await at(20)                              # a fails: breaker opens for 60 s, b answers
        await at(50)                              # still cooling down: skipped at once
        await at(81)                              # cooldown over: the probe succeeds, traffic returns to a
        return seen

    assert run_simulated(main(), start=0.0) == [(3.0, "b", "queue_timeout"), (10.0, "a", ""),
                                                (20.0, "b", "server_error"), (50.0, "b", "cooling_down"),
                                                (81.0, "a", "")]


def test_manual_clock_drives_a_pool_without_a_loop_clock() -> None:
    clock = ManualClock()
    config = make_config({"a": {"provider": "openai"}}, {"agent": {"primary": "a"}},
                         defaults={"cooldown": {"failures": 1, "seconds": 30}})
    pool = ModelPool(config, providers={"a": ScriptedProvider("a", config.models["a"])}, clock=clock)
    health = pool.local("a").health
    health.failure(Reason.SERVER_ERROR)
    assert health.seconds_left() == 30
    clock.advance(12.5)
    assert health.seconds_left() == 17.5


def test_clock_sleep_on_the_virtual_loop_is_asyncio_sleep_in_one_object() -> None:
    """clock.sleep: the simulated provider's timer. Due at its time, cancelled as asyncio.sleep is (a
    timeout, a task cancelled by a watchdog), and asyncio.sleep itself on any other loop."""
    from modelyard.router.clock import sleep

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        seen: list[object] = []
        await sleep(2.5)
        seen.append(loop.time())
        try:
            async with asyncio.timeout(1):
                await sleep(10)
        except TimeoutError:
            seen.append(("timeout", loop.time()))
        task = asyncio.ensure_future(sleep(5))  # a bare awaitable wrapped in a task, then cancelled
        loop.call_later(2, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            seen.append(("cancelled", loop.time()))
        await asyncio.gather(*(sleep(d) for d in (3, 1, 2)))
        seen.append(loop.time())
        return seen

    assert run_simulated(main(), start=0.0) == [2.5, ("timeout", 3.5), ("cancelled", 5.5), 8.5]

    async def real() -> float:
        start = time.perf_counter()
        await sleep(0.01)
        return time.perf_counter() - start

    assert asyncio.run(real()) >= 0.009


def test_wall_clock_is_simulated_only_inside_the_virtual_loops_thread() -> None:
    """wall_clock reads a thread-local (no getpid per call): simulated time on the loop's thread while it
    runs, real time on any other thread and after the loop stops."""
    import threading

    from modelyard.router.clock import wall_clock

    seen: dict[str, float] = {}

    async def main() -> None:
        seen["inside"] = wall_clock()
        worker = threading.Thread(target=lambda: seen.__setitem__("other_thread", wall_clock()))
        worker.start()
        worker.join()

    run_simulated(main(), start=1000.0)
    assert seen["inside"] == 1000.0
    assert abs(seen["other_thread"] - time.time()) < 60
    assert abs(wall_clock() - time.time()) < 60
