"""What three `serve` processes of a small team — one Redis, one PostgreSQL — share or keep consistent, checked
outside in: real gateway processes, the real Redis of this machine and a PostgreSQL server of the tests' own (one
test restarts it).

A peer gateway shares cooldowns and rate counters through Redis but keeps others per instance, so N instances allow
N× (LiteLLM: `max_parallel_requests` per process, BerriAI/litellm#27900; budgets read from pod-local spend, #33325,
or synced every 60 s, #6288). Each test here is one such promise across processes. The three gateways start once
for the module (20 s each at load 9–12 on this machine's two cores); each has its own data dir, so its own spool
and routing-log file, as on three hosts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml

from tests.fakes import AnthropicServer, OllamaServer
from tests.fakes.faults import Fault
from tests.fakes.server import poll
from tests.pg import OwnServer
from tests.reliability.loadgen import GatewayProcess
from tests.shared.redis_kit import REDIS_URL, delete_prefix, new_prefix, require_redis

CLOUD_KEY = "sk-ant-team-state-0123456789"
KEY_ENV = "TEAM_STATE_ANTHROPIC_KEY"
#: USD per output token: one answer of the fake ("Done.", one token) costs $1
PRICE = {"input": 0.0, "output": 1_000_000.0}
CAP = 5.0
#: the keep-warm interval: at 1 s the event loops' lag at load 12 (a tenth of a second and more) was a fifth of it
WARM_EVERY = 2.0


@dataclass
class Team:
    gateways: list[GatewayProcess]
    cloud: AnthropicServer
    flaky: AnthropicServer
    local: OllamaServer
    pg: OwnServer
    prefix: str


def _config(directory: Path, team: dict[str, str], prefix: str, log_url: str) -> Path:
    def billed(endpoint: str, **more: Any) -> dict[str, Any]:
        return {"provider": "anthropic", "model": "claude-haiku-4-5", "endpoint": endpoint, "api_key_env": KEY_ENV,
                "price": PRICE, **more}

    data: dict[str, Any] = {
        "models": {
            "capped": billed(team["cloud"], spend_cap={"usd": CAP, "per": "day"}),
            "cloud": billed(team["cloud"]),
            "flaky": billed(team["flaky"]),
            "local": {"provider": "ollama", "model": "llama3.2:1b", "endpoint": team["local"]},
        },
        "agents": {"capped": {"primary": "capped", "fallbacks": ["local"]},
                   "writer": {"primary": "cloud", "fallbacks": ["local"]},
                   "tally": {"primary": "cloud", "fallbacks": ["local"]},
                   "flaky": {"primary": "flaky", "fallbacks": ["local"]}},
        "defaults": {"retries": {"attempts": 0}, "cooldown": {"failures": 2, "seconds": 60}},
        "log": {"path": str(directory / "log.sqlite3"), "url": log_url},
        "state": {"url": REDIS_URL, "prefix": prefix, "lease": 4.5, "refresh": 0.2, "timeout": 0.3},
        "gateway": {"keep_alive_interval": WARM_EVERY},
    }
    path = directory / "team.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start_all(gateways: list[GatewayProcess]) -> None:
    with ThreadPoolExecutor(len(gateways)) as starting:  # at once: one after another took 20 s each at load 9
        list(starting.map(GatewayProcess.start, gateways))


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    require_redis()
    prefix, root = new_prefix(), tmp_path_factory.mktemp("team")
    pg = OwnServer()
    try:
        with AnthropicServer(api_key=CLOUD_KEY, reply_text="Done.") as cloud, \
                AnthropicServer(api_key=CLOUD_KEY, reply_text="Done.") as flaky, \
                OllamaServer(["llama3.2:1b"], reply_text="From here.") as local:
            ends = {"cloud": cloud.url, "flaky": flaky.url, "local": local.url}
            gateways = []
            for i in range(3):
                directory = root / f"host{i}"
                directory.mkdir()
                gateways.append(GatewayProcess(_config(directory, ends, prefix, pg.url), directory,
                                               env={KEY_ENV: CLOUD_KEY, "MODELYARD_DATA_DIR": str(directory)}))
            try:
                _start_all(gateways)
                yield Team(gateways, cloud, flaky, local, pg, prefix)
            finally:
                for g in gateways:
                    g.stop()
                delete_prefix(prefix)
    finally:
        pg.close()


def ask(gateway: GatewayProcess, agent: str, text: str) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/chat/completions", timeout=30,
                      json={"model": agent, "max_tokens": 16, "messages": [{"role": "user", "content": text}]})


def model_row(gateway: GatewayProcess, name: str) -> dict[str, Any]:
    return next(m for m in httpx.get(gateway.url + "/healthz").json()["models"] if m["name"] == name)


def test_gateways_on_one_redis_stop_at_one_spend_cap(team: Team) -> None:
    """A $5-a-day cap on a model billed $1 an answer, three gateways on one Redis. Each process counted its own
    routing log — its file at start, then the shared log every 10 s — so within those 10 s each allowed the whole
    cap ($15 of $5 here), and for ever where hosts keep their own files (no log.url). The processes now add their
    spend to one counter in Redis and read the others' each tick: the team stops at the cap."""
    models = []
    for i in range(12):  # one at a time, by turns: nothing runs when the cap is reached
        r = ask(team.gateways[i % 3], "capped", f"note {i}")
        assert r.status_code == 200, r.text
        models.append(r.headers["x-modelyard-model"])
        time.sleep(0.4)  # two of the gateways' ticks (refresh 0.2 s): the others' spend is seen by then
    assert models == ["capped"] * 5 + ["local"] * 7, models
    for g in team.gateways:  # each gateway's /healthz says the team's spend, not its own share of it
        spend = model_row(g, "capped")["spend"]
        assert spend["usd"] == CAP and spend["over"], spend


