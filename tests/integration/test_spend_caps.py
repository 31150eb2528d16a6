"""Spend caps: a billed model stops being used once its logged cost in the window reaches its cap.

A fake Anthropic server that bills as the real API reports usage, a local fake as the fallback, the
real router, log writer and runtime; the cap is read from the routing log, so a second runtime (another
process, or another host on PostgreSQL) sees what the first spent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.fakes import AnthropicServer, OllamaServer
from tests.fakes.server import poll
from tests.gateway.harness import GatewayServer
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.cli.render import usd
from modelyard.config.loader import load_config, parse_config
from modelyard.config.schema import Config, SpendCap, SpendWindow
from modelyard.errors import ConfigError, Reason
from modelyard.ledger import connect
from modelyard.router.spend import SpendCaps, window_start
from modelyard.runtime import open_runtime
from modelyard.types import ChatRequest, Message

KEY = "sk-ant-spend-test"
ASK = ChatRequest(messages=[Message("user", "hello")], max_tokens=16)


def config_data(tmp_path: Path, cloud: str, local: str, usd: float, **log: Any) -> dict[str, Any]:
    return {
        "log": {"path": str(tmp_path / "log.sqlite3"), **log},
        "models": {
            "haiku": {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": cloud,
                      "api_key_env": "SPEND_TEST_KEY", "price": {"input": 1.0, "output": 5.0},
                      "spend_cap": {"usd": usd, "per": "day"}},
            "local": {"provider": "ollama", "model": "llama3.2:1b", "endpoint": local},
        },
        "agents": {"writer": {"primary": "haiku", "fallbacks": ["local"]}},
    }


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPEND_TEST_KEY", KEY)
    with AnthropicServer(api_key=KEY, reply_text="From the cloud.") as cloud, \
            OllamaServer(["llama3.2:1b"], reply_text="From here.") as local:
        yield cloud, local


async def test_the_cap_moves_traffic_to_the_fallback_and_another_process_sees_it(tmp_path: Path, servers) -> None:
    cloud, local = servers
    # one answer from the fake costs a few hundred-thousandths of a dollar: a cap below two answers
    config = Config.model_validate(config_data(tmp_path, cloud.url, local.url, usd=0.00001))
    first = open_runtime(config=config)
    try:
        answered = await first.router.complete("writer", ASK)
        assert answered.record.model == "haiku" and answered.record.cost_usd > 0.00001
        capped = await first.router.complete("writer", ASK)  # this process's own spend, before any reading
        assert capped.record.model == "local"
        skipped = capped.record.attempts[0]
        assert (skipped.model, skipped.reason) == ("haiku", Reason.SPEND_CAP)
        assert "day cap" in skipped.detail and first.pool.spend is not None
        assert await first.log.wait_written(5.0)
    finally:
        await first.aclose()
    second = open_runtime(config=config)  # a new process: what it knows comes from the log
    try:
        assert second.pool.spend is not None and second.pool.spend.spent("haiku") == pytest.approx(
            answered.record.cost_usd)
        again = await second.router.complete("writer", ASK)
        assert again.record.model == "local" and again.record.attempts[0].reason == Reason.SPEND_CAP
    finally:
        await second.aclose()
    assert len(cloud.requests_to("/v1/messages")) == 1  # the capped model was never called again


async def test_a_cap_not_reached_changes_nothing(tmp_path: Path, servers) -> None:
    cloud, local = servers
    runtime = open_runtime(config=Config.model_validate(config_data(tmp_path, cloud.url, local.url, usd=5.0)))
    try:
        for _ in range(3):
            assert (await runtime.router.complete("writer", ASK)).record.model == "haiku"
    finally:
        await runtime.aclose()


async def test_every_host_on_postgresql_shares_one_cap(tmp_path: Path, servers, pg_url: str) -> None:
    cloud, local = servers
    host_a = Config.model_validate(config_data(tmp_path / "a", cloud.url, local.url, usd=0.00001, url=pg_url))
    host_b = Config.model_validate(config_data(tmp_path / "b", cloud.url, local.url, usd=0.00001, url=pg_url))
    a = open_runtime(config=host_a)
    try:
        assert (await a.router.complete("writer", ASK)).record.model == "haiku"
        assert a.forwarder is not None
        poll(lambda: a.forwarder is not None and a.forwarder.health().backlog == 0, timeout=10)
    finally:
        await a.aclose()
    b = open_runtime(config=host_b)  # its own spool is empty: the spend is only in PostgreSQL
    try:
        assert b.pool.spend is not None
        b.pool.spend.read_now()
        assert b.pool.spend.spent("haiku") > 0.00001
        assert (await b.router.complete("writer", ASK)).record.model == "local"
    finally:
        await b.aclose()


def test_the_window_rolls_over_at_midnight_utc() -> None:
    now = [1_795_910_399.0]  # 2026-11-28 23:59:59 UTC
    caps = SpendCaps({"m": SpendCap(usd=1.0, per=SpendWindow.DAY)}, wall=lambda: now[0])
    caps.add("m", 1.5)
    assert caps.over("m") is not None and "day cap" in str(caps.over("m"))
    now[0] += 2  # 00:00:01 the next day
    assert caps.over("m") is None and caps.spent("m") == 0
    assert window_start(SpendWindow.MONTH, 1_795_910_399.0) == 1_793_491_200.0  # 2026-11-01 00:00 UTC


def test_a_cap_without_a_price_is_refused_with_its_line(tmp_path: Path) -> None:
    text = yaml.safe_dump({"models": {"local": {"provider": "ollama", "spend_cap": {"usd": 2}}},
                           "agents": {"chat": {"primary": "local"}}}, sort_keys=False)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="my.yaml")
    message = str(caught.value)
    assert message.startswith("my.yaml:4: models.local.spend_cap: spend_cap needs a price")


def test_models_shows_what_was_spent_and_when_the_cap_is_reached(tmp_path: Path, servers) -> None:
    cloud, local = servers
    data = config_data(tmp_path, cloud.url, local.url, usd=0.00001)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))

    async def spend_once() -> None:
        runtime = open_runtime(config=load_config(path))
        try:
            await runtime.router.complete("writer", ASK)
            assert await runtime.log.wait_written(5.0)
        finally:
            await runtime.aclose()

    asyncio.run(spend_once())
    with connect(tmp_path / "log.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE model = 'haiku'").fetchone()[0] == 1
        cost = conn.execute("SELECT cost_usd FROM attempts WHERE model = 'haiku'").fetchone()[0]
    shown = CliRunner().invoke(app, ["--config", str(path), "models", "--no-reach"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    # what it spent, not "$0.00 spent" beside a cap it is over; the cap as the config writes it, not "$1e-05"
    assert 1e-05 <= cost < 1e-03
    assert f"over its spend cap: {usd(cost)} spent, cap $0.00001/day (UTC)" in shown.output, shown.output
    assert usd(cost) != "$0.00"


def test_healthz_says_how_far_each_capped_model_is(tmp_path: Path, servers) -> None:
    cloud, local = servers
    config = Config.model_validate(config_data(tmp_path, cloud.url, local.url, usd=0.00001))
    with GatewayServer(config) as gw:
        before = {m["name"]: m for m in httpx.get(gw.url + "/healthz").json()["models"]}
        assert before["haiku"]["spend"] == {"usd": 0, "cap_usd": 0.00001, "per": "day", "over": False}
        assert "spend" not in before["local"]
        answered = httpx.post(gw.url + "/v1/chat/completions", json={
            "model": "writer", "messages": [{"role": "user", "content": "hello"}]}, timeout=10)
        assert answered.headers["x-modelyard-model"] == "haiku"
        after = {m["name"]: m for m in httpx.get(gw.url + "/healthz").json()["models"]}
        assert after["haiku"]["spend"]["over"] is True and after["haiku"]["spend"]["usd"] > 0.00001
        # the model's state says it too, as for a missing key: the dashboard and Telegram's /status show it
        assert after["haiku"]["state"] == "unavailable" and before["haiku"]["state"] == "available"
        page = httpx.get(gw.url + "/api/summary").json()
        shown = {m["name"]: m for m in page["models"]}
        assert "day cap" in shown["haiku"]["detail"]
