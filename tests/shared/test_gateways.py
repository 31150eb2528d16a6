"""Three ``modelyard serve`` processes sharing one Redis, under load, against one slow backend.

The backend counts the requests it is serving at once (at the backend, not in modelyard): with
``max_concurrent: 2`` it must never see more than 2, whichever gateway the requests came through.
Then: a gateway killed with SIGKILL while holding slots (its slots come back within the lease, the
others keep serving), and Redis itself killed and restarted mid-load (documented behaviour:
each process keeps floor(limit / instances) slots — here 0 of the slow model's 2, so requests move
on with ``state_unreachable`` — and every request is answered or clearly failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from modelyard.ledger import connect
from tests.fakes import OllamaServer, OpenAIServer
from tests.fakes.faults import Fault
from tests.reliability.loadgen import AGENT, CLIENT_TIMEOUT, GatewayProcess, Result, _classify
from tests.shared.redis_kit import PrivateRedis, deadlines_of, delete_prefix, new_prefix, own_tag, require_redis

LIMIT = 2
QUEUE = 0.3
SLOW = 0.15  # the backend takes this long per request
STATE_TIMEOUT = 0.3  # the bound on every Redis call
#: the shortest a file accepts with refresh 0.2 s and this timeout, 9·(refresh + timeout): shorter, a gateway
#: cut off from Redis had its slots handed out again before the others held its share back
LEASE = 4.5


@dataclass
class Fleet:
    backend: OpenAIServer
    backup: OllamaServer
    gateways: list[GatewayProcess]
    logs: list[Path]
    prefix: str
    url: str
    results: list[Result] = field(default_factory=list)

    def holders(self) -> list[str]:
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            # the backend is on this host's loopback: its slots are this host's (every host has its own 127.0.0.1)
            return [t.decode() for t in client.zrange(f"{own_tag(self.prefix, 'fast')}:holders", 0, -1)]
        finally:
            client.close()


def _config(directory: Path, n: int, backend: str, backup: str, url: str, prefix: str) -> tuple[Path, Path]:
    log = directory / f"log-{n}.db"
    data: dict[str, Any] = {
        "models": {"fast": {"provider": "openai", "endpoint": backend, "model": "fast-model",
                            "max_concurrent": LIMIT},
                   "backup": {"provider": "ollama", "endpoint": backup, "model": "backup-model",
                              "max_concurrent": 8}},
        "agents": {AGENT: {"primary": "fast", "fallbacks": ["backup"]}},
        "defaults": {"timeouts": {"queue": QUEUE, "connect": 1, "first_token": 2, "idle": 2, "total": 10},
                     "retries": {"attempts": 0}, "cooldown": {"failures": 50, "seconds": 1}},
        "log": {"path": str(log)},
        "state": {"url": url, "prefix": prefix, "lease": LEASE, "refresh": 0.2, "timeout": STATE_TIMEOUT},
    }
    path = directory / f"config-{n}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, log


@contextlib.contextmanager
def fleet(tmp_path: Path, url: str, n: int = 3) -> Iterator[Fleet]:
    prefix = new_prefix()
    with OpenAIServer(models=["fast-model"], reply_text="Hello from fast.") as backend, \
            OllamaServer(models=["backup-model"], reply_text="Hello from backup.") as backup:
        backend.faults.set_default(Fault.delay(SLOW))
        gateways, logs = [], []
        for i in range(n):
            directory = tmp_path / f"gw{i}"
            directory.mkdir()
            config, log = _config(directory, i, backend.url, backup.url, url, prefix)
            gateways.append(GatewayProcess(config, directory))
            logs.append(log)
        try:
            for g in gateways:
                g.start()
            yield Fleet(backend, backup, gateways, logs, prefix, url)
        finally:
            for g in gateways:
                g.stop()
            with contextlib.suppress(redis.RedisError):
                delete_prefix(prefix, url)


async def load(f: Fleet, n: int, clients: int, *, marker: str, alive: list[int] | None = None,
               pace: float = 0.0) -> list[Result]:
    """``n`` requests from ``clients`` clients, spread over the gateways in ``alive`` (all by default)."""
    counter = itertools.count()
    out: list[Result] = []

    async def client(c: int, http: httpx.AsyncClient) -> None:
        while (i := next(counter)) < n:
            targets = alive if alive is not None else range(len(f.gateways))
            g = f.gateways[list(targets)[i % len(targets)]]
            stream = i % 3 == 0
            body = {"model": AGENT, "stream": stream, "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"{marker}-{i}"}]}
            start = time.perf_counter()
            try:
                r = await http.post(g.url + "/v1/chat/completions", json=body)
                out.append(_classify(i, stream, r, time.perf_counter() - start))
            except httpx.HTTPError as exc:
                out.append(Result(i, "lost", time.perf_counter() - start, detail=f"{type(exc).__name__}: {exc}"))
            if pace:
                await asyncio.sleep(pace)

    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    return sorted(out, key=lambda r: r.index)


def logged(f: Fleet, marker: str) -> dict[str, dict[str, Any]]:
    """Every request row with the marker in any gateway's log, with its attempts."""
    rows: dict[str, dict[str, Any]] = {}
    for path in f.logs:
        if not path.exists():
            continue
        conn = connect(path, readonly=True)
        try:
            # one read transaction: a row committed between the two queries had attempts and no request (KeyError,
            # seen while a gateway was writing)
            conn.execute("BEGIN")
            for r in conn.execute("SELECT id, outcome FROM requests WHERE prompt LIKE ?", (marker + "-%",)):
                rows[r["id"]] = {"outcome": r["outcome"], "attempts": []}
            for a in conn.execute("SELECT a.request_id, a.model, a.outcome, a.reason, a.queue_wait_ms FROM attempts a "
                                  "JOIN requests r ON r.id = a.request_id WHERE r.prompt LIKE ? ORDER BY a.seq",
                                  (marker + "-%",)):
                rows[a["request_id"]]["attempts"].append(dict(a))
            conn.execute("COMMIT")
        finally:
            conn.close()
    return rows