def test_a_model_cooled_down_through_one_gateway_is_skipped_by_the_others(team: Team) -> None:
    """A model fails twice through gateway A (its cooldown's threshold): gateways B and C skip it from then on
    without sending it a request — one breaker for the team (a peer gateway re-read cooldowns from Redis only
    every 10 s before a 2025 change; a second cooldown kept the first deadline there, BerriAI/litellm#40130)."""
    team.flaky.faults.set_default(Fault.status(500))
    for i in range(2):
        r = ask(team.gateways[0], "flaky", f"fails {i}")
        assert r.status_code == 200 and r.headers["x-modelyard-model"] == "local", r.text
    tried = len(team.flaky.requests_to("/v1/messages"))
    assert tried == 2
    time.sleep(0.5)  # the others' view is at most refresh (0.2 s) + a round trip old
    for g in team.gateways[1:]:
        for i in range(3):
            r = ask(g, "flaky", f"after {i}")
            assert r.status_code == 200 and r.headers["x-modelyard-model"] == "local", r.text
        assert model_row(g, "flaky")["state"] == "cooling_down"
    assert len(team.flaky.requests_to("/v1/messages")) == tried, "a gateway tried the cooled-down model"


async def _spread(pool: list[GatewayProcess], n: int, clients: int, marker: str, *, agent: str = "writer",
                  during: Any = None, pace: float = 0.0) -> list[httpx.Response | str]:
    """``n`` requests from ``clients`` clients, request i through gateway i % len(pool); ``during`` (a coroutine
    function) runs once a third of them were answered."""
    counter = itertools.count()
    out: list[httpx.Response | str] = []
    third = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while (i := next(counter)) < n:
            body = {"model": agent, "max_tokens": 16, "messages": [{"role": "user", "content": f"{marker}-{i}"}]}
            try:
                out.append(await http.post(pool[i % len(pool)].url + "/v1/chat/completions", json=body))
            except httpx.HTTPError as exc:
                out.append(f"lost: {type(exc).__name__}: {exc}")
            if len(out) >= n // 3:
                third.set()
            await asyncio.sleep(pace)

    async def side() -> None:
        await third.wait()
        await during()

    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)), *([side()] if during else []))
    return out


def _answered(answers: list[httpx.Response | str]) -> list[str]:
    bad = [a if isinstance(a, str) else a.text for a in answers if isinstance(a, str) or a.status_code != 200]
    assert not bad, bad[:3]
    return [a.headers["x-modelyard-request-id"] for a in answers if isinstance(a, httpx.Response)]


def _ids_in(url: str, marker: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM requests WHERE prompt LIKE %s", (marker + "-%",))]


def _stats(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelyard", "stats", "--json", "--config", str(config)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1", "MODELYARD_DATA_DIR": str(config.parent)})


