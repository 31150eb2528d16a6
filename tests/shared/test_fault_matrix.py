"""Shared limits under the faults a small team meets, outside in: real ``modelyard serve`` processes, a real Redis,
and a fake backend that counts the requests it serves at once — the truth is the backend's count, not modelyard's.

Each scenario runs a steady load through two gateways, injects one fault (a proxy of the tests' own between a gateway
and Redis: :mod:`tests.shared.fault_proxy`, or the Redis server itself), and measures the most requests the backend
served at once against ``max_concurrent``, how long the gateways took to use Redis again, and the requests that failed.
Every wait is bounded; every figure is printed (``-s``) for the README's table.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from tests.fakes import OllamaServer, OpenAIServer
from tests.fakes.faults import Fault
from tests.reliability.loadgen import AGENT, GatewayProcess, Result, _classify
from tests.shared.fault_proxy import FaultProxy
from tests.shared.redis_kit import (
    REDIS_PORT,
    PrivateRedis,
    deadlines_of,
    delete_prefix,
    new_prefix,
    own_tag,
    require_redis,
)

LIMIT = 2
SLOW = 0.15  # the backend takes this long per request
STATE_TIMEOUT = 0.3
REFRESH = 0.2
#: the shortest a file accepts, 9·(refresh + timeout) (test_lease_bound.py): shorter, a host cut off from
#: Redis had its slots handed out again before the other held its share back
LEASE = 9 * (REFRESH + STATE_TIMEOUT)


@dataclass
class Pair:
    backend: OpenAIServer
    gateways: list[GatewayProcess]
    prefix: str

    def state(self, g: int) -> dict[str, Any]:
        return httpx.get(self.gateways[g].url + "/healthz", timeout=5).json()["state"]

    def wait(self, what: str, done: Callable[[], bool], timeout: float) -> float:
        """Poll ``done`` until true (bounded); the seconds it took."""
        t0 = time.monotonic()
        while not done():
            assert time.monotonic() - t0 < timeout, f"{what}: not within {timeout}s"
            time.sleep(0.02)
        return time.monotonic() - t0

    def peak_over(self, seconds: float) -> int:
        """The most requests the backend served at once during the next ``seconds``."""
        self.backend.reset_counters()
        time.sleep(seconds)
        return self.backend.max_in_flight


def _config(directory: Path, n: int, backend: str, backup: str, url: str, prefix: str, timeout: float) -> Path:
    data: dict[str, Any] = {
        "models": {"fast": {"provider": "openai", "endpoint": backend, "model": "fast-model", "max_concurrent": LIMIT},
                   "backup": {"provider": "ollama", "endpoint": backup, "model": "backup-model",
                              "max_concurrent": 16}},
        "agents": {AGENT: {"primary": "fast", "fallbacks": ["backup"]}},
        "defaults": {"timeouts": {"queue": 0.3, "connect": 1, "first_token": 2, "idle": 2, "total": 10},
                     "retries": {"attempts": 0}, "cooldown": {"failures": 50, "seconds": 1}},
        "log": {"path": str(directory / f"log-{n}.db")},
        "state": {"url": url, "prefix": prefix, "lease": max(LEASE, 9 * (REFRESH + timeout)),
                  "refresh": REFRESH, "timeout": timeout},
    }
    path = directory / f"config-{n}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def pair(tmp_path: Path, urls: list[str], cleanup_url: str, timeout: float = STATE_TIMEOUT) -> Iterator[Pair]:
    """One gateway per URL (each may reach Redis its own way), one slow counting backend, a roomy backup."""
    prefix = new_prefix()
    with OpenAIServer(models=["fast-model"], reply_text="Hello from fast.") as backend, \
            OllamaServer(models=["backup-model"], reply_text="Hello from backup.") as backup:
        backend.faults.set_default(Fault.delay(SLOW))
        gateways = []
        for i, url in enumerate(urls):
            directory = tmp_path / f"gw{i}"
            directory.mkdir()
            gateways.append(GatewayProcess(_config(directory, i, backend.url, backup.url, url, prefix, timeout),
                                           directory))
        try:
            for g in gateways:
                g.start()
            yield Pair(backend, gateways, prefix)
        finally:
            for g in gateways:
                g.stop()
            with contextlib.suppress(redis.RedisError):
                delete_prefix(prefix, cleanup_url)


@contextlib.contextmanager
def steady_load(p: Pair, clients: int = 8) -> Iterator[list[Done]]:
    """``clients`` threads sending one request after another, spread over the gateways, until the block ends."""
    stop = threading.Event()
    counter = itertools.count()
    out: list[Done] = []

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                i = next(counter)
                g = p.gateways[i % len(p.gateways)]
                body = {"model": AGENT, "max_tokens": 16, "messages": [{"role": "user", "content": f"m-{i}"}]}
                start = time.perf_counter()
                try:
                    r = http.post(g.url + "/v1/chat/completions", json=body)
                    result = _classify(i, False, r, time.perf_counter() - start)
                except httpx.HTTPError as exc:
                    result = Result(i, "lost", time.perf_counter() - start, detail=f"{type(exc).__name__}: {exc}")
                out.append(Done(time.monotonic(), i % len(p.gateways), result))
                if result.kind == "lost":
                    stop.wait(0.05)  # a gateway killed on purpose: do not spin on it

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        # warm: the first requests open each gateway's connections (to Redis, the backend) within the queue bound
        p.wait("the load reaches the slow model", lambda: sum(d.result.kind == "ok" for d in out) >= 2 * clients, 20)
        yield out
    finally:
        stop.set()
        for t in threads:
            t.join(40)


@dataclass(frozen=True)
class Done:
    at: float
    gateway: int
    result: Result


def kinds(done: list[Done], since: float = 0.0, until: float = float("inf"), gateway: int | None = None,
          ) -> dict[str, int]:
    chosen = [d.result for d in done if since <= d.at <= until and gateway in (None, d.gateway)]
    return {k: sum(1 for r in chosen if r.kind == k) for k in ("ok", "fallback", "error", "lost")}


def lost(done: list[Done]) -> list[str]:
    return [d.result.detail for d in done if d.result.kind == "lost"][:5]


def test_a_host_cut_off_from_redis_does_not_add_its_share_to_the_others_limit(tmp_path: Path) -> None:
    """Redis reachable from gateway B but not from A (a firewall, a host's network): A falls back to its share, so
    B must hold that share back while A is silent — else the backend sees B's whole limit plus A's share."""
    require_redis()
    from tests.shared.redis_kit import REDIS_URL

    with FaultProxy(REDIS_PORT) as proxy, pair(tmp_path, [proxy.url(), REDIS_URL], REDIS_URL) as p, \
            steady_load(p) as results:
        healthy = p.peak_over(1.5)
        p.backend.reset_counters()
        proxy.partition()
        cut = time.monotonic()
        noticed = p.wait("A notices it is cut off", lambda: p.state(0)["up"] is False, 10)
        # B holds A's share back once it counts A silent (~1.2 s idle): waited for, as B's /healthz says it — a
        # window measured from a fixed time after the cut assumed B had by then, which a loaded machine may not
        p.wait("B holds A's share back", lambda: "silent" in p.state(1)["detail"], 20)
        settle = LEASE + 2 * REFRESH + STATE_TIMEOUT + 2 * SLOW  # B sees A silent; what B held beyond drains
        time.sleep(max(2 * SLOW + 0.3, settle - (time.monotonic() - cut)))  # what B held beyond drains (queue 0.3)
        transient = p.backend.max_in_flight  # before B saw A silent: what B held runs on beside A's share
        t0 = time.monotonic()
        during = p.peak_over(3.0)
        served_by_a = kinds(results, t0, time.monotonic(), gateway=0)["ok"]  # its share, not nothing
        proxy.heal()
        back = p.wait("A uses Redis again", lambda: p.state(0)["up"] is True, 10)
        after = p.peak_over(1.5)
    print(f"\npartition of one host: peak healthy {healthy}, in the first {settle:.1f}s of the cut {transient}, cut "
          f"off {during}, after {after} (limit {LIMIT}); "
          f"A noticed in {noticed:.2f}s, used Redis again {back:.2f}s after the heal; outcomes {kinds(results)}")
    assert healthy == LIMIT, "the load did not fill the limit: the test proves nothing"
    assert served_by_a, "the backend served nothing while A was cut off"
    assert during <= LIMIT, f"the backend saw {during} at once while one host was cut off (limit {LIMIT})"
    assert after <= LIMIT
    assert kinds(results)["lost"] == 0, lost(results)


def test_redis_slow_then_stalled_for_everyone(tmp_path: Path) -> None:
    """Redis slow for every gateway (each command 100 ms late, with ``state.timeout`` 1 s; then 2 s late: beyond it),
    then silent. Slow within the bound costs latency only; beyond it every gateway falls back to its share
    (floor(2 / 2) = 1 each) — the limit holds once they all have — and each uses Redis again once it answers.

    A call is one or two round trips and a new connection three or four (the load opens some), so the bound must be
    several round trips: with the default 0.5 s and 100 ms per command, these two loaded gateways went down and up
    again within the first two seconds (README: keep ``state.timeout`` at least 5× the round trip)."""
    require_redis()
    from tests.shared.redis_kit import REDIS_URL

    with FaultProxy(REDIS_PORT) as proxy, pair(tmp_path, [proxy.url(), proxy.url()], REDIS_URL, timeout=1.0) as p, \
            steady_load(p) as results:
        healthy = p.peak_over(1.0)
        proxy.delay(0.1)
        t0 = time.monotonic()
        slow = p.peak_over(2.0)
        slow_kinds = kinds(results, t0, time.monotonic())
        assert all(p.state(g)["up"] for g in (0, 1)), "100 ms per command is within the 1 s bound: no outage"
        proxy.delay(2.0)
        noticed = p.wait("both fall back", lambda: not p.state(0)["up"] and not p.state(1)["up"], 5)
        # until the others surely hold its share back (silent 2·(tick + timeout) after its last heartbeat, then their
        # tick: 3.6 s here) a gateway uses only the slots it held — none here: the slow store had queued
        # every request; the clean-clone CI's run measured exactly that window
        whole = p.wait("both use their whole share", lambda: all(p.state(g)["full_share_in_s"] == 0 for g in (0, 1)),
                       5)
        transient = p.backend.max_in_flight
        t0 = time.monotonic()
        beyond = p.peak_over(2.0)
        beyond_kinds = kinds(results, t0, time.monotonic())
        proxy.heal()
        back_slow = p.wait("both use Redis again", lambda: p.state(0)["up"] and p.state(1)["up"], 10)
        proxy.partition()  # stalled: connections open, nothing answers
        p.wait("both fall back", lambda: not p.state(0)["up"] and not p.state(1)["up"], 5)
        stalled = p.peak_over(1.5)
        proxy.heal()
        back_stalled = p.wait("both use Redis again", lambda: p.state(0)["up"] and p.state(1)["up"], 10)
        after = p.peak_over(1.0)
    print(f"\nRedis slow/stalled: peak healthy {healthy}, 100 ms slow {slow} ({slow_kinds}), 2 s slow {beyond} "
          f"({beyond_kinds}; {transient} while falling back, noticed in {noticed:.2f}s, whole share {whole:.2f}s "
          f"later), stalled {stalled}, "
          f"after {after} (limit {LIMIT}); Redis used again {back_slow:.2f}s after the slowness ended, "
          f"{back_stalled:.2f}s after the stall; outcomes {kinds(results)}")
    assert healthy == LIMIT
    assert slow <= LIMIT and slow_kinds["ok"] > 0
    assert beyond <= LIMIT and beyond_kinds["ok"] > 0, "each gateway serves its share while Redis is too slow"
    assert stalled <= LIMIT and after <= LIMIT
    assert kinds(results)["lost"] == 0, lost(results)


def test_redis_flushed_then_evicting_keys_under_load(tmp_path: Path) -> None:
    """FLUSHALL mid-load (an operator, a script, another tenant of the same Redis), then a Redis that is also a cache
    (``maxmemory`` with ``allkeys-lru``) evicting modelyard's keys while others fill it."""
    with PrivateRedis(tmp_path, "--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru") as server, \
            pair(tmp_path, [server.url, server.url], server.url) as p, steady_load(p) as results:
        healthy = p.peak_over(1.0)
        client = redis.Redis(port=server.port, socket_timeout=5)
        client.flushall()
        flushed = time.monotonic()
        after_flush = p.peak_over(2.0)
        first_ok = next((d.at - flushed for d in sorted(results, key=lambda d: d.at)
                         if d.at > flushed and d.result.kind == "ok"), None)
        t0 = time.monotonic()
        filler = 0
        p.backend.reset_counters()
        while time.monotonic() - t0 < 3.0:  # ~6 MB of other keys into a 3 MB Redis: it evicts all the while
            client.set(f"cache:{filler}", b"x" * 4096)
            filler += 1
        evicting = p.backend.max_in_flight
        evicted = client.info("stats")["evicted_keys"]
        client.close()
    print(f"\nRedis flushed / evicting: peak healthy {healthy}, after FLUSHALL {after_flush} (first answer from the "
          f"slow model {first_ok if first_ok is None else round(first_ok, 2)}s after it), while evicting {evicting} "
          f"({evicted} keys evicted) (limit {LIMIT}); outcomes {kinds(results)}")
    assert healthy == LIMIT and evicted > 0
    assert after_flush <= LIMIT and evicting <= LIMIT
    assert kinds(results)["lost"] == 0, lost(results)


def test_kill_9_of_one_of_two_gateways(tmp_path: Path) -> None:
    """kill -9 of a gateway holding slots: its slots come back within the lease; the survivor holds the dead one's
    outage share back (it cannot tell a dead process from one cut off) until its instance entry runs out."""
    require_redis()
    from tests.shared.redis_kit import REDIS_URL

    with pair(tmp_path, [REDIS_URL, REDIS_URL], REDIS_URL) as p, steady_load(p, clients=8) as results:
        healthy = p.peak_over(1.0)
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        holders = f"{own_tag(p.prefix, 'fast')}:holders"  # a backend on loopback: this host's slots
        victim = p.gateways[0]
        assert victim.proc is not None
        mark = f":{victim.proc.pid}:"
        p.wait("the victim holds a slot", lambda: deadlines_of(client, holders, mark)[1], 10)
        victim.kill9()
        killed = time.monotonic()
        # what the store will keep of the dead one's slots, by its own clock: nothing past 2/3 of the lease (renewed
        # every lease/3, each entry lives 2·lease/3), so they are free within the lease whatever the load here
        died_ms, deadlines = deadlines_of(client, holders, mark)
        # hang-guards (what they need idle: 3 s, ~1.3 s, 10 s: the dead one's instance entry outlives 2·lease)
        p.wait("its slots come back", lambda: not deadlines_of(client, holders, mark)[1], 10 * LEASE)
        slots_back = time.monotonic() - killed
        p.wait("the survivor holds its share back", lambda: "silent" in p.state(1).get("detail", ""), 10)
        held_back = time.monotonic() - killed
        held = p.peak_over(1.0)  # the survivor alone, with the dead one's share held back
        p.backend.reset_counters()
        p.wait("the backend serves the whole limit again", lambda: p.backend.max_in_flight >= LIMIT, 60)
        capacity_back = time.monotonic() - killed
        survivor = p.peak_over(1.0)
        client.close()
    print(f"\nkill -9 of one of two gateways: peak healthy {healthy}, survivor while holding back {held}, after "
          f"{survivor} (limit {LIMIT}); slots "
          f"back {slots_back:.2f}s after the kill (lease {LEASE}s); its share held back from {held_back:.2f}s, the "
          f"whole limit back {capacity_back:.2f}s after the kill; its slots' deadlines "
          f"{[round(d - died_ms) for d in deadlines]} ms after it (Redis's clock); "
          f"outcomes {kinds(results, gateway=1)} at the survivor")
    assert healthy == LIMIT and survivor == LIMIT and held <= LIMIT
    late = [round(d - died_ms) for d in deadlines if d - died_ms > LEASE * 2 / 3 * 1000]
    assert not late, f"the dead one's slots were kept {late} ms past the kill (lease {LEASE}s)"
    assert kinds(results, gateway=1)["lost"] == 0, lost(results)
