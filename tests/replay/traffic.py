"""Recorded traffic for replay tests: the real router over backends with known service times, run in
simulated time, every request written to a real routing log (SQLite) by the real log writer."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modelyard.config.schema import Config, ModelConfig, Timeouts
from modelyard.errors import ModelyardError, ProviderError, Reason
from modelyard.ledger import LogWriter
from modelyard.providers.base import Provider
from modelyard.router import ModelPool, Router
from modelyard.router.clock import VirtualTimeLoop
from modelyard.types import ChatRequest, Chunk, Message, Usage
from tests.helpers import make_config

T0 = 1_760_000_000.0  # a fixed epoch second, so logs and windows are reproducible


class KnownBackend(Provider):
    """TTFT, speed and length fixed per model; fails with ``reason`` between ``down`` seconds after T0."""

    def __init__(self, name: str, config: ModelConfig, ttft: float, tps: float, tokens: int,
                 down: tuple[float, float] | None = None, reason: Reason = Reason.SERVER_ERROR):
        super().__init__(name, config)
        self.ttft, self.tps, self.tokens, self.down, self.reason = ttft, tps, tokens, down, reason
        self.rng = random.Random(name)

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        now = asyncio.get_running_loop().time() - T0
        if self.down and self.down[0] <= now < self.down[1]:
            await asyncio.sleep(0.05)
            raise ProviderError(self.reason, "down")
        await asyncio.sleep(self.ttft * self.rng.uniform(0.8, 1.2))
        yield Chunk("text", text="x")
        await asyncio.sleep((self.tokens - 1) / self.tps)
        yield Chunk("usage", usage=Usage(50, self.tokens))
        yield Chunk("done", stop_reason="stop")


def config(log: Path, *, qwen_slots: int = 2, queue: float = 2.0) -> Config:
    return make_config(
        {"qwen": {"provider": "openai", "max_concurrent": qwen_slots, "timeouts": {"queue": queue}},
         "gemma": {"provider": "openai", "max_concurrent": 1},
         "haiku": {"provider": "openai", "max_concurrent": 8, "price": {"input": 1, "output": 5}}},
        {"chat": {"primary": "qwen", "fallbacks": ["gemma", "haiku"]},
         "writer": {"primary": "haiku", "fallbacks": ["qwen"]}},
        defaults={"timeouts": {"queue": 5, "first_token": 10, "idle": 10, "total": 60},
                  "retries": {"attempts": 0}, "cooldown": {"failures": 2, "seconds": 30, "max_seconds": 120}},
        log={"path": str(log)})


def backends(cfg: Config) -> dict[str, Provider]:
    return {"qwen": KnownBackend("qwen", cfg.models["qwen"], 0.4, 25, 40),
            "gemma": KnownBackend("gemma", cfg.models["gemma"], 1.0, 10, 40),
            "haiku": KnownBackend("haiku", cfg.models["haiku"], 0.6, 80, 60, down=(600, 900))}


def arrivals(n: int, seed: int = 1) -> list[tuple[float, str]]:
    """Poisson arrivals at ~0.5/s with bursts of 10 every 5 minutes; 70% chat, 30% writer."""
    rng = random.Random(seed)
    out, t = [], 0.0
    while len(out) < n:
        t += rng.expovariate(0.5)
        out.append((t, "chat" if rng.random() < 0.7 else "writer"))
        if int(t) % 300 < 2 and rng.random() < 0.5:
            out.extend((t + rng.uniform(0, 1), "chat") for _ in range(10))
    return sorted(out[:n])


def record(cfg: Config, schedule: list[tuple[float, str]], writer: Any = None) -> None:
    """Run ``schedule`` through the real router (simulated time) into ``writer`` (default: a log writer on
    ``cfg.log.path``)."""
    if writer is None:
        writer = LogWriter(cfg.log.path, local_models=[n for n, m in cfg.models.items() if m.is_local])
    router = Router(cfg, pool=ModelPool(cfg, providers=backends(cfg)), sink=writer.submit)
    req = ChatRequest(messages=[Message("user", "hello")])

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def one(at: float, agent: str) -> None:
            await asyncio.sleep(T0 + at - loop.time())
            with contextlib.suppress(ModelyardError):  # a failed request is logged like any other
                await router.complete(agent, req)

        await asyncio.gather(*(one(at, agent) for at, agent in schedule))

    loop = VirtualTimeLoop(T0)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    writer.close()

