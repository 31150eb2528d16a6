"""A lease too short for the others to hold a cut-off process's share back in time is refused at load.

A process cut off from Redis alone goes on with the requests it holds slots for. Redis drops its holders
``2·lease/3`` after their last renewal (every ``lease/3``); the others hold its outage share back once it has been
silent ``2·refresh + 2·timeout`` and they counted again (``refresh + timeout``). When its holders run out first, their
slots are handed out again while it still uses them: 3 of 2 (measured with the cut of the last test at lease 1.5 s,
refresh 0.1 s, timeout 0.2 s: from 0.5 s into the cut; with lease 3 s, refresh 0.1 s, timeout 0.5 s from 1.0 s). Safe
from ``9·(refresh + timeout)``: 9 s with the defaults (the default lease is 10 s).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelyard.config.schema import StateConfig
from modelyard.router import ModelPool
from modelyard.router.pool import state_settings
from modelyard.router.slots import QueueTimeout
from tests.helpers import make_config
from tests.shared.fault_proxy import FaultProxy
from tests.shared.redis_kit import REDIS_PORT, REDIS_URL

_CONFIG = """\
models:
  m: {{provider: openai, endpoint: "http://10.0.0.7:8000", max_concurrent: 2}}
agents:
  a: {{primary: m}}
state:
  url: {url}
  lease: {lease}
"""


def _models(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "modelyard", "--config", str(config), "models", "--no-reach"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_lease_shorter_than_the_hold_back_is_refused_naming_file_line_and_key(tmp_path: Path,
                                                                                   redis_url: str) -> None:
    config = tmp_path / "team.yaml"
    config.write_text(_CONFIG.format(url=redis_url, lease=3))
    run = _models(config)
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert f"{config}:7: state.lease: lease 3s is shorter than 9 x (refresh + timeout) = 9s" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    config.write_text(_CONFIG.format(url=redis_url, lease=9))  # the defaults' shortest: accepted
    run = _models(config)
    assert "state.lease" not in run.stderr, run.stderr
    # on_outage: fail takes nothing on its own while cut off: no share held back, nothing to race
    config.write_text(_CONFIG.format(url=redis_url, lease=3) + "  on_outage: fail\n")
    run = _models(config)
    assert "state.lease" not in run.stderr, run.stderr


def test_the_rule_holds_however_the_settings_are_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only a file: settings built in code (a Config or a StateConfig) and MODELYARD_STATE over them are held to
    the rule, with the file's words; the defaults keep it. The loader alone checked it, so a StateConfig built in code
    with a lease of 3 s and a refresh and timeout of 0.5 s ran past max_concurrent with a process cut off."""
    rule = r"lease 10s is shorter than 9 x \(refresh \+ timeout\) = 13.5s: .* set lease: 13.5 or more"
    with pytest.raises(ValidationError, match=rule) as built:
        StateConfig(url=REDIS_URL, timeout=1)  # the default lease (10 s) under a timeout of 1 s
    assert built.value.errors()[0]["loc"] == ("lease",)
    models = {"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 2}}
    with pytest.raises(ValidationError, match=rule) as built:
        make_config(models, {"a": {"primary": "m"}}, state={"url": REDIS_URL, "timeout": 1})
    assert built.value.errors()[0]["loc"] == ("state", "lease")
    assert StateConfig(url=REDIS_URL).lease_problem() == ""  # the defaults: 10 s >= 9 x (0.5 + 0.5)
    assert StateConfig(url=REDIS_URL, timeout=1, on_outage="fail").lease == 10  # nothing held back: no rule
    # MODELYARD_STATE takes the config's other settings: a file without a lease under a timeout of 1 s is refused at
    # state.lease (its line: the state's), and the variable over the defaults keeps the rule
    config = tmp_path / "team.yaml"
    config.write_text(_CONFIG.replace("  lease: {lease}\n", "  timeout: 1\n").format(url=REDIS_URL))
    run = _models(config)
    assert run.returncode == 2 and f"{config}:5: state.lease: lease 10s is shorter" in run.stderr, run.stderr
    monkeypatch.setenv("MODELYARD_STATE", REDIS_URL)
    settings = state_settings(make_config(models, {"a": {"primary": "m"}}))
    assert settings is not None and not settings.lease_problem()


async def test_at_the_shortest_lease_a_cut_off_holder_is_held_back_before_its_slot_runs_out(prefix: str) -> None:
    """Outside in: the cut-off process holds a slot through the cut, cut just before its heartbeat was due (its
    holder's last renewal as old as it gets); the other asks for both slots all through the cut, until 2 s past the
    moment that slot ran out in Redis. In use at once: never more than the limit. (A timeout of 1 s: the rule's room
    for slow calls is then ~1 s the calls here do not use, so a loaded machine's late tick does not decide it.)"""
    settings = StateConfig(url=REDIS_URL, prefix=prefix, lease=round(9 * (0.1 + 1.0), 6), refresh=0.1, timeout=1.0)
    assert not settings.lease_problem() and abs(settings.lease - settings.shortest_lease) < 1e-6
    config = make_config({"m": {"provider": "openai", "endpoint": "http://10.0.0.7:8000", "max_concurrent": 2}},
                         {"a": {"primary": "m"}})
    proxy = FaultProxy(REDIS_PORT).start()
    cut = ModelPool(config, shared=settings.model_copy(update={"url": proxy.url()}))
    other = ModelPool(config, shared=settings)
    try:
        for pool in (cut, other):
            await pool["m"].acquire(1)
            await pool["m"].release()
        assert cut.link is not None and other.link is not None
        deadline = time.monotonic() + 5
        while not (cut.link.instances == 2 and other.link.instances == 2):
            assert time.monotonic() < deadline, "the two never counted each other"
            await asyncio.sleep(0.02)
        await cut["m"].acquire(1)  # in use all through the cut
        await cut.link._beat(force=True)
        await asyncio.sleep(cut.link.heartbeat - 0.03)  # just before the next renewal
        proxy.partition()
        start, got, peak = time.monotonic(), 0, 0
        ran_out = cut.link.window_ms / 1000 - cut.link.heartbeat  # its holder, in Redis, after the cut
        while time.monotonic() - start < ran_out + 2.0:
            try:
                await other["m"].acquire(0.05)
                got += 1
            except QueueTimeout:
                pass
            peak = max(peak, got + len(cut["m"].held))
            assert peak <= 2, f"{peak} in use, limit 2, {time.monotonic() - start:.2f}s into the cut"
        assert got == 1, "the other had its own share all through"
        for _ in range(got):
            await other["m"].release()
    finally:
        await cut.aclose()
        await other.aclose()
        proxy.close()
