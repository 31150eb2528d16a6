"""Two processes sharing one Ollama through Redis, its model unloaded and slower to load than ``first_token``.

Each process whose request timed out during the load finishes it behind the request (providers/ollama.py
``cold_start``: Ollama aborts a load whose client hung up, ollama/ollama#7408). That load is a request at Ollama (a
chat with no messages: docs/api.md "Load a model"); it went out beside the model's slots, so each process that timed
out put one request past ``max_concurrent`` at the server while the model loaded. It now takes one of the model's
slots, the shared ones on Redis."""

from __future__ import annotations

import asyncio

from modelyard.router import ModelPool, Router
from modelyard.router.slots import QueueTimeout
from modelyard.types import ChatRequest, Message
from tests.fakes import OllamaServer, OpenAIServer
from tests.helpers import make_config
from tests.shared.redis_kit import short_lease

REQ = ChatRequest(messages=[Message("user", "Say hello")])


async def _joined(pool: ModelPool) -> None:
    """A slot taken and given back through the store: the first call (connect, load the scripts) overran the link's
    bound at load ~10 on 2 cores (tests/shared/test_redis_state.py), and the test would fall back for that."""
    for _ in range(60):
        try:
            await pool["primary"].acquire(5)
        except QueueTimeout:
            await asyncio.sleep(0.5)
            continue
        await pool["primary"].release()
        return
    raise AssertionError("never reached the store")


async def test_loads_behind_timed_out_requests_in_two_processes_stay_within_the_shared_max_concurrent(
        redis_url: str, prefix: str) -> None:
    ollama = OllamaServer(models=["qwen3.5:latest"], load_seconds=1.5).start()
    backup = OpenAIServer(models=["backup"], reply_text="backup answer").start()
    config = make_config(
        {"primary": {"provider": "ollama", "model": "qwen3.5:latest", "endpoint": ollama.url, "max_concurrent": 1},
         "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
        {"agent": {"primary": "primary", "fallbacks": ["backup"]}},
        defaults={"timeouts": {"queue": 8, "connect": 2, "first_token": 0.5, "idle": 8, "total": 20},
                  "retries": {"attempts": 0}, "cooldown": {"failures": 2, "seconds": 30, "max_seconds": 60}})
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=1)
    routers = [Router(config, pool=ModelPool(config, shared=settings)) for _ in range(2)]
    try:
        for router in routers:
            await _joined(router.pool)
        first = await asyncio.gather(*(r.complete("agent", REQ) for r in routers))
        assert all(f.record.attempts[0].reason == "first_token_timeout" for f in first), [f.record for f in first]
        then = await asyncio.gather(*(r.complete("agent", REQ) for r in routers))
        assert [t.record.model for t in then] == ["primary", "primary"], [t.record.attempts for t in then]
        assert ollama.max_in_flight_by_model == {"qwen3.5:latest": 1}
    finally:
        for router in routers:
            await router.aclose()
            await router.pool.aclose()
        ollama.stop()
        backup.stop()
