"""Faults that happen to a running system: a llama.cpp server killed and restarted mid-run, and a
cloud key revoked while requests are in flight. Each request ends in a fallback answer or a clear
error within its bounds, every attempt is logged with its reason, and the failing model comes
back into service once healthy."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.fakes import AnthropicServer, OpenAIServer
from tests.helpers import make_config
from tests.integration.test_real_model import free_port

from modelyard.ledger import LogWriter, connect
from modelyard.router import Router
from modelyard.types import ChatRequest, Message

REQ = ChatRequest(messages=[Message("user", "Reply with exactly: pong")], max_tokens=6, temperature=0.0)


def start_llama_server(model: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "1024", "--model_alias", "qwen-coder"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    proc.wait(timeout=30)
    raise RuntimeError("llama_cpp.server did not start")


@pytest.mark.model
async def test_llama_server_killed_and_restarted_mid_run(default_model: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = start_llama_server(default_model, port)
    with OpenAIServer(models=["backup"], reply_text="backup answer") as backup:
        config = make_config(
            {"served": {"provider": "openai", "model": "qwen-coder", "endpoint": f"http://127.0.0.1:{port}"},
             "backup": {"provider": "openai", "model": "backup", "endpoint": backup.url}},
            {"chat": {"primary": "served", "fallbacks": ["backup"]}},
            defaults={"timeouts": {"first_token": 20, "idle": 10, "total": 60},
                      "retries": {"attempts": 0}, "cooldown": {"failures": 1, "seconds": 1, "max_seconds": 2}})
        writer = LogWriter(tmp_path / "log.sqlite3")
        router = Router(config, sink=writer.submit)
        try:
            before = await router.complete("chat", REQ)
            assert before.record.model == "served", before.record.attempts
            # kill -9 while a request is streaming from it
            in_flight = asyncio.create_task(router.complete("chat", ChatRequest(
                messages=[Message("user", "Count from 1 to 50.")], max_tokens=120)))
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            during = await in_flight
            assert during.record.model == "backup"
            assert during.record.attempts[0].reason in ("connection_dropped", "connect_error")
            assert router.pool.local("served").health.state == "cooling_down"
            skipped = await router.complete("chat", REQ)
            assert skipped.record.attempts[0].reason in ("cooling_down", "connect_error")
            proc = start_llama_server(default_model, port)
            # the cooldown passes (1 s; 2 s if the request above found it over and probed the dead server): the next
            # request probes the restarted server (a fixed 1.1 s counted on the restart itself taking 0.9 s or more)
            health, t0 = router.pool.local("served").health, time.monotonic()
            while health.seconds_left() > 0:
                assert time.monotonic() - t0 < 10, "the cooldown never ended"
                await asyncio.sleep(0.02)
            after = await router.complete("chat", REQ)
            assert after.record.model == "served" and router.pool.local("served").health.state == "available"
        finally:
            proc.kill()
            proc.wait(timeout=30)  # reaped here, not by the interpreter's ResourceWarning at a later test
            await router.aclose()
            writer.close()
    rows = connect(tmp_path / "log.sqlite3").execute(
        "SELECT model, outcome, reason FROM attempts ORDER BY ts").fetchall()
    assert ("served", "fallback") in [(r["model"], r["outcome"]) for r in rows]
    assert connect(tmp_path / "log.sqlite3").execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 4


async def test_cloud_key_revoked_while_requests_in_flight(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = "sk-ant-live-key-0123456789abcdef"
    monkeypatch.setenv("TEST_CLOUD_KEY", key)
    with AnthropicServer(api_key=key, chunk_interval=0.05) as cloud, \
            OpenAIServer(models=["local"], reply_text="local answer") as local:
        config = make_config(
            {"haiku": {"provider": "anthropic", "endpoint": cloud.url, "api_key_env": "TEST_CLOUD_KEY",
                       "max_concurrent": 8},
             "local": {"provider": "openai", "model": "local", "endpoint": local.url}},
            {"research": {"primary": "haiku", "fallbacks": ["local"]}},
            defaults={"retries": {"attempts": 1, "backoff": 0.01}})
        writer = LogWriter(tmp_path / "log.sqlite3")
        router = Router(config, sink=writer.submit)
        first_wave = [asyncio.create_task(router.complete("research", REQ)) for _ in range(4)]
        await asyncio.sleep(0.02)
        cloud.api_key = "rotated-elsewhere"  # revoked: every new request now gets 401
        second_wave = [asyncio.create_task(router.complete("research", REQ)) for _ in range(4)]
        results = await asyncio.gather(*first_wave, *second_wave)
        assert all(r.response.text for r in results)
        revoked = [r for r in results if r.record.model == "local"]
        assert revoked, "requests after the revocation fell back"
        for r in revoked:
            assert r.record.attempts[0].reason in ("auth_error", "cooling_down")
            assert all(a.outcome != "retry" for a in r.record.attempts)  # a 401 is not retried
        assert router.pool.local("haiku").health.state == "cooling_down"
        await router.aclose()
        writer.close()
    dump = "\n".join(connect(tmp_path / "log.sqlite3").iterdump())
    assert key not in dump and "rotated-elsewhere" not in dump
