"""Replay prices a simulated answer as the ledger priced the real one, prompt cache included.

A cloud answer whose prompt was mostly read from the provider's prompt cache is billed the cached part at the
``price.cache_read`` (Anthropic: 0.1x input; :meth:`modelyard.config.schema.Price.cost`, the router's pricing). The
log kept no cache counts, and replay re-priced every simulated token at the list input price: its validation showed
the spend +76% and more on cached traffic (here 2,000-token prompts, 1,800 of them cached: 4.2x). The counts are now
logged per attempt (``attempts.cache_read_tokens``/``cache_write_tokens``) and replayed on the same model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelyard.config.schema import Config, Timeouts
from modelyard.ledger import connect
from modelyard.ledger.report import Period
from modelyard.ledger.store import LogStore
from modelyard.replay.run import replay
from modelyard.types import ChatRequest, Chunk, Usage
from tests.helpers import make_config
from tests.replay import traffic
from tests.replay.traffic import T0, KnownBackend

PROMPT, CACHED, WROTE, OUT = 2000, 1800, 100, 60
PRICE = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}  # Claude Sonnet's per million


class CachedBackend(KnownBackend):
    """haiku answering with most of its prompt read from its cache, as Anthropic's usage reports it (read by
    providers/anthropic.py into Usage: the whole prompt, with its cached parts)."""

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AsyncIterator[Chunk]:
        await asyncio.sleep(self.ttft * self.rng.uniform(0.8, 1.2))
        yield Chunk("text", text="x")
        await asyncio.sleep((self.tokens - 1) / self.tps)
        yield Chunk("usage", usage=Usage(PROMPT, self.tokens, CACHED, WROTE))
        yield Chunk("done", stop_reason="stop")


def _config(log: Path) -> Config:
    return make_config({"haiku": {"provider": "openai", "max_concurrent": 8, "price": PRICE},
                        "qwen": {"provider": "openai"}},
                       {"writer": {"primary": "haiku", "fallbacks": ["qwen"]}},
                       defaults={"retries": {"attempts": 0}}, log={"path": str(log)})


def _recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> tuple[Path, Config]:
    """``n`` writer requests through the real router, every answer's prompt mostly cached, into a log."""
    log = tmp_path / "log.sqlite3"
    cfg = _config(log)
    monkeypatch.setattr(traffic, "backends", lambda c: {"haiku": CachedBackend("haiku", c.models["haiku"], 0.6, 80,
                                                                                OUT),
                                                        "qwen": KnownBackend("qwen", c.models["qwen"], 0.4, 25, 40)})
    traffic.record(cfg, [(i * 2.0, "writer") for i in range(n)])
    return log, cfg


def test_replay_prices_cached_prompts_as_the_ledger_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, cfg = _recorded(tmp_path, monkeypatch, 200)
    conn = connect(log)
    cached, wrote, logged = conn.execute("SELECT SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_usd) "
                                         "FROM attempts").fetchone()
    conn.close()
    assert (cached, wrote) == (200 * CACHED, 200 * WROTE)  # the log keeps what the provider said
    one = ((PROMPT - CACHED - WROTE) * 3.0 + CACHED * 0.3 + WROTE * 3.75 + OUT * 15.0) / 1e6
    assert logged == pytest.approx(200 * one)

    window = Period(T0 - 60, T0 + 3600, "test", 1.0)
    r = replay(LogStore(log), cfg, cfg, window, parallel=False)
    measured, replayed = r.validation["spend_usd"]
    assert measured == pytest.approx(200 * one)
    assert replayed == pytest.approx(measured, rel=0.01)  # was 4.2x: every prompt token at the input price


def test_a_request_moved_to_another_model_is_priced_without_the_cache(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """guard: the cache is at the provider that answered; a candidate sending the prompt to another priced model
    pays its whole prompt at that model's input price. (It failed on the old code too, for another reason: replay's
    per-month figure took the window's days over 30, not the period's months.)"""
    log, cfg = _recorded(tmp_path, monkeypatch, 50)
    data = cfg.model_dump(mode="json", exclude_defaults=True)
    data["models"]["other"] = {"provider": "openai", "max_concurrent": 8, "price": PRICE}
    data["agents"]["writer"] = {"primary": "other"}
    candidate = make_config(data["models"], data["agents"], defaults={"retries": {"attempts": 0}},
                            log={"path": str(log)})
    r = replay(LogStore(log), cfg, candidate, Period(T0 - 60, T0 + 3600, "test", 1.0), parallel=False)
    assert r.candidate.costs is not None
    assert r.candidate.cost_per_month_usd == pytest.approx(50 * (PROMPT * 3.0 + OUT * 15.0) / 1e6, rel=0.05)


