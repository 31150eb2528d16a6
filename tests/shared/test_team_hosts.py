"""A small team setting modelyard up on several hosts from the README alone: one config file copied to every host,
one Redis, one PostgreSQL log — what that walk found wrong, each on the real servers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from modelyard.errors import Reason
from modelyard.router import ModelPool
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.redis_kit import short_lease

SRC = Path(__file__).resolve().parents[2] / "src"


def _team_config(limit: int = 1):
    # 'own': each host's own server on its loopback, as `init --detect` writes it for the Ollama it found;
    # 'gpu': one server on the network that every host calls
    return make_config({"own": {"provider": "ollama", "endpoint": "http://127.0.0.1:11434", "max_concurrent": limit},
                        "gpu": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 1}},
                       {"a": {"primary": "own", "fallbacks": ["gpu"]}},
                       defaults={"cooldown": {"failures": 1, "seconds": 30, "max_seconds": 300}})


async def test_a_model_on_each_hosts_loopback_is_limited_per_host(redis_url: str, prefix: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same config on two hosts, a model at ``http://127.0.0.1:11434``: two Ollama servers, one per host. Its
    slots were counted team-wide (host B waited for a request on host A's Ollama, each host's server got half its
    parallel setting) and one host's failures cooled the other host's server down. Now its slots and breaker are its
    host's, as the embedded model's are; a server on the network stays shared by every host; a different limit for
    it on another host is that host's own server's business, not a disagreement."""
    settings = short_lease(url=redis_url, prefix=prefix, lease=3, refresh=0.1, timeout=2)
    host_a = [ModelPool(_team_config(), shared=settings) for _ in range(2)]
    monkeypatch.setattr(socket, "gethostname", lambda: "team-host-b")
    host_b = ModelPool(_team_config(limit=3), shared=settings)
    pools = [*host_a, host_b]
    try:
        assert await host_a[0]["own"].acquire(1) < 0.5
        with pytest.raises(QueueTimeout):  # another process of host A: the one slot of host A's server is taken
            await host_a[1]["own"].acquire(0.3)
        assert await host_b["own"].acquire(1) < 0.5  # host B's own server: its slot, not host A's
        assert await host_b["gpu"].acquire(1) < 0.5
        with pytest.raises(QueueTimeout):  # the server on the network: one slot for the whole team, as before
            await host_a[0]["gpu"].acquire(0.3)
        await host_b["gpu"].release()
        await host_b["own"].release()
        await host_a[0]["own"].release()

        ticket = await host_a[0]["own"].admit()  # host A's server fails: cooled down on host A only
        assert ticket is not None
        await host_a[0]["own"].failed(ticket, Reason.CONNECT_ERROR)  # type: ignore[arg-type]
        opened = time.monotonic()
        # the other process of host A sees it with the first view it reads after the opening (sent after it: the
        # link's registered_at), not within a fixed 0.3 s — a loaded loop read it later (a hang-guard of 10 s)
        other_a = host_a[1].link
        assert other_a is not None
        while (other_a.registered_at or 0) <= opened:
            assert time.monotonic() - opened < 10, "host A's other process read no view after the opening"
            await asyncio.sleep(0.01)
        assert await host_a[1]["own"].admit() is None
        assert await host_b["own"].admit() is not None

        link = host_b.link
        assert link is not None
        while link.instances < 3:
            assert time.monotonic() - opened < 30, "host B never counted the three processes"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert [d for d in link.disagreements if not d.startswith("routing log: ")] == [], (  # each its own log file
            "host B's own server may take 3; host A's 1 is not a disagreement")
    finally:
        for pool in pools:
            await pool.aclose()


