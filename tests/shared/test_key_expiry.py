"""Processes all gone leave nothing in Redis for good: every key of a prefix has an expiry.

A prefix's keys (a model's ``meta`` and ``breaker``, the ``instances``/``configs`` list, ``host-keys``) were created
without a TTL, and the processes that used them renewed entries *inside* them; killed (``kill -9``, a VM deleted, a
model renamed, a test suite's prefixes), nobody removed them (noted after the two-gateway soak of 2026-11-29:
RELIABILITY). Now every script that creates a key gives it an expiry and every heartbeat
renews it, so a live process never loses one and the keys of dead ones go within a day.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import redis

from modelyard.config.schema import Cooldown
from modelyard.router.shared import lua, namespaces
from modelyard.router.shared.link import RedisLink
from modelyard.router.shared.state import RedisState
from tests.shared.redis_kit import short_lease

SETTINGS = {"lease": 3.0, "refresh": 0.1, "timeout": 1.0}

#: one process of the prefix: a slot held and one given back (holders, released), a waiter (queue, leases), a breaker
#: opened (breaker), a model of this host's own (host-keys) and a backend in the namespaces' registry (database 0)
_PROCESS = """
import asyncio, socket, sys
socket.gethostname = lambda: {host!r}
from modelyard.config.schema import Cooldown, StateConfig
from modelyard.errors import Reason
from modelyard.router.shared.link import RedisLink
from modelyard.router.shared.state import RedisState

async def main():
    link = RedisLink(StateConfig.model_validate(dict(url={url!r}, prefix={prefix!r}, **{settings!r}),
                                              context={{'below_lease_rule': True}}))
    link.backends = {{"m": "http://10.0.0.7:8000 m"}}
    shared = RedisState("m", 1, Cooldown(failures=1, seconds=5), link)
    own = RedisState("embedded", 1, Cooldown(), link, per_host=True)
    await own.acquire(5)
    if {first!r}:
        await shared.acquire(5)
        await shared.release()
        await shared.acquire(5)
        ticket = await shared.admit()
        await shared.failed(ticket, Reason.CONNECT_ERROR)
        print("holding", flush=True)
    else:
        waiter = asyncio.ensure_future(shared.acquire(600))
        await asyncio.sleep(1)
        assert not waiter.done()
        print("waiting", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _start(tmp_path: Path, name: str, url: str, prefix: str, *, first: bool) -> subprocess.Popen[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(_PROCESS).format(host=name, url=url, prefix=prefix, settings=SETTINGS,
                                                       first=first))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def test_the_keys_of_killed_processes_all_expire(tmp_path: Path, redis_url: str, prefix: str) -> None:
    holder = _start(tmp_path, f"holder-{os.getpid()}", redis_url, prefix, first=True)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    waiter = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding", holder.communicate(
            timeout=10)
        waiter = _start(tmp_path, f"waiter-{os.getpid()}", redis_url, prefix, first=False)
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "waiting", waiter.communicate(
            timeout=10)
        for child in (holder, waiter):
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000))
        print("\n".join(f"{k}: pttl {client.pttl(k)} ms" for k in keys))
        kinds = {k.rsplit(":", 1)[-1] for k in keys}
        # what the two processes left: every kind of key the scripts write
        assert {"holders", "queue", "leases", "meta", "released", "breaker", "instances", "configs",
                "host-keys"} <= kinds, keys
        forever = [k for k in keys if client.pttl(k) < 0]
        assert not forever, f"keys with no expiry, in Redis for good: {forever}"
        # never past a day (the breaker: a day past its 5 s cooldown)
        assert all(client.pttl(k) <= lua.KEY_TTL_MS + 10_000 for k in keys), keys
        for key in (namespaces.REGISTRY, namespaces.ALIVE):  # database 0, shared by every prefix
            assert 0 < client.pttl(key) <= namespaces.KEY_TTL_MS, (key, client.pttl(key))
    finally:
        for child in (holder, waiter):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait(10)
            if child is not None:
                for stream in (child.stdout, child.stderr):
                    if stream is not None:
                        stream.close()
        client.close()


async def test_keys_an_older_version_left_without_expiry_get_one(redis_url: str, prefix: str) -> None:
    """Keys from before this change have no TTL: the first heartbeat of a process of this version gives them one."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    tag = f"{prefix}:{{m}}"
    client.hset(f"{tag}:meta", mapping={"seq": 7})
    client.hset(f"{tag}:breaker", mapping={"state": "closed", "gen": 1})
    client.zadd(f"{prefix}:instances", {"gone:1:x": 1})
    link = RedisLink(short_lease(url=redis_url, prefix=prefix, **SETTINGS))
    state = RedisState("m", 1, Cooldown(), link)
    try:
        await state.acquire(5)
        await link._beat(force=True)
        for key in (f"{tag}:meta", f"{tag}:breaker", f"{tag}:holders", f"{prefix}:instances"):
            assert 0 < client.pttl(key) <= lua.KEY_TTL_MS, (key, client.pttl(key))
        await state.release()
    finally:
        await link.aclose()
        client.close()


async def test_a_live_process_keeps_its_keys(redis_url: str, prefix: str) -> None:
    """The expiry never runs out under a live process: each heartbeat puts it back to a whole day."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    link = RedisLink(short_lease(url=redis_url, prefix=prefix, **SETTINGS))
    state = RedisState("m", 1, Cooldown(), link)
    meta = f"{prefix}:{{m}}:meta"
    try:
        await state.acquire(5)
        client.pexpire(meta, 60_000)  # as if a day had nearly passed
        t0 = time.monotonic()  # the next heartbeat (every lease/3 = 1 s) puts it back: waited for, 10 at most
        while client.pttl(meta) <= lua.KEY_TTL_MS - 60_000:
            assert time.monotonic() - t0 < 10 * link.heartbeat, client.pttl(meta)
            await asyncio.sleep(0.05)
        await state.release()
    finally:
        await link.aclose()
        client.close()