def test_three_gateways_log_every_request_once_and_stats_read_the_log_while_they_write(team: Team) -> None:
    """Three gateways (own spools) write one PostgreSQL log while `stats` reads it. Each request id is drawn per
    process (64 random bits): ids that met would be one row — the forwarder upserts by id, so one host's request
    would silently replace another's. Every answered request is there once, under the id its client got; `stats`
    run mid-load exits 0, and once the forwarders caught up counts the team's requests (all three hosts')."""
    mid: list[subprocess.CompletedProcess[str]] = []
    config = team.gateways[0].config

    async def stats_mid_load() -> None:
        mid.append(await asyncio.to_thread(_stats, config))

    ids = _answered(asyncio.run(_spread(team.gateways, 90, 6, "trio", agent="tally", during=stats_mid_load)))
    assert len(set(ids)) == 90
    assert mid and mid[0].returncode == 0, mid[0].stderr if mid else "stats never ran"
    poll(lambda: sorted(_ids_in(team.pg.url, "trio")) == sorted(ids), timeout=30)
    out = _stats(config)
    assert out.returncode == 0, out.stderr
    agents = {a["key"]: a for a in json.loads(out.stdout)["agents"]}
    assert agents["tally"]["requests"] == 90, agents


def test_postgresql_restarted_under_the_gateways_loses_no_row_says_so_and_catches_up(team: Team) -> None:
    """PostgreSQL stopped mid-load under three gateways, then started again: answers go on from the spools, each
    gateway's /healthz says degraded with its backlog, its log names the database when it stops taking rows and
    again when it takes them (it said nothing then), and every answered request is in PostgreSQL exactly once."""
    during_outage: list[dict[str, Any]] = []

    async def outage() -> None:
        await asyncio.to_thread(team.pg.stop)
        await asyncio.sleep(1.5)  # answers keep coming meanwhile
        async with httpx.AsyncClient() as http:
            for g in team.gateways:
                during_outage.append((await http.get(g.url + "/healthz")).json())
        await asyncio.to_thread(team.pg.start)

    ids = _answered(asyncio.run(_spread(team.gateways, 150, 3, "pgrestart", during=outage, pace=0.15)))
    for health in during_outage:
        forward = health["log"]["forward"]
        assert health["status"] == "degraded" and forward["backlog"] > 0 and not forward["connected"], forward
    poll(lambda: sorted(_ids_in(team.pg.url, "pgrestart")) == sorted(ids), timeout=45)
    assert Counter(_ids_in(team.pg.url, "pgrestart")).most_common(1)[0][1] == 1
    poll(lambda: all(httpx.get(g.url + "/healthz").json()["log"]["forward"]["backlog"] == 0
                     for g in team.gateways), timeout=15)
    for g in team.gateways:  # said when it stopped and when it came back, each in a line naming the database
        said = g.output()
        assert "routing log: cannot forward to" in said and "answers go on, rows wait in" in said, said[-1500:]
        assert "takes rows again" in said, said[-1500:]
        assert said.rindex("cannot forward to") < said.rindex("takes rows again")


def test_gateways_in_front_of_one_ollama_keep_its_model_warm_once_a_round_not_once_each(team: Team) -> None:
    """Three gateways in front of one Ollama each sent its keep-warm preload every interval: three preloads an
    interval, each queued by Ollama behind a busy model's generations. They take turns through a claim in Redis
    now — one preload a round for the team — and when the gateway that holds the claim stops, another takes the
    rounds over, so the model never goes cold. (Last in the file: it stops a gateway, and starts it again.)"""
    def preloads() -> list[float]:
        return [r.received_at for r in team.local.requests_to("/api/chat") if r.json and r.json.get("messages") == []]

    start, before = time.monotonic(), len(preloads())
    time.sleep(4 * WARM_EVERY)
    rounds = (time.monotonic() - start) / WARM_EVERY
    sent = len(preloads()) - before
    assert sent <= rounds + 2, f"{sent} preloads in {rounds:.1f} rounds from {len(team.gateways)} gateways"
    assert sent >= rounds / 1.8 - 1, f"{sent} preloads in {rounds:.1f} rounds: the model was left to go cold"

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:  # a claim lasts 0.8 of a round: between its end and the next round there is none
        claims = poll(lambda: list(client.scan_iter(match=f"{team.prefix}:claim:warm:*")), timeout=3 * WARM_EVERY)
        assert len(claims) == 1, claims  # one server and model: one claim
        holder = (client.get(claims[0]) or b"").decode()
    finally:
        client.close()
    warming = next(g for g in team.gateways if g.proc is not None and f":{g.proc.pid}:" in holder)
    warming.stop()
    try:
        start, before = time.monotonic(), len(preloads())
        time.sleep(3 * WARM_EVERY)
        after = [start, *[t for t in preloads()[before:] if t >= start]]
        gaps = [b - a for a, b in itertools.pairwise(after)]
        assert len(gaps) >= 2 and max(gaps) < 2 * WARM_EVERY, gaps
    finally:
        warming.start()