def test_models_says_a_loopback_models_slots_are_this_hosts(redis_url: str, prefix: str, tmp_path: Path) -> None:
    config = tmp_path / "team.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"url": redis_url, "prefix": prefix},
        "models": {"own": {"provider": "ollama", "endpoint": "http://127.0.0.1:11434"},
                   "gpu": {"provider": "openai", "endpoint": "http://10.0.0.7:8000"}},
        "agents": {"chat": {"primary": "own", "fallbacks": ["gpu"]}},
        "log": {"path": str(tmp_path / "log.sqlite3")},
    }))
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_STATE"}
    env.update({"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "COLUMNS": "300"})

    def models(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "models", "--no-reach",
                               *extra], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert (f"own: is served by each host's own 127.0.0.1:11434, so its slots are per host: 0/1 is this host's "
            f"({socket.gethostname()})") in models()
    listed = json.loads(models("--json"))["models"]
    assert {m["model"]: m["slots_per_host"] for m in listed} == {"own": True, "gpu": False}


def test_a_host_whose_clock_is_off_says_so(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A host three hours ahead (walked with faketime -f '+3h' on one of three serves): its requests went into the
    shared log at 15:42 beside the others' 12:40 — on top of `log` for three hours, on the next day in `report` near
    midnight, into another day's spend cap — and nothing said so (Redis's leases use Redis's clock, so the limits
    were right). The forwarder now compares the host's clock with PostgreSQL's: a warning in the log, `/healthz`
    degraded with `log.forward.clock_off_s`; within the bound nothing is said."""
    import logging
    import time

    from modelyard.ledger import forward
    from tests.fakes.server import poll
    from tests.pg import SpooledWriter

    secret = pg_url.replace("postgres@", "postgres:pgsecret@", 1)  # trust auth: a password is accepted, unused
    assert "pgsecret" in secret
    writer = SpooledWriter(tmp_path / "spool.sqlite3", secret, [])
    try:
        fwd = writer.forwarder
        fwd.clock_every = 0.1
        time.sleep(0.5)
        assert fwd.health().clock_off_s is None and not fwd.health().degraded  # this machine's clock: in time
        with caplog.at_level(logging.WARNING, logger="modelyard.ledger.forward"):
            monkeypatch.setattr(forward, "wall_clock", lambda: time.time() + 3 * 3600)
            health = poll(lambda: (h := fwd.health()).clock_off_s is not None and h, 10)
            assert abs(health.clock_off_s - 3 * 3600) < 5 and health.degraded
            poll(lambda: "this host's clock is 3h 0m ahead of the database's" in caplog.text, 5)
            assert "pgsecret" not in caplog.text
            monkeypatch.setattr(forward, "wall_clock", lambda: time.time() - 90)
            poll(lambda: "1m 30s behind the database's" in caplog.text, 10)
            monkeypatch.setattr(forward, "wall_clock", time.time)
            poll(lambda: fwd.health().clock_off_s is None, 10)
            assert "agrees with the database's again" in caplog.text
    finally:
        writer.close()


@pytest.mark.parametrize(("url", "said"), [
    ("redis:/127.0.0.1:6379/7", "'redis:/127.0.0.1:6379/7' names no host (one slash after 'redis:'): write "
                                "redis://HOST:PORT/DB"),
    ("redis://:pw-typo@127.0.0.1:6379/seven", "the database in 'redis://:***@127.0.0.1:6379/seven' is 'seven', not a "
                                              "number: write redis://HOST:PORT/0"),
])
def test_a_state_url_redis_would_read_as_the_default_is_refused(tmp_path: Path, redis_url: str, url: str,
                                                                said: str) -> None:
    """Typos in one host's ``state:`` that redis-py reads as its defaults: ``redis:/host…`` (one slash) connected to
    localhost:6379, ``…/seven`` to database 0. The walk's `models` said 'reachable, 0 instance(s)', exit 0 — that
    host counted its slots apart from the team's. Now refused at load with the line and what to write, in the
    config and in MODELYARD_STATE, the password never shown."""
    config = tmp_path / "team.yaml"
    config.write_text(yaml.safe_dump({"state": url, "models": {"m": {"provider": "openai",
                                                                     "endpoint": "http://10.0.0.7:8000"}},
                                      "agents": {"chat": {"primary": "m"}}, "log": {"path": str(tmp_path / "l.db")}}))
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_STATE"}
    env["PYTHONPATH"] = f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "models", "--no-reach"],
                          capture_output=True, text=True, env=env, timeout=60)
    said_there = " ".join(done.stderr.split())
    assert done.returncode == 2 and "team.yaml:10: state.url: " + said in said_there, done.stderr
    config.write_text(config.read_text().replace(url, redis_url))
    env["MODELYARD_STATE"] = url
    done = subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "models", "--no-reach"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and said in " ".join(done.stderr.split()), done.stderr
    assert "pw-typo" not in done.stderr + done.stdout


def test_hosts_limiting_apart_make_healthz_degraded(tmp_path: Path, pg_url: str) -> None:
    """Two hosts on one log but each on its own Redis (a typo in one host's state.url) hand out the limit twice.
    /healthz listed them under log.forward.limited_apart with "status": "ok" — while a different max_concurrent
    (limits_differ) or another prefix (counted_apart), the same hazard, said "degraded". Now it says "degraded" too."""
    from tests.fakes.server import poll
    from tests.pg import SpooledWriter

    mine = SpooledWriter(tmp_path / "a.sqlite3", pg_url, [])
    theirs = SpooledWriter(tmp_path / "b.sqlite3", pg_url, [])
    try:
        for writer, state in ((mine, "redis 10.0.0.5:6379/0 prefix 'modelyard'"),
                              (theirs, "redis 10.0.0.6:6379/0 prefix 'modelyard'")):
            writer.forwarder.presence_every = 0.2
            writer.forwarder.presence = state
        health = poll(lambda: (h := mine.forwarder.health()).limited_apart and h, 10)
        assert "10.0.0.6:6379/0" in health.limited_apart[0] and health.degraded
        theirs.forwarder.presence = "redis 10.0.0.5:6379/0 prefix 'modelyard'"  # fixed: one Redis for both
        poll(lambda: not mine.forwarder.health().limited_apart, 10)
        assert not mine.forwarder.health().degraded
    finally:
        mine.close()
        theirs.close()


async def test_a_different_limit_on_two_hosts_is_warned_once_not_every_tick(redis_url: str, prefix: str,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """One host upgraded first (max_concurrent 4), two still on 8: the upgraded host's log said it again every
    heartbeat, naming hosta and hostb by turns — Redis names one process per set of limits, whichever renewed last.
    Now it is said once, and again only when what differs changes."""
    import logging

    settings = short_lease(url=redis_url, prefix=prefix, lease=1.5, refresh=0.1, timeout=2)
    cfg = {n: make_config({"gpu": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": n}},
                          {"a": {"primary": "gpu"}}) for n in (4, 8)}
    with caplog.at_level(logging.WARNING, logger="modelyard.state"):
        pools = [ModelPool(cfg[4], shared=settings), ModelPool(cfg[8], shared=settings),
                 ModelPool(cfg[8], shared=settings)]
        try:
            for pool in pools:
                await pool["gpu"].acquire(1)
                await pool["gpu"].release()
            link = pools[0].link
            assert link is not None
            while not link.disagreements:
                await asyncio.sleep(0.05)
            await asyncio.sleep(4)  # eight heartbeats (lease / 3)
            # what to do, where a newcomer reads it (`models`' caption, /healthz's detail): it said only what differs
            assert link.status().detail.endswith("(every process hands out the smallest: give every host the same "
                                                 "config and restart the odd one out)")
        finally:
            for pool in pools:
                await pool.aclose()
    said = [r.getMessage() for r in caplog.records if "max_concurrent 4 here" in r.getMessage()]
    assert len(said) == 1, said
