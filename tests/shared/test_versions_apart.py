"""A process of an older modelyard on the same Redis prefix is said — by name, in the log and in /healthz's detail.

Versions have named a model's keys differently (a model on a loopback endpoint, or the embedded one: ``PREFIX:{m}``
before per-host slots, ``PREFIX:{m@host}`` since — commit 1a1c795b) and applied other rules (no smallest limit
across configs before the caps, commit 60bc41b0): an older and a newer process each handed out their own count of the
same backend, and neither said anything. The older process here registers as the versions before the marker did: the
same ``INSTANCES`` script (:data:`modelyard.router.shared.lua.INSTANCES`, unchanged since), with its limits and
``@state`` settings as JSON and no ``@slots``.
"""

from __future__ import annotations

import json
import logging

import pytest
import redis

from modelyard.router.shared import lua
from modelyard.router.shared.timings import Timings
from tests.shared.test_redis_state import Pools, _joined, _until, pools  # noqa: F401 - fixture


def _register_as_an_older_version(url: str, prefix: str, pool_settings: object, limit: int) -> str:
    """One INSTANCES call as a process of the version before the marker makes it each tick; its instance id."""
    instance = "old-host:4242:0badc0de"
    limits = json.dumps({"m": limit, "@state": Timings.of(pool_settings).said()},  # type: ignore[arg-type]
                        sort_keys=True, separators=(",", ":"))
    client = redis.Redis.from_url(url)
    client.eval(lua.INSTANCES, 4, f"{prefix}:instances", f"{prefix}:configs", f"{prefix}:host-keys",
                f"{prefix}:seen", "", 60_000, instance, 0, "old-host:", limits, 60_000)
    client.close()
    return instance


async def test_an_older_version_on_the_prefix_is_said(pools: Pools, redis_url: str, prefix: str,  # noqa: F811
                                                      caplog: pytest.LogCaptureFixture) -> None:
    a, b = pools(2)
    for pool in (a, b):
        await _joined(pool)
    link = a.link
    assert link is not None
    await _until(lambda: link.instances == 2)
    assert not [f for f in link.disagreements if "version" in f], "one version, yet said apart"
    with caplog.at_level(logging.WARNING, logger="modelyard.state"):
        old = _register_as_an_older_version(redis_url, prefix, link.settings, 2)
        await _until(lambda: link.instances == 3)  # counted at a heartbeat: its entry read
        await _until(lambda: any(old in f for f in link.disagreements), 2)
    status = a.state_status()
    assert status is not None
    said = f"a version older than this one's slots protocol 1 (it registers none) at {old}"
    assert f"other modelyard versions: {said}" in status.detail, status.detail
    assert "run one modelyard version on every host" in status.detail
    assert [r for r in caplog.records if "another modelyard version" in r.getMessage() and old in r.getMessage()]
    # the limits themselves agree: nothing said of max_concurrent
    assert "limits differ" not in status.detail, status.detail
