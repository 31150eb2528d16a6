"""`check` names the probe's time in UTC: it printed the machine's local clock with no zone, so a team reading one
host's output on another (or against `report`, which is UTC) read the hour wrong."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from tests.helpers import make_config

from modelyard.ops.check import check_config
from modelyard.ops.probe import Check, ProbeResult


def test_an_unreachable_models_probe_time_is_in_utc_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # 9 hours from UTC: a local time would read 09:30
    time.tzset()
    try:
        ts = datetime(2025, 3, 1, 0, 30, tzinfo=UTC).timestamp()
        probe = ProbeResult("q", "ollama", ts=ts)
        probe.add(Check("reachable", "fail", ok=False, detail="connection refused", error=True))
        cfg = make_config({"q": {"provider": "ollama", "model": "q:7b", "endpoint": "http://127.0.0.1:9"}},
                          {"a": {"primary": "q"}})
        [finding] = [f for f in check_config(cfg, {"q": probe}) if f.model == "q" and "when last probed" in f.message]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert "could not be reached when last probed (2025-03-01 00:30 UTC)" in finding.message
