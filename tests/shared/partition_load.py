"""Load across a partition, measured outside in: two pools (two processes' worth of link, instance id and heartbeat),
one behind the tests' own TCP proxy (:mod:`tests.shared.fault_proxy`) that cuts it off from Redis, clients looping
on each, and a "backend" that counts the requests it serves at once — what the model's server would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from modelyard.router import ModelPool
from modelyard.router.slots import QueueTimeout


@dataclass
class Backend:
    """The requests served at once, as (when, in flight) after every change; times are read relative to ``cut_at``."""

    in_flight: int = 0
    cut_at: float = 0.0
    seen: list[tuple[float, int]] = field(default_factory=list)
    refused: int = 0
    served: int = 0
    #: (when, the pool) of every request served, when it started
    starts: list[tuple[float, ModelPool]] = field(default_factory=list)

    def peak(self, start: float, end: float) -> int:
        """The most in flight at once between ``start`` and ``end`` seconds after the cut."""
        return max((n for t, n in self.since_cut() if start <= t < end), default=0)

    def since_cut(self) -> list[tuple[float, int]]:
        return [(t - self.cut_at, n) for t, n in self.seen]

    async def serve(self, pool: ModelPool, seconds: float) -> None:
        try:
            await pool["m"].acquire(2.0)
        except QueueTimeout:
            self.refused += 1
            await asyncio.sleep(0.05)
            return
        try:
            self.in_flight += 1
            self.starts.append((time.monotonic(), pool))
            self.seen.append((time.monotonic(), self.in_flight))
            await asyncio.sleep(seconds)
        finally:
            self.in_flight -= 1
            self.seen.append((time.monotonic(), self.in_flight))
            self.served += 1
            await pool["m"].release()


async def clients(backend: Backend, pool: ModelPool, n: int, seconds: float, stop: asyncio.Event) -> None:
    async def loop() -> None:
        while not stop.is_set():
            await backend.serve(pool, seconds)
    await asyncio.gather(*(loop() for _ in range(n)))


@contextlib.asynccontextmanager
async def running(backend: Backend, pool: ModelPool, n: int, seconds: float):  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(clients(backend, pool, n, seconds, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
