"""Where a person sees the shared state: /healthz, /metrics, the dashboard's model states, ``models``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis
import yaml

from modelyard.config.schema import StateConfig
from tests.fakes import OpenAIServer
from tests.gateway.harness import GatewayServer
from tests.helpers import make_config
from tests.shared.redis_kit import PrivateRedis


def _config(url: str, backend: str, prefix: str, tmp_path: Path):
    return make_config({"fast": {"provider": "openai", "endpoint": backend, "model": "m", "max_concurrent": 2}},
                       {"chat": {"primary": "fast"}}, log={"path": str(tmp_path / "log.db")},
                       state=StateConfig(url=url, prefix=prefix, lease=2.7, timeout=0.2, refresh=0.1).model_dump())


def _wait(predicate, timeout: float = 5):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def test_healthz_and_metrics_show_the_shared_state_and_its_outage(tmp_path: Path, prefix: str) -> None:
    with PrivateRedis(tmp_path) as server, OpenAIServer(models=["m"]) as backend, \
            GatewayServer(_config(server.url, backend.url, prefix, tmp_path)) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "chat", "messages": [
            {"role": "user", "content": "hi"}]}, timeout=10)
        assert r.status_code == 200
        health = _wait(lambda: (h := httpx.get(gw.url + "/healthz").json())["state"].get("instances") and h)
        assert health["status"] == "ok"
        assert health["state"] == {"backend": "redis", "url": server.url, "prefix": prefix, "up": True,
                                   "detail": "reachable, 1 instance(s)", "instances": 1,
                                   "view_age_s": health["state"]["view_age_s"], "limits_differ": [],
                                   "counted_apart": [], "full_share_in_s": 0.0}
        # refreshed every 0.1 s: a view seconds old would be one the loop stopped renewing (the bound leaves room for
        # a loaded CI machine, where 0.5 s once ran out)
        assert 0 <= health["state"]["view_age_s"] < 2.0
        metrics = httpx.get(gw.url + "/metrics").text
        assert "modelyard_shared_state_up 1.0" in metrics and "modelyard_shared_state_instances 1.0" in metrics
        assert 'modelyard_slots{model="fast"} 2.0' in metrics

        server.kill()
        degraded = _wait(lambda: (h := httpx.get(gw.url + "/healthz").json())["status"] == "degraded" and h)
        assert degraded["state"]["up"] is False and "unreachable" in degraded["state"]["detail"]
        assert degraded["state"]["full_share_in_s"] == 0, "alone, nobody else hands the limit out: its whole share"
        assert "modelyard_shared_state_up 0.0" in httpx.get(gw.url + "/metrics").text
        # share: floor(2 slots / 1 instance) = 2: the request is still answered, from this process's share
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "chat", "messages": [
            {"role": "user", "content": "during"}]}, timeout=10)
        assert r.status_code == 200
        server.start()
        _wait(lambda: httpx.get(gw.url + "/healthz").json()["status"] == "ok")


def test_a_gateway_takes_part_from_its_start_not_from_its_first_request(tmp_path: Path, prefix: str) -> None:
    """A second serve that had answered nothing yet was not in the instance list (the README's `curl …/healthz`
    said 1 instance with two running) and its /healthz said 'connecting' until a request or a look woke it."""
    with PrivateRedis(tmp_path) as server, OpenAIServer(models=["m"]) as backend, \
            GatewayServer(_config(server.url, backend.url, prefix, tmp_path)):
        _wait(lambda: redis.Redis.from_url(server.url).zcard(f"{prefix}:instances") == 1, timeout=3)


def test_processes_that_apply_different_limits_are_told_not_silent(tmp_path: Path, prefix: str) -> None:
    """A config change rolled out to one host only (max_concurrent 2 → 3): each process passes its own limit to
    the scripts, so the model took 3 at once while every /healthz said ok. Now both sides say it, and degrade."""
    import asyncio

    from modelyard.router import ModelPool

    with PrivateRedis(tmp_path) as server, OpenAIServer(models=["m"]) as backend, \
            GatewayServer(_config(server.url, backend.url, prefix, tmp_path)) as gw:
        other_config = make_config({"fast": {"provider": "openai", "endpoint": backend.url, "model": "m",
                                             "max_concurrent": 3}}, {"chat": {"primary": "fast"}},
                                   log={"path": str(tmp_path / "other.db")})
        settings = StateConfig(url=server.url, prefix=prefix, lease=2.7, timeout=0.2, refresh=0.1)

        async def other_host() -> list[str]:
            pool = ModelPool(other_config, shared=settings)
            try:
                pool.join()
                link = pool.link
                assert link is not None
                deadline = time.monotonic() + 5
                while not link.disagreements:
                    assert time.monotonic() < deadline, "the other process never noticed"
                    await asyncio.sleep(0.05)
                health = _wait(lambda: (h := httpx.get(gw.url + "/healthz").json())["state"]["limits_differ"] and h)
                assert health["status"] == "degraded"
                assert health["state"]["limits_differ"][0].startswith("fast: max_concurrent 2 here, 3 at ")
                assert "limits differ: fast: max_concurrent 2 here, 3 at" in health["state"]["detail"]
                return link.disagreements
            finally:
                await pool.aclose()

        seen = asyncio.run(other_host())
        assert seen[0].startswith("fast: max_concurrent 3 here, 2 at ")
        # the other process left: agreement again
        _wait(lambda: httpx.get(gw.url + "/healthz").json()["status"] == "ok")


def test_models_lists_every_process_slots_from_the_shared_state(tmp_path: Path, redis_url: str,
                                                                prefix: str) -> None:
    import asyncio

    from modelyard.router import ModelPool

    path = tmp_path / "config.yaml"
    data = {"models": {"fast": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "max_concurrent": 2}},
            "agents": {"chat": {"primary": "fast"}}, "log": {"path": str(tmp_path / "log.db")},
            "state": {"url": redis_url, "prefix": prefix}}
    path.write_text(yaml.safe_dump(data))

    async def hold_and_list() -> str:
        from modelyard.config import load_config

        pool = ModelPool(load_config(path))
        await pool["fast"].acquire(1)  # another process holds a slot
        # --no-reach: the model's endpoint is a closed port on purpose; the slots shown come from Redis
        out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "modelyard", "models", "--no-reach",
                                                       "--config", str(path)], capture_output=True, text=True,
                                      env=os.environ, timeout=60)
        await pool["fast"].release()
        await pool.aclose()
        assert out.returncode == 0, out.stderr
        return out.stdout

    listing = asyncio.run(hold_and_list())
    assert "1/2" in listing and "reachable" in listing and prefix in listing, listing


def test_models_says_a_model_is_over_its_spend_cap_with_shared_state(tmp_path: Path, redis_url: str,
                                                                      prefix: str) -> None:
    """With `state: redis://…` (or a running serve) the live view replaced every state the log gave, so a model
    over its spend cap — which every serve skips — read 'available' in `models`."""
    from modelyard.ledger import connect

    path = tmp_path / "config.yaml"
    log = tmp_path / "log.db"
    path.write_text(yaml.safe_dump({
        "models": {"paid": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1", "price": {"input": 1,
                                                                                                 "output": 1},
                            "spend_cap": {"usd": 1, "per": "day"}}},
        "agents": {"chat": {"primary": "paid"}}, "log": {"path": str(log)},
        "state": {"url": redis_url, "prefix": prefix}}))
    with connect(log) as conn:
        conn.execute("INSERT INTO attempts (request_id, seq, ts, agent, model, provider, outcome, cost_usd)"
                     " VALUES ('r1', 0, ?, 'chat', 'paid', 'openai', 'ok', 1.5)", (time.time(),))
        conn.commit()
    out = subprocess.run([sys.executable, "-m", "modelyard", "models", "--no-reach", "--config", str(path)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 3, out.stderr  # its one model is over its cap: none can answer
    row = next(line for line in out.stdout.splitlines() if line.startswith("paid "))
    assert "over its spend cap" in row, out.stdout
    assert "paid: over its spend cap: $1.50 spent, cap $1/day (UTC)" in out.stdout


def test_serve_says_where_its_log_and_its_limits_are(tmp_path: Path, redis_url: str, prefix: str,
                                                     pg_url: str) -> None:
    """With log.url and state: redis://…, serve's start lines named only the local SQLite file ('routing log:
    …/routing.sqlite3') and nothing about Redis: a team could not tell from them that it shares anything."""
    import socket

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "models": {"fast": {"provider": "openai", "endpoint": "http://127.0.0.1:9/v1"}},
        "agents": {"chat": {"primary": "fast"}},
        "log": {"path": str(tmp_path / "spool.sqlite3"), "url": pg_url},
        "state": {"url": redis_url, "prefix": prefix}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", "--config", str(path), "--port", str(port),
                             "--no-keep-warm"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data")})
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("Uvicorn running" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        said = "".join(lines)
        assert f"routing log: {pg_url.split('?')[0]}" in said and f"this host's spool: {tmp_path}" in said, said
        assert f"limits: shared through Redis {redis_url} (connecting)" in said, said  # not "up" before it knows
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()  # else its pipe is an unclosed file for whichever test the collector runs in