def _met_outage(f: Fleet, marker: str) -> bool:
    """Some gateway logged a request of ``marker`` that moved on because Redis was gone."""
    return any(a["reason"] == "state_unreachable" for row in logged(f, marker).values() for a in row["attempts"])


def wait_for_log(f: Fleet, marker: str, ids: set[str], timeout: float = 10) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = logged(f, marker)
        if ids <= rows.keys() or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


async def timer_lateness(out: list[float]) -> None:
    """Until cancelled: how late this loop resumes a task whose timer is due ``QUEUE`` after it was set — what a
    gateway's queue bound waits on, measured on a loop of the same machine under the same load (the gateways'
    own loops are in other processes). As test_state_contract.py::test_queue_timeout_reports_the_wait_… does."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + QUEUE
        fired: asyncio.Future[None] = loop.create_future()
        loop.call_at(due, fired.set_result, None)
        await fired
        out.append(loop.time() - due)


async def load_timed(f: Fleet, n: int, clients: int, *, marker: str) -> tuple[list[Result], list[float]]:
    """:func:`load`, with :func:`timer_lateness` probing the load's own loop while it runs."""
    late: list[float] = []
    probe = asyncio.ensure_future(timer_lateness(late))
    try:
        return await load(f, n, clients, marker=marker), late
    finally:
        probe.cancel()


@pytest.fixture(scope="module")
def shared_redis() -> str:
    require_redis()
    from tests.shared.redis_kit import REDIS_URL

    return REDIS_URL


