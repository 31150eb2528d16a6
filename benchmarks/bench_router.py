"""Router benchmarks (issue #2 targets), printed side by side in one run.

    .venv/bin/python benchmarks/bench_router.py

- router overhead over calling the provider directly, against an instant in-process backend;
- fallback reaction when the primary's slots are full;
- skipping a model in cooldown;
- routing-log throughput and the latency logging adds to a request;
- 10,000 requests queued on one model: memory, and whether queueing slows with length.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncGenerator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelyard.config import Config
from modelyard.config.schema import ModelConfig, Timeouts
from modelyard.ledger import LogWriter
from modelyard.outcomes import AttemptOutcome as Outcome
from modelyard.outcomes import RequestOutcome
from modelyard.providers.base import Provider
from modelyard.router import Router
from modelyard.router.records import Attempt, RequestRecord
from modelyard.router.slots import Slots
from modelyard.types import ChatRequest, Chunk, Message, Usage

REQ = ChatRequest(messages=[Message("user", "hi")])
TIMEOUTS = Timeouts()


class Instant(Provider):
    """A backend that answers at once: three chunks, usage, done."""

    def __init__(self, name: str, hang: bool = False):
        super().__init__(name, ModelConfig(provider="openai"))
        self.hang = hang
        self.started: list[float] = []

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncGenerator[Chunk, None]:
        self.started.append(time.perf_counter())
        if self.hang:
            await asyncio.sleep(3600)
        yield Chunk("text", text="hello")
        yield Chunk("text", text=" world")
        yield Chunk("usage", usage=Usage(3, 2))
        yield Chunk("done", stop_reason="stop")


def config(queue: float = 30.0, max_concurrent: int = 1000, cooldown_failures: int = 2,
           max_queue: int | None = None) -> Config:
    return Config.model_validate({
        "models": {"a": {"provider": "openai", "max_concurrent": max_concurrent, "max_queue": max_queue},
                   "b": {"provider": "openai", "max_concurrent": 1000}},
        "agents": {"agent": {"primary": "a", "fallbacks": ["b"]}},
        "defaults": {"timeouts": {"queue": queue}, "retries": {"attempts": 0},
                     "cooldown": {"failures": cooldown_failures, "seconds": 3600}},
        "log": {"store_text": False},
    })


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def overhead(n: int = 20000, sink: bool = False) -> tuple[list[float], list[float]]:
    provider = Instant("a")
    writer = LogWriter(Path(tempfile.mkdtemp()) / "log.sqlite3") if sink else None
    router = Router(config(), providers={"a": provider, "b": Instant("b")},
                    sink=writer.submit if writer else None)
    direct, routed = [], []
    for _ in range(2000):  # warm up
        await provider.complete(REQ, TIMEOUTS)
        await router.complete("agent", REQ)
    gc.collect()
    for _ in range(n):
        t = time.perf_counter()
        await provider.complete(REQ, TIMEOUTS)
        direct.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await router.complete("agent", REQ)
        routed.append((time.perf_counter() - t) * 1000)
    if writer:
        writer.close()
    return direct, routed


async def fallback_reaction(n: int = 200, queue: float = 0.05) -> list[float]:
    """Time from request start to the fallback starting, minus the queue bound (ms)."""
    a, b = Instant("a", hang=True), Instant("b")
    router = Router(config(queue=queue, max_concurrent=1, cooldown_failures=10**6), providers={"a": a, "b": b})
    hog = asyncio.create_task(router.complete("agent", REQ))
    await asyncio.sleep(0.01)
    lags = []
    for _ in range(n):
        t = time.perf_counter()
        await router.complete("agent", REQ)
        lags.append((b.started[-1] - t - queue) * 1000)
    hog.cancel()
    return lags


async def queue_full_reaction(n: int = 5000) -> list[float]:
    """Time from request start to the fallback starting when the busy primary's ``max_queue`` is 0 (ms)."""
    a, b = Instant("a", hang=True), Instant("b")
    router = Router(config(max_concurrent=1, max_queue=0), providers={"a": a, "b": b})
    hog = asyncio.create_task(router.complete("agent", REQ))
    await asyncio.sleep(0.01)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await router.complete("agent", REQ)
        out.append((b.started[-1] - t) * 1000)
    hog.cancel()
    return out


async def cooldown_skip(n: int = 5000) -> list[float]:
    """Time from request start to the fallback starting, when the primary is in cooldown (ms)."""
    a, b = Instant("a"), Instant("b")
    router = Router(config(), providers={"a": a, "b": b})
    from modelyard.errors import Reason

    router.pool.local("a").health.failure(Reason.SERVER_ERROR)
    router.pool.local("a").health.failure(Reason.SERVER_ERROR)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await router.complete("agent", REQ)
        out.append((b.started[-1] - t) * 1000)
    assert not a.started
    return out


