"""A host removed for good leaves nothing of its own in Redis.

A model whose slots are each host's own (the embedded model, a server on a loopback endpoint) keeps its keys under
``PREFIX:{model@host}``; only that host's processes ever touch them. A host killed (``kill -9``, a VM deleted) or
moved to another config left them in Redis for good — the team walk of 2026-11-29 found them there hours later
(README, "A small team, step by step"). The other host here is a child process whose ``socket.gethostname()``
says another name, as `unshare -u` gave each `serve` its own in that walk.
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
from modelyard.router.shared.link import RedisLink
from modelyard.router.shared.state import RedisState
from tests.shared.redis_kit import deadlines_of, short_lease

SETTINGS = {"lease": 1.5, "refresh": 0.2, "timeout": 0.5}

_OTHER_HOST = """
import asyncio, socket, sys
socket.gethostname = lambda: {host!r}
from modelyard.config.schema import Cooldown, StateConfig
from modelyard.router.shared.link import RedisLink
from modelyard.router.shared.state import RedisState

async def main():
    link = RedisLink(StateConfig.model_validate(dict(url={url!r}, prefix={prefix!r}, **{settings!r}),
                                              context={{'below_lease_rule': True}}))
    state = RedisState("embedded", 1, Cooldown(), link, per_host=True)
    await state.acquire(5)
    await asyncio.sleep(0.5)
    print("holding", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _keys(client: redis.Redis, prefix: str, host: str) -> list[bytes]:
    return list(client.scan_iter(match=f"{prefix}:{{embedded@{host}}}:*", count=1000))


def test_a_host_killed_for_good_leaves_no_keys_of_its_own(tmp_path: Path, redis_url: str, prefix: str) -> None:
    gone = f"gone-{os.getpid()}"
    script = tmp_path / "other_host.py"
    script.write_text(textwrap.dedent(_OTHER_HOST).format(host=gone, url=redis_url, prefix=prefix, settings=SETTINGS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "holding", child.stderr
        assert _keys(client, prefix, gone)  # its meta, its holder
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed = time.monotonic()
        # by Redis's clock, at the kill: its tag's entry runs out with its instance entry (2·lease, at least 10 s);
        # only then may a survivor take its keys out — asserted there, not on how soon a loaded poll saw them go
        died_ms, tag_deadlines = deadlines_of(client, f"{prefix}:host-keys", f"@{gone}}}")
        _, instance_deadlines = deadlines_of(client, f"{prefix}:instances", f"{gone}:")
        assert tag_deadlines and instance_deadlines, "the killed host was not registered"
        left = [round(d - died_ms) for d in (*tag_deadlines, *instance_deadlines)]

        async def survivor() -> float:
            link = RedisLink(short_lease(url=redis_url, prefix=prefix, **SETTINGS))
            mine = RedisState("embedded", 1, Cooldown(), link, per_host=True)
            await mine.acquire(5)  # this host's own keys: used, so kept
            try:
                while _keys(client, prefix, gone):
                    assert time.monotonic() - killed < 60, "the killed host's keys are still in Redis"  # hang-guard
                    await asyncio.sleep(0.2)
                assert _keys(client, prefix, link.host), "this host's live keys went too"
                return time.monotonic() - killed
            finally:
                await mine.release()
                await link.aclose()

        took = asyncio.run(survivor())
        # its instance entry (2·lease, at least 10 s) and its keys' deadline are the same bound
        print(f"its keys were gone {took:.1f}s after kill -9 (its entries ran out {left} ms after it, Redis's clock)")
        assert all(ms <= 10_000 for ms in left), left
        assert took > 5, took  # not while its instance entry still said it might be alive
        assert client.zcard(f"{prefix}:host-keys") == 1  # this host's tag only
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for pipe in (child.stdout, child.stderr):  # wait() leaves them open: an unclosed-file ResourceWarning
            if pipe is not None:
                pipe.close()
        client.close()