def test_three_gateways_never_exceed_the_limit_at_the_backend(tmp_path: Path, shared_redis: str) -> None:
    with fleet(tmp_path, shared_redis) as f:
        results, late = asyncio.run(load_timed(f, 240, 24, marker="three"))
        peak = f.backend.max_in_flight
        rows = wait_for_log(f, "three", {r.request_id for r in results if r.request_id})
        holders = f.holders()
    kinds = {k: sum(1 for r in results if r.kind == k) for k in ("ok", "fallback", "error", "lost")}
    print(f"\nbackend peak {peak}, outcomes {kinds}")
    assert peak <= LIMIT, f"the backend saw {peak} requests at once (limit {LIMIT}, 3 gateways)"
    assert peak == LIMIT, "the load did not even fill the limit: the test proves nothing"
    assert kinds["lost"] == 0, [r.detail for r in results if r.kind == "lost"][:5]
    assert kinds["ok"] > 0 and kinds["fallback"] > 0
    assert {r.request_id for r in results} <= rows.keys(), "every request is in some gateway's log"
    assert len(rows) == 240
    waits = [a["queue_wait_ms"] for row in rows.values() for a in row["attempts"] if a["reason"] == "queue_timeout"]
    assert waits, "the queue bound never moved a request on"
    waits.sort()
    assert late, "the load ended before one probe timer was due"
    lateness = sorted(late)[len(late) // 2] * 1000
    print(f"queue-timeout fallbacks: {len(waits)}, waited p50 {waits[len(waits) // 2]:.1f} / "
          f"p99 {waits[int(len(waits) * 0.99)]:.1f} / max {waits[-1]:.1f} ms (bound {QUEUE * 1000:.0f} ms); "
          f"a {QUEUE * 1000:.0f} ms timer on this machine ran {lateness:.1f} ms late (p50 of {len(late)})")
    assert waits[0] >= QUEUE * 1000 - 1, "a request gave up on its queue before the bound"
    # The median is each gateway's timer running late on a busy machine: 310.8 ms once under load 10-14 on 2 cores
    # (three gateways, 24 clients, a backend), so it is held against a timer's lateness measured beside it (the
    # probe above, on the load's loop). Within 50 ms of that still rules out a bound kept by a later event — the
    # next view refresh (200 ms), a Redis call with its own bound (300 ms) — rather than by its own timer.
    assert waits[len(waits) // 2] <= QUEUE * 1000 + lateness + 50, \
        f"queue-timeout fallbacks start later than the bound + 50 ms + {lateness:.1f} ms (the timers' lateness)"
    # The tail is the machine's (the in-process state shows the same under load: benchmarks/bench_state.py
    # measures both side by side): 620.8 ms once at load ~10 on 2 cores, past the QUEUE + STATE_TIMEOUT (600 ms) this
    # asserted, with a healthy store. That no fallback waits on a Redis call past its bound is asserted where the
    # loop's own lateness is measured beside it (test_state_contract.py::test_queue_timeout_reports_the_wait_…);
    # here the tail is bounded against a hang only.
    assert waits[-1] < 5 * (QUEUE + STATE_TIMEOUT) * 1000, "a queue-timeout fallback hung"
    assert holders == [], "every slot was given back"


def test_kill_9_of_a_gateway_holding_slots(tmp_path: Path, shared_redis: str) -> None:
    with fleet(tmp_path, shared_redis) as f:
        victim = f.gateways[0]
        assert victim.proc is not None
        mark = f":{victim.proc.pid}:"

        async def scenario() -> tuple[list[Result], float, list[float]]:
            task = asyncio.ensure_future(load(f, 150, 12, marker="before", alive=[0, 1, 2]))
            deadline = time.monotonic() + 20
            while not any(mark in t for t in f.holders()):  # the victim holds a slot right now
                assert time.monotonic() < deadline and not task.done(), "the victim never held a slot"
                await asyncio.sleep(0.002)
            victim.kill9()
            killed = time.monotonic()
            with redis.Redis.from_url(f.url, socket_timeout=5) as client:
                died_ms, deadlines = deadlines_of(client, f"{own_tag(f.prefix, 'fast')}:holders", mark)
            while any(mark in t for t in f.holders()):  # the others keep the load going meanwhile
                assert time.monotonic() - killed < 10 * LEASE, "the killed gateway's slots never came back"
                await asyncio.sleep(0.01)
            returned = time.monotonic() - killed
            await task
            after = await load(f, 60, 6, marker="after", alive=[1, 2])
            return after, returned, [d - died_ms for d in deadlines]

        after, returned, left = asyncio.run(scenario())
        peak = f.backend.max_in_flight
    print(f"\nthe killed gateway's slots came back {returned:.2f}s after kill -9 (lease {LEASE}s; their deadlines "
          f"{[round(ms) for ms in left]} ms after it, Redis's clock); backend peak {peak}")
    # The lease runs out at most 2/3 of LEASE after the kill, by Redis's own clock (each entry lives 2·lease/3 past
    # its last renewal): asserted there. How long this poll took to see it on a loaded machine (2.0 s once, 5.65 s in
    # the fault matrix's twin) is printed, bounded only against a hang: a slot kept until its key expired, or for good.
    assert all(ms <= LEASE * 2 / 3 * 1000 for ms in left), f"slots kept {left} ms past the kill (lease {LEASE}s)"
    assert peak <= LIMIT
    assert all(r.kind in ("ok", "fallback") for r in after), [r.detail for r in after if r.kind not in ("ok",
                                                                                                       "fallback")]
    assert any(r.kind == "ok" for r in after), "the survivors use the slow model's slots again"


def test_redis_killed_and_restarted_mid_load(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path) as server, fleet(tmp_path, server.url) as f:
        async def scenario() -> tuple[list[Result], dict[str, Any], dict[str, Any]]:
            task = asyncio.ensure_future(load(f, 360, 12, marker="restart", pace=0.01))
            t0 = time.monotonic()
            while not f.holders():  # mid-load: a gateway holds a slot of the slow model (was a fixed 1 s)
                assert time.monotonic() - t0 < 30 and not task.done(), "the load never took a slot"
                await asyncio.sleep(0.01)
            server.kill()  # everything it held is gone
            t0 = time.monotonic()
            async with httpx.AsyncClient(timeout=5) as http:  # the outage as /healthz says it, once seen (idle: 0.1 s)
                while (during := (await http.get(f.gateways[1].url + "/healthz")).json())["state"]["up"]:
                    assert time.monotonic() - t0 < 10, "the gateway did not notice Redis was gone"
                    await asyncio.sleep(0.05)
            # requests meet the outage (each gateway saw it: its next call failed) for 0.6 s at least, and until one
            # is logged as having met it (a fixed 0.6 s assumed that a loaded machine sends one meanwhile)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.6 or not _met_outage(f, "restart"):
                assert time.monotonic() - t0 < 30 and not task.done(), "no request met the outage"
                await asyncio.sleep(0.05)
            server.start()  # same port, empty
            t0 = time.monotonic()
            async with httpx.AsyncClient(timeout=5) as http:
                while (after := (await http.get(f.gateways[1].url + "/healthz")).json())["status"] != "ok":
                    assert time.monotonic() - t0 < 10, "the gateway did not notice Redis came back"
                    await asyncio.sleep(0.05)
            return await task, during, after

        results, during, after = asyncio.run(scenario())
        peak = f.backend.max_in_flight
        tail = asyncio.run(load(f, 60, 6, marker="tail"))
        rows = wait_for_log(f, "restart", {r.request_id for r in results if r.request_id})
    kinds = {k: sum(1 for r in results if r.kind == k) for k in ("ok", "fallback", "error", "lost")}
    reasons = {a["reason"] for row in rows.values() for a in row["attempts"]}
    print(f"\noutcomes {kinds}; reasons seen {sorted(r for r in reasons if r)}; backend peak {peak}")
    assert during["status"] == "degraded" and during["state"]["up"] is False
    assert after["state"]["up"] is True
    assert kinds["lost"] == 0, [r.detail for r in results if r.kind == "lost"][:5]
    assert peak <= LIMIT, "the limit held through the outage and the restart"
    assert "state_unreachable" in reasons, "requests during the outage moved on with the documented reason"
    assert {r.request_id for r in results} <= rows.keys() and len(rows) == 360
    assert any(r.kind == "ok" for r in tail), "the slow model serves again once Redis is back"