def log_throughput(n: int = 100_000) -> float:
    writer = LogWriter(Path(tempfile.mkdtemp()) / "log.sqlite3", local_models=["a"])
    records = [RequestRecord(id=f"r{i}", agent="chat", outcome=RequestOutcome.OK, model="a", total_ms=5.0,
                             attempts=[Attempt("a", "openai", Outcome.OK, duration_ms=5.0, tokens_in=3, tokens_out=2)])
               for i in range(n)]
    t = time.perf_counter()
    for r in records:
        writer.submit(r)
    writer.flush(timeout=120)
    elapsed = time.perf_counter() - t
    writer.close()
    # rows written, not submitted: submitting 100,000 at once may pass log.max_queue (50,000), and a row dropped
    # there (the writer says so on stderr) must not count as throughput
    return writer.written / elapsed


async def deep_queue(length: int) -> tuple[float, float]:
    """Enqueue ``length`` waiters on one slot, then drain: (MB of memory, µs per hand-over)."""
    slots = Slots(1)
    await slots.acquire(1)
    gc.collect()
    tracemalloc.start()
    waiters = [asyncio.create_task(slots.acquire(3600)) for _ in range(length)]
    await asyncio.sleep(0)
    mem = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    t = time.perf_counter()
    for w in waiters:
        slots.release()
        await w
    per = (time.perf_counter() - t) / length * 1e6
    slots.release()
    return mem, per


async def router_queue_memory(length: int = 10_000) -> float:
    """10,000 whole requests queued in the router on one busy model (MB)."""
    a = Instant("a", hang=True)
    router = Router(config(queue=3600, max_concurrent=1), providers={"a": a, "b": Instant("b")})
    hog = asyncio.create_task(router.complete("agent", REQ))
    await asyncio.sleep(0.01)
    gc.collect()
    tracemalloc.start()
    tasks = [asyncio.create_task(router.complete("agent", REQ)) for _ in range(length)]
    await asyncio.sleep(0.05)
    mem = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    assert router.pool.local("a").slots.waiting == length
    for t in [hog, *tasks]:
        t.cancel()
    await asyncio.gather(hog, *tasks, return_exceptions=True)
    assert router.pool.local("a").slots.in_flight == 0
    return mem


async def main() -> None:
    print(f"modelyard router benchmarks — {time.strftime('%Y-%m-%d')} — {platform.processor() or platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}\n")
    direct, routed = await overhead()
    added = [r - d for r, d in zip(routed, direct, strict=True)]
    _, routed_logged = await overhead(sink=True)
    added_logged = [r - d for r, d in zip(routed_logged, direct, strict=True)]
    rows = [
        ("provider called directly p50", f"{statistics.median(direct) * 1000:.1f} µs", ""),
        ("through the router p50", f"{statistics.median(routed) * 1000:.1f} µs", ""),
        ("router overhead p50", f"{statistics.median(added) * 1000:.1f} µs", "≤ 200 µs"),
        ("router overhead p99", f"{pct(added, 99) * 1000:.1f} µs", "≤ 1000 µs"),
        ("router + routing log overhead p99", f"{pct(added_logged, 99) * 1000:.1f} µs", ""),
        ("logging adds, p99 (log − no log)",
         f"{(pct(routed_logged, 99) - pct(routed, 99)) * 1000:.1f} µs", "≤ 100 µs"),
    ]
    lags = await fallback_reaction()
    rows += [("fallback starts after queue bound, p50", f"{statistics.median(lags):.2f} ms", ""),
             ("fallback starts after queue bound, p99", f"{pct(lags, 99):.2f} ms", "≤ 10 ms")]
    full = await queue_full_reaction()
    rows += [("max_queue reached → fallback starts, p50", f"{statistics.median(full) * 1000:.1f} µs", ""),
             ("max_queue reached → fallback starts, p99", f"{pct(full, 99) * 1000:.1f} µs", "< 1000 µs")]
    skips = await cooldown_skip()
    rows += [("cooldown skip → fallback starts, p50", f"{statistics.median(skips) * 1000:.1f} µs", ""),
             ("cooldown skip → fallback starts, p99", f"{pct(skips, 99) * 1000:.1f} µs", "< 1000 µs")]
    rows.append(("routing log sustained", f"{log_throughput():,.0f} rows/s", "≥ 20,000 rows/s"))
    small_mem, small_per = await deep_queue(100)
    big_mem, big_per = await deep_queue(10_000)
    rows += [("slot hand-over, queue of 100", f"{small_per:.1f} µs", ""),
             ("slot hand-over, queue of 10,000", f"{big_per:.1f} µs", "no growth with length"),
             ("ratio 10,000 / 100", f"{big_per / small_per:.2f}×", "≈ 1×")]
    rows.append(("10,000 requests queued in the router", f"{await router_queue_memory():.1f} MB", "≤ 50 MB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':>18}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>18}  {target}")


if __name__ == "__main__":
    # no options, but `--help` must say so rather than start a minutes-long run on a shared machine
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    asyncio.run(main())
